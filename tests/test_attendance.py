"""Attendance and participant-minutes from LiveKit's webhooks: repeated, reordered and dropped
webhooks give the same result; reconciliation closes lost leaves; the usage API, the plan
page and the chart agree; sessions and attendance through the API and the dashboard."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random

import pytest
from django.test import Client
from django.utils import timezone

from conferences import livekit as gateway
from conferences.models import Attendance, Room, RoomSession
from conferences.services import attendance as attendance_services
from conferences.services import livekit_events
from dashboard import usage
from tests.conftest import assert_error


@pytest.fixture
def live(api, livekit):
    room = api.post("/api/v1/rooms", {"name": "Standup"}).json()
    api.post(f"/api/v1/rooms/{room['room_id']}/start")
    return Room.objects.get(room_id=room["room_id"])


def notice(room: Room, event: str, event_id: str, identity: str = "", sid: str = "",
           joined: float = 0.0, created: float = 0.0) -> gateway.WebhookNotice:  # fmt: skip
    return gateway.WebhookNotice(
        event=event, room=room.room_id, identity=identity, name=identity.title(),
        event_id=event_id, created_at=int(created), participant_sid=sid, joined_at=joined,
        room_sid="RM_x",
    )  # fmt: skip


def script(room: Room, t0: float) -> list[gateway.WebhookNotice]:
    """Ann 0..90 s, Bob 30..150 s, Ann again 200..230 s (a rejoin: a new sid)."""
    return [
        notice(room, "room_started", "EV_rs", created=t0),
        notice(room, "participant_joined", "EV_1", "ann", "PA_ann1", t0, t0),
        notice(room, "participant_joined", "EV_2", "bob", "PA_bob", t0 + 30, t0 + 30),
        notice(room, "participant_left", "EV_3", "ann", "PA_ann1", t0, t0 + 90),
        notice(room, "participant_connection_aborted", "EV_4", "bob", "PA_bob", t0 + 30, t0 + 150),
        notice(room, "participant_joined", "EV_5", "ann", "PA_ann2", t0 + 200, t0 + 200),
        notice(room, "participant_left", "EV_6", "ann", "PA_ann2", t0 + 200, t0 + 230),
    ]


def stays(room: Room) -> list[tuple]:
    return sorted(
        (a.participant_sid, a.identity, a.joined_at, a.left_at, a.left_by)
        for a in Attendance.objects.filter(session__room=room)
    )


def test_duplicated_and_reordered_webhooks_give_the_same_attendance_and_minutes(api, owner, live):
    t0 = float(int(timezone.now().timestamp())) - 400  # all in the past
    in_order = script(live, t0)
    for n in in_order:
        livekit_events.apply(n)
    expected = stays(live)
    assert [(s[0], (s[3] - s[2]).total_seconds(), s[4]) for s in expected] == [
        ("PA_ann1", 90, "left"), ("PA_ann2", 30, "left"), ("PA_bob", 120, "aborted"),
    ]  # fmt: skip
    minutes = api.get("/api/v1/usage").json()["total_participant_seconds"]
    assert minutes == 240

    for seed in range(5):
        Attendance.objects.all().delete()
        from conferences.models import LiveKitWebhookReceipt

        LiveKitWebhookReceipt.objects.all().delete()
        shuffled = in_order * 3  # every webhook three times...
        random.Random(seed).shuffle(shuffled)  # ...in any order
        results = [livekit_events.apply(n) for n in shuffled]
        assert results.count("duplicate") == 14
        assert stays(live) == expected, seed
        assert api.get("/api/v1/usage").json()["total_participant_seconds"] == 240


def test_a_late_joined_after_left_does_not_reopen(live):
    t0 = float(int(timezone.now().timestamp()))  # LiveKit's event times are whole seconds
    livekit_events.apply(notice(live, "participant_left", "EV_l", "cy", "PA_cy", t0, t0 + 45))
    result = livekit_events.apply(notice(live, "participant_joined", "EV_j", "cy", "PA_cy", t0, t0))
    assert result == "known"
    (att,) = Attendance.objects.all()
    assert att.left_at is not None and (att.left_at - att.joined_at).total_seconds() == 45


def test_reconciliation_closes_a_lost_leave_and_opens_a_lost_join(live, livekit):
    ann = livekit.add_participant(live.room_id, "ann", name="Ann")
    t0 = timezone.now()
    livekit_events.apply(
        notice(live, "participant_joined", "EV_a", "ann", ann.sid, ann.joined_at, ann.joined_at)
    )
    bob = livekit.add_participant(live.room_id, "bob", name="Bob")  # its joined never arrives
    livekit.remove_participant_local(live.room_id, "ann")  # its left never arrives
    later = t0 + dt.timedelta(seconds=60)
    assert attendance_services.reconcile(now=later) == {"rooms": 1, "closed": 1, "opened": 1}
    rows = {a.identity: a for a in Attendance.objects.all()}
    assert rows["ann"].left_at == later and rows["ann"].left_by == "reconciled"
    assert rows["bob"].left_at is None and rows["bob"].participant_sid == bob.sid
    # Run again: nothing more to do.
    assert attendance_services.reconcile(now=later) == {"rooms": 1, "closed": 0, "opened": 0}
    # The leave webhook arrives after all: LiveKit's exact time replaces ours.
    exact = t0.timestamp() + 20
    livekit_events.apply(notice(live, "participant_left", "EV_al", "ann", ann.sid, 0, exact))
    rows["ann"].refresh_from_db()
    assert rows["ann"].left_at.timestamp() == int(exact) and rows["ann"].left_by == "left"
    # LiveKit down: the room is skipped, nothing is closed.
    livekit.down()
    assert attendance_services.reconcile(now=later)["rooms"] == 0
    livekit.up()


def test_ending_the_session_closes_open_attendance(api, live):
    t0 = timezone.now().timestamp()
    livekit_events.apply(notice(live, "participant_joined", "EV_j", "dee", "PA_dee", t0, t0))
    api.post(f"/api/v1/rooms/{live.room_id}/stop")
    (att,) = Attendance.objects.all()
    assert att.left_at is not None and att.left_by == "session-ended"


def test_usage_api_plan_page_and_chart_agree(api, owner, live):
    # Stays across midnight UTC are split between the days.
    session = RoomSession.objects.get(room=live)
    today = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    Attendance.objects.create(tenant=owner.tenant, session=session, participant_sid="A",
                              identity="a", joined_at=today - dt.timedelta(minutes=10),
                              left_at=today + dt.timedelta(minutes=5, seconds=20))  # fmt: skip
    Attendance.objects.create(tenant=owner.tenant, session=session, participant_sid="B",
                              identity="b", joined_at=today + dt.timedelta(seconds=1),
                              left_at=today + dt.timedelta(minutes=2, seconds=1))  # fmt: skip
    body = api.get(f"/api/v1/usage?from={(today - dt.timedelta(days=1)).date()}").json()
    days = {d["date"]: d for d in body["days"]}
    yesterday = days[(today - dt.timedelta(days=1)).date().isoformat()]
    current = days[today.date().isoformat()]
    assert (yesterday["participant_seconds"], yesterday["participant_minutes"]) == (600, 10)
    assert (current["participant_seconds"], current["participant_minutes"]) == (440, 7)
    assert body["total_participant_minutes"] == 17
    chart = usage.daily_minutes(owner.tenant)
    assert chart[-1].minutes == 7 and chart[-2].minutes == 10
    meter = {m.label: m for m in usage.plan_meters(owner.tenant)}["Participant-minutes this month"]
    month_minutes = sum(
        d["participant_minutes"]
        for d in api.get(f"/api/v1/usage?from={today.date().replace(day=1)}").json()["days"]
    )
    assert meter.used == month_minutes
    # Bad ranges are refused with the envelope.
    assert_error(api.get("/api/v1/usage?from=2024-13-01"), 400, field="from")
    assert_error(api.get("/api/v1/usage?from=2024-02-01&to=2024-01-01"), 400, field="from")
    assert_error(api.get("/api/v1/usage?from=2020-01-01&to=2024-01-01"), 400, field="from")


def test_sessions_and_attendance_api_and_csv(api, owner, outsider, live):
    t0 = timezone.now().timestamp()
    livekit_events.apply(notice(live, "participant_joined", "EV_j", "eve", "PA_e", t0, t0))
    livekit_events.apply(notice(live, "participant_left", "EV_l", "eve", "PA_e", t0, t0 + 61))
    sessions = api.get(f"/api/v1/rooms/{live.room_id}/sessions").json()
    assert sessions["total"] == 1
    sid = sessions["sessions"][0]["session_id"]
    assert sessions["sessions"][0]["participants"] == 1
    body = api.get(f"/api/v1/rooms/{live.room_id}/sessions/{sid}/attendance").json()
    (row,) = body["attendance"]
    assert row["identity"] == "eve" and row["duration_seconds"] in (60, 61)
    assert row["left_by"] == "left"
    # Outsiders: 404 for the room's sessions and attendance, and a missing session is 404.
    key = outsider.api_key
    assert_error(api.get(f"/api/v1/rooms/{live.room_id}/sessions", key=key), 404)
    path = f"/api/v1/rooms/{live.room_id}/sessions/{sid}/attendance"
    assert_error(api.get(path, key=key), 404)
    assert_error(api.get(f"/api/v1/rooms/{live.room_id}/sessions/se_nope/attendance"), 404)
    # The dashboard's CSV download.
    client = Client()
    client.force_login(owner.user)
    response = client.get(f"/dashboard/rooms/{live.room_id}/sessions/{sid}/attendance.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["identity", "name", "joined_at"] and rows[1][0] == "eve"
    page = client.get(f"/dashboard/rooms/{live.room_id}/sessions/")
    assert page.status_code == 200 and sid in page.content.decode()
    stranger = Client()
    stranger.force_login(outsider.user)
    assert stranger.get(f"/dashboard/rooms/{live.room_id}/sessions/").status_code == 404
    csv_path = f"/dashboard/rooms/{live.room_id}/sessions/{sid}/attendance.csv"
    assert stranger.get(csv_path).status_code == 404


def test_verified_livekit_webhooks_over_http_record_attendance(live_server, live, livekit):
    url = f"{live_server.url}/livekit/webhook"
    livekit.add_participant(live.room_id, "fay", name="Fay")
    event = livekit.make_event("participant_joined", room=live.room_id, identity="fay")
    assert livekit.send_webhook(url, event) == 200
    assert livekit.send_webhook(url, event) == 200  # repeated: one row
    (att,) = Attendance.objects.all()
    assert att.identity == "fay" and att.participant_sid.startswith("PA_") and att.left_at is None
