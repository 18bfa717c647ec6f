"""The overview and plan pages: live rooms with head counts (LiveKit double), upcoming
occurrences, usage against the plan, participant-minutes metered once a minute, the chart,
the schedule calendar, and the dashboard's websocket."""

from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import UsageDay
from conferences import events
from conferences.api.auth import consume_request
from conferences.api.v1.serializers import RoomInputSerializer
from conferences.models import Attendance, RoomSession
from conferences.services import rooms as room_services
from dashboard import usage
from tests.dashboard_cast import Cast


def scheduled_room(cast: Cast, name: str, start: dt.datetime, rule: str | None = None):
    data = {"name": name, "room_type": "scheduled", "start_time": start.isoformat()}
    if rule:
        data.update(recurring=True, recurrence=rule)
    serializer = RoomInputSerializer(data=data, context={"tenant": cast.tenant})
    assert serializer.is_valid(), serializer.errors
    return room_services.create_room(tenant=cast.tenant, data=serializer.validated_data)


def test_overview_shows_live_rooms_with_head_counts(cast: Cast, livekit):
    room_services.start_room(room=cast.room)
    livekit.add_participant(cast.room.livekit_name, "a")
    livekit.add_participant(cast.room.livekit_name, "b")
    client = cast.client("viewer")
    page = client.get("/dashboard/").content.decode()
    assert "Acme weekly" in page and "data-count>2<" in page
    data = client.get("/dashboard/live").json()
    assert data["livekit"] is True and data["limit"] == 5
    assert [(r["name"], r["participants"]) for r in data["rooms"]] == [("Acme weekly", 2)]
    livekit.down()
    assert client.get("/dashboard/live").json()["rooms"][0]["participants"] is None


def test_overview_lists_upcoming_occurrences(cast: Cast):
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    scheduled_room(cast, "Board meeting", start)
    page = cast.client("member").get("/dashboard/").content.decode()
    assert "Board meeting" in page and "Upcoming" in page


def test_plan_meters_count_live_rooms_and_requests(cast: Cast):
    room_services.start_room(room=cast.room)
    for _ in range(3):
        consume_request(cast.tenant)
    meters = {m.label: m for m in usage.plan_meters(cast.tenant)}
    assert meters["Rooms live now"].used == 1 and meters["Rooms live now"].limit == 5
    assert meters["API requests this hour"].used == 3
    assert meters["API requests this hour"].limit == 100
    page = cast.client("viewer").get("/dashboard/usage/").content.decode()
    assert "1 / 5" in page and "3 / 100" in page and 'role="progressbar"' in page


def test_metering_adds_participant_minutes_once_per_minute(cast: Cast, livekit):
    room_services.start_room(room=cast.room)
    other = room_services.create_room(tenant=cast.other, data={"name": "Other live"})
    room_services.start_room(room=other)
    for identity in ("a", "b", "c"):
        livekit.add_participant(cast.room.livekit_name, identity)
    livekit.add_participant(other.livekit_name, "z")
    now = dt.datetime(2030, 5, 6, 10, 0, 30, tzinfo=dt.UTC)
    assert usage.meter(now=now) == 2
    assert usage.meter(now=now + dt.timedelta(seconds=10)) == 0  # same minute: claimed
    livekit.remove_participant_local(cast.room.livekit_name, "c")
    assert usage.meter(now=now + dt.timedelta(minutes=1)) == 2
    day = UsageDay.objects.get(tenant=cast.tenant, day=dt.date(2030, 5, 6))
    assert (day.participant_minutes, day.room_minutes, day.peak_participants) == (5, 2, 3)
    assert UsageDay.objects.get(tenant=cast.other).participant_minutes == 2
    assert len(livekit.calls_to("ListRooms")) == 2


def test_metering_skips_a_minute_when_livekit_is_down(cast: Cast, livekit):
    room_services.start_room(room=cast.room)
    livekit.down()
    now = dt.datetime(2030, 5, 6, 10, 0, tzinfo=dt.UTC)
    assert usage.meter(now=now) == 0
    livekit.up()
    assert usage.meter(now=now) == 1  # the minute was not claimed, so it is sampled later


def _stay(tenant, room, start: dt.datetime, minutes: int) -> None:
    """A participant's stay of `minutes` (attendance: what participant-minutes count)."""
    session = RoomSession.objects.create(room=room, started_at=start, ended_at=start)
    Attendance.objects.create(tenant=tenant, session=session, participant_sid=f"PA_{start}",
                              identity="x", joined_at=start,
                              left_at=start + dt.timedelta(minutes=minutes))  # fmt: skip


def test_the_usage_chart_draws_thirty_days(cast: Cast):
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - dt.timedelta(days=1)  # whole days in the past, whatever the hour
    _stay(cast.tenant, cast.room, yesterday, 120)
    _stay(cast.tenant, cast.room, yesterday - dt.timedelta(days=3), 60)
    _stay(cast.other, cast.other_room, yesterday, 999)
    days = usage.daily_minutes(cast.tenant)
    assert len(days) == 30 and days[-2].minutes == 120 and days[-5].minutes == 60
    page = cast.client("member").get("/dashboard/usage/").content.decode()
    assert page.count('class="bar-day"') == 30 and "180 in total" in page
    assert "999" not in page


def test_month_and_week_calendars_in_the_tenants_zone(cast: Cast):
    type(cast.tenant).objects.filter(pk=cast.tenant.pk).update(timezone="America/New_York")
    cast.tenant.refresh_from_db()
    # 02:30 UTC on the 10th is 21:30 on the 9th in New York (EST, UTC-5).
    start = dt.datetime(2031, 1, 10, 2, 30, tzinfo=dt.UTC)
    scheduled_room(cast, "Late call", start, "FREQ=WEEKLY;COUNT=3")
    client = cast.client("viewer")
    month = client.get("/dashboard/schedule/?date=2031-01-01").content.decode()
    assert "January 2031" in month and month.count(">21:30 Late call<") == 3
    assert "America/New_York" in month
    week = client.get("/dashboard/schedule/?view=week&date=2031-01-09").content.decode()
    assert week.count(">21:30 Late call<") == 1
    assert '<time datetime="2031-01-09">9 Jan</time>' in week
    # Months far ahead expand the series on demand; an empty one says so.
    assert "No occurrences" in client.get("/dashboard/schedule/?date=2031-06-01").content.decode()
    assert client.get("/dashboard/schedule/?date=garbage").status_code == 400  # today shown
    for day in ("0001-01-01", "9999-12-31", "1969-12-31"):  # used to answer 500
        page = client.get(f"/dashboard/schedule/?date={day}")
        assert page.status_code == 400 and "The date must be a day between" in page.content.decode()


def test_schedule_shows_only_the_tenants_occurrences(cast: Cast):
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=2)
    scheduled_room(cast, "Ours", start)
    page = cast.client("outsider").get(f"/dashboard/schedule/?date={start.date()}")
    assert "Ours" not in page.content.decode()


# --- the websocket ----------------------------------------------------------------------------


def _communicator(client: Client) -> WebsocketCommunicator:
    from dashboard.asgi import application

    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return WebsocketCommunicator(
        application, "/ws/dashboard",
        headers=[(b"cookie", cookie.encode()), (b"origin", b"http://testserver")],
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_websocket_streams_the_tenants_events_only(livekit):
    from tests.conftest import make_member

    acme, other = make_member("Acme"), make_member("Other Corp")
    client = Client()
    client.force_login(acme.user)

    async def scenario():
        communicator = _communicator(client)
        connected, _ = await communicator.connect()
        assert connected
        layer = get_channel_layer()
        await layer.group_send(events.tenant_group(other.tenant.pk),
                               {"type": "parley.event", "event": "room.started",
                                "room_id": "theirs", "at": "", "data": {}})  # fmt: skip
        await layer.group_send(events.tenant_group(acme.tenant.pk),
                               {"type": "parley.event", "event": "room.started",
                                "room_id": "ours", "at": "", "data": {}})  # fmt: skip
        message = await communicator.receive_json_from(timeout=2)
        assert message["room_id"] == "ours" and message["event"] == "room.started"
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.send_json_to({"type": "ping"})
        assert (await communicator.receive_json_from(timeout=2)) == {"type": "pong"}
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_websocket_refuses_the_signed_out(livekit):
    from dashboard.asgi import application

    async def scenario():
        communicator = WebsocketCommunicator(
            application, "/ws/dashboard", headers=[(b"origin", b"http://testserver")]
        )
        connected, code = await communicator.connect()
        assert not connected

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_room_start_reaches_the_dashboard_socket(livekit):
    from tests.conftest import make_member

    acme = make_member("Acme")
    room = room_services.create_room(tenant=acme.tenant, data={"name": "Go live"})
    client = Client()
    client.force_login(acme.user)

    async def scenario():
        communicator = _communicator(client)
        assert (await communicator.connect())[0]
        from asgiref.sync import sync_to_async

        await sync_to_async(room_services.start_room)(room=room)
        message = await communicator.receive_json_from(timeout=3)
        assert message["event"] == "room.started" and message["room_id"] == room.room_id
        await communicator.disconnect()

    async_to_sync(scenario)()
