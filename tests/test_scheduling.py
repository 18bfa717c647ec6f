"""Scheduled and recurring rooms: the API, occurrences, exactly-once starts, auto-close."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conferences.models import Occurrence, Room, RoomSession
from conferences.services import rooms as room_services
from conferences.services import schedule as schedule_services
from conferences.services.errors import Unavailable
from tests.conftest import Api, assert_error

UTC = dt.UTC


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def soon(**delta) -> dt.datetime:
    return (timezone.now() + dt.timedelta(**delta)).replace(microsecond=0)


def create(api, **body):
    response = api.post("/api/v1/rooms", {"name": "Scheduled", **body})
    assert response.status_code == 201, response.content
    return response.json()


def occurrences(api, room, query=""):
    response = api.get(f"/api/v1/rooms/{room['room_id']}/occurrences{query}")
    assert response.status_code == 200, response.content
    return response.json()["occurrences"]


class TestCreate:
    def test_one_off_scheduled_room_has_one_occurrence(self, api):
        start = soon(days=1)
        room = create(
            api,
            room_type="scheduled",
            start_time=iso(start),
            end_time=iso(start + dt.timedelta(hours=1)),
        )
        assert room["status"] == "scheduled" and room["recurrence"] is None
        [occ] = occurrences(api, room)
        assert occ["start_time"] == iso(start) and occ["status"] == "scheduled"
        assert occ["end_time"] == iso(start + dt.timedelta(hours=1))
        assert occ["opens_at"] == iso(start - dt.timedelta(minutes=10))

    def test_recurring_weekly_in_berlin_keeps_nine_oclock_across_dst(self, api):
        # 09:00 Berlin on Monday 2027-03-15; DST starts 2027-03-28.
        room = create(
            api,
            room_type="scheduled",
            recurring=True,
            timezone="Europe/Berlin",
            start_time="2027-03-15T09:00:00+01:00",
            end_time="2027-03-15T10:00:00+01:00",
            recurrence={"frequency": "weekly", "count": 4},
        )
        assert room["recurrence"].startswith("RRULE:FREQ=WEEKLY")
        assert room["timezone"] == "Europe/Berlin"
        occ = occurrences(api, room)
        assert [o["local_start"][11:16] for o in occ] == ["09:00"] * 4
        assert [o["start_time"] for o in occ] == [
            "2027-03-15T08:00:00Z",
            "2027-03-22T08:00:00Z",
            "2027-03-29T07:00:00Z",
            "2027-04-05T07:00:00Z",
        ]
        assert all(
            o["end_time"][11:13] == str(int(o["start_time"][11:13]) + 1).zfill(2) for o in occ
        )

    def test_recurring_without_rule_repeats_weekly(self, api):
        start = soon(days=1)
        room = create(api, recurring=True, start_time=iso(start))
        assert room["room_type"] == "scheduled"
        assert room["recurrence"] == "RRULE:FREQ=WEEKLY"
        occ = occurrences(api, room)
        assert len(occ) >= 8  # a 60-day rolling window
        gaps = {
            dt.datetime.fromisoformat(b["start_time"]) - dt.datetime.fromisoformat(a["start_time"])
            for a, b in zip(occ, occ[1:], strict=False)
        }
        assert gaps == {dt.timedelta(weeks=1)}  # the tenant's zone is UTC: no DST

    def test_rrule_text_with_exdate(self, api):
        room = create(
            api,
            recurring=True,
            timezone="America/New_York",
            start_time="2027-01-04T09:00:00-05:00",
            recurrence="RRULE:FREQ=DAILY;COUNT=5\nEXDATE:20270106T090000",
        )
        days = [o["local_start"][:10] for o in occurrences(api, room)]
        assert days == ["2027-01-04", "2027-01-05", "2027-01-07", "2027-01-08"]

    def test_listing_further_than_the_window_extends_it(self, api):
        room = create(api, recurring=True, start_time=iso(soon(days=1)))
        before = len(occurrences(api, room))
        far = iso(soon(days=200))
        assert len(occurrences(api, room, f"?to={far}&limit=500")) > before + 15

    def test_a_finite_series_far_ahead_is_listed_whole(self, api):
        # Item 17 of #17: a monthly COUNT=3 series starting years ahead listed 2 of 3 (the
        # third lay beyond the stored window); a series with COUNT or UNTIL is listed whole.
        start = soon(days=3 * 365).replace(day=1, hour=9, minute=0, second=0)
        room = create(api, recurring=True, start_time=iso(start), recurrence="FREQ=MONTHLY;COUNT=3")
        body = api.get(f"/api/v1/rooms/{room['room_id']}/occurrences").json()
        months = [o["local_start"][:7] for o in body["occurrences"]]
        assert len(months) == 3 and len(set(months)) == 3 and months[0] == iso(start)[:7]
        assert body["total"] == 3 and body["window_end"] is None and body["next"] is None
        last_day = (start + dt.timedelta(days=400)).date().isoformat()
        weekly = create(api, recurring=True, start_time=iso(start),
                        recurrence={"frequency": "weekly", "until": last_day})  # fmt: skip
        body = api.get(f"/api/v1/rooms/{weekly['room_id']}/occurrences?limit=500").json()
        assert body["total"] == 58 and len(body["occurrences"]) == 58  # 400 days of weeks
        assert body["window_end"] is None and body["next"] is None

    def test_an_endless_series_says_where_its_window_ends_and_links_the_next(self, api):
        room = create(api, recurring=True, start_time=iso(soon(days=1)))  # weekly, no end
        body = api.get(f"/api/v1/rooms/{room['room_id']}/occurrences?limit=3").json()
        assert body["total"] > 3 and len(body["occurrences"]) == 3
        window_end = dt.datetime.fromisoformat(body["window_end"])
        assert window_end > soon(days=55)  # the stored window (SCHEDULE_WINDOW_DAYS = 60)
        starts = [o["start_time"] for o in body["occurrences"]]
        seen = list(starts)
        link = body["next"]  # the rest of this window first, page by page ...
        assert link.startswith("http://testserver/api/v1/rooms/") and "offset=3" in link
        while link and len(seen) < 40:
            page = api.get(link.removeprefix("http://testserver")).json()
            seen += [o["start_time"] for o in page["occurrences"]]
            link = page["next"]
        # ... then the next windows: every week, no gap and no repeat across the boundary.
        assert len(seen) >= 40 and len(set(seen)) == len(seen)
        days = [dt.datetime.fromisoformat(s) for s in seen]
        assert {(b - a) for a, b in zip(days, days[1:], strict=False)} == {dt.timedelta(weeks=1)}

    @pytest.mark.parametrize(
        "body, field",
        [
            (
                {
                    "recurring": True,
                    "start_time": "2027-01-04T09:00:00Z",
                    "recurrence": "FREQ=HOURLY",
                },
                "recurrence",
            ),
            (
                {
                    "recurring": True,
                    "start_time": "2027-01-04T09:00:00Z",
                    "recurrence": "FREQ=WEEKLY;UNTIL=20260101T000000Z",
                },
                "recurrence",
            ),
            (
                {
                    "recurring": True,
                    "start_time": "2027-01-04T09:00:00Z",
                    "recurrence": "FREQ=DAILY;COUNT=100000",
                },
                "recurrence",
            ),
            (
                {
                    "recurring": True,
                    "start_time": "2027-01-04T09:00:00Z",
                    "recurrence": {"frequency": "fortnightly"},
                },
                "recurrence",
            ),
            (
                {"recurring": True, "start_time": "2027-01-04T09:00:00Z", "timezone": "Mars/Base"},
                "timezone",
            ),
            (
                {
                    "recurring": False,
                    "start_time": "2027-01-04T09:00:00Z",
                    "room_type": "scheduled",
                    "recurrence": "FREQ=DAILY",
                },
                "recurrence",
            ),
            ({"recurring": True}, "start_time"),
            (
                {"recurrence": 7, "room_type": "scheduled", "start_time": "2027-01-04T09:00:00Z"},
                "recurrence",
            ),
            ({"auto_close_config": {"type": "never"}}, "auto_close_config"),
            ({"auto_close_config": {"duration": 0}}, "auto_close_config"),
            ({"join_before_minutes": -1}, "join_before_minutes"),
        ],
    )
    def test_bad_schedules_are_rejected(self, api, body, field):
        assert_error(
            api.post("/api/v1/rooms", {"name": "Bad", **body}), 400, "INVALID_PARAMETER", field
        )
        assert Room.objects.count() == 0 and Occurrence.objects.count() == 0

    def test_patching_the_schedule_replaces_future_occurrences(self, api):
        room = create(
            api, recurring=True, start_time="2027-01-04T09:00:00Z", recurrence="FREQ=DAILY;COUNT=3"
        )
        response = api.patch(
            f"/api/v1/rooms/{room['room_id']}", {"recurrence": "FREQ=WEEKLY;COUNT=2"}
        )
        assert response.status_code == 200, response.content
        assert [o["start_time"] for o in occurrences(api, room)] == [
            "2027-01-04T09:00:00Z",
            "2027-01-11T09:00:00Z",
        ]
        # Moving the start keeps the rule.
        api.patch(f"/api/v1/rooms/{room['room_id']}", {"start_time": "2027-01-05T10:00:00Z"})
        assert [o["start_time"] for o in occurrences(api, room)] == [
            "2027-01-05T10:00:00Z",
            "2027-01-12T10:00:00Z",
        ]

    def test_making_a_scheduled_room_ordinary_drops_its_occurrences(self, api):
        room = create(api, room_type="scheduled", start_time=iso(soon(days=1)))
        body = api.patch(f"/api/v1/rooms/{room['room_id']}", {"room_type": "permanent"}).json()
        assert body["status"] == "active"
        assert occurrences(api, room) == []


class TestEdits:
    @pytest.fixture
    def series(self, api):
        return create(
            api,
            recurring=True,
            timezone="Europe/Berlin",
            start_time="2027-03-15T09:00:00+01:00",
            end_time="2027-03-15T10:00:00+01:00",
            recurrence={"frequency": "weekly", "count": 5},
        )

    def test_move_one_occurrence(self, api, series):
        occ = occurrences(api, series)
        path = f"/api/v1/rooms/{series['room_id']}/occurrences/{occ[1]['occurrence_id']}"
        body = api.patch(path, {"start_time": "2027-03-23T14:00:00+01:00"}).json()
        assert body["start_time"] == "2027-03-23T13:00:00Z"
        assert body["end_time"] == "2027-03-23T14:00:00Z"  # keeps its hour
        assert body["modified"] is True and body["original_start"] == occ[1]["start_time"]
        after = occurrences(api, series)
        assert [o["start_time"] for o in after] == [
            occ[0]["start_time"],
            "2027-03-23T13:00:00Z",
            *[o["start_time"] for o in occ[2:]],
        ]

    def test_cancel_one_occurrence(self, api, series):
        occ = occurrences(api, series)
        path = f"/api/v1/rooms/{series['room_id']}/occurrences/{occ[2]['occurrence_id']}"
        assert api.delete(path).json()["status"] == "cancelled"
        statuses = [o["status"] for o in occurrences(api, series)]
        assert statuses == ["scheduled", "scheduled", "cancelled", "scheduled", "scheduled"]
        assert_error(
            api.patch(path, {"start_time": "2027-04-01T10:00:00Z"}), 409, "OCCURRENCE_NOT_EDITABLE"
        )

    def test_change_the_series_from_one_occurrence_on(self, api, series):
        occ = occurrences(api, series)
        path = f"/api/v1/rooms/{series['room_id']}/occurrences/{occ[2]['occurrence_id']}"
        response = api.patch(
            path,
            {
                "scope": "following",
                "start_time": "2027-03-29T11:00:00+02:00",
                "end_time": "2027-03-29T12:30:00+02:00",
            },
        )
        assert response.status_code == 200, response.content
        after = occurrences(api, series)
        assert [o["local_start"][11:16] for o in after] == [
            "09:00",
            "09:00",
            "11:00",
            "11:00",
            "11:00",
        ]
        assert len(after) == 5  # COUNT=5 holds across the split
        assert after[3]["end_time"] == "2027-04-05T10:30:00Z"

    def test_new_rule_from_an_occurrence_on(self, api, series):
        occ = occurrences(api, series)
        path = f"/api/v1/rooms/{series['room_id']}/occurrences/{occ[1]['occurrence_id']}"
        api.patch(path, {"scope": "following", "recurrence": "FREQ=DAILY;COUNT=2"})
        days = [o["local_start"][:10] for o in occurrences(api, series)]
        assert days == ["2027-03-15", "2027-03-22", "2027-03-23"]

    def test_end_the_series(self, api, series):
        occ = occurrences(api, series)
        path = f"/api/v1/rooms/{series['room_id']}/occurrences/{occ[3]['occurrence_id']}"
        api.delete(path + "?scope=following")
        statuses = [o["status"] for o in occurrences(api, series)]
        assert statuses == ["scheduled"] * 3 + ["cancelled"] * 2

    @pytest.mark.parametrize(
        "body, field",
        [
            ({"start_time": "soon"}, "start_time"),
            ({"scope": "all"}, "scope"),
            ({"recurrence": "FREQ=DAILY"}, "recurrence"),
            ({"colour": 1}, "colour"),
            ({"scope": "following", "recurrence": "FREQ=MINUTELY"}, "recurrence"),
            (
                {"start_time": "2027-03-23T14:00:00Z", "end_time": "2027-03-23T13:00:00Z"},
                "end_time",
            ),
        ],
    )
    def test_bad_edits(self, api, series, body, field):
        occ = occurrences(api, series)
        path = f"/api/v1/rooms/{series['room_id']}/occurrences/{occ[1]['occurrence_id']}"
        assert_error(api.patch(path, body), 400, "INVALID_PARAMETER", field)
        assert occurrences(api, series) == occ

    def test_outsider_gets_404_on_occurrences(self, api, series, outsider):
        occ = occurrences(api, series)[0]
        stranger = Api(outsider.api_key)
        base = f"/api/v1/rooms/{series['room_id']}/occurrences"
        assert_error(stranger.get(base), 404)
        assert_error(stranger.get(f"{base}/{occ['occurrence_id']}"), 404)
        assert_error(stranger.patch(f"{base}/{occ['occurrence_id']}", {"status": "cancelled"}), 404)
        assert_error(stranger.delete(f"{base}/{occ['occurrence_id']}"), 404)
        assert occurrences(api, series)[0]["status"] == "scheduled"

    def test_unknown_occurrence_is_404(self, api, series):
        assert_error(api.get(f"/api/v1/rooms/{series['room_id']}/occurrences/oc_nope"), 404)

    @pytest.mark.parametrize("count", [2, 40])
    def test_list_query_count_is_constant(self, api, count):
        room = create(
            api,
            recurring=True,
            start_time="2027-01-04T09:00:00Z",
            recurrence=f"FREQ=DAILY;COUNT={count}",
        )
        with CaptureQueriesContext(connection) as queries:
            assert len(occurrences(api, room, "?limit=100")) == count
        # key+tenant+plan, room, the room's unfinished series (none: this one was stored
        # whole), COUNT(*), the page joined with its schedule
        assert len(queries) == 5, [q["sql"] for q in queries]


def make_due(owner, *, start_in=dt.timedelta(seconds=0), length=dt.timedelta(hours=1), **extra):
    start = timezone.now() + start_in
    data = {
        "name": "Due",
        "room_type": "scheduled",
        "start_time": start,
        "end_time": start + length,
        **extra,
    }
    room = room_services.create_room(tenant=owner.tenant, data=data)
    return room, Occurrence.objects.get(room=room)


class TestStartsAndCloses:
    def test_start_occurrence_exactly_once(self, owner, livekit):
        room, occ = make_due(owner)
        assert room_services.start_occurrence(occurrence_pk=occ.pk) == "started"
        assert room_services.start_occurrence(occurrence_pk=occ.pk) == "already"
        assert len(livekit.calls_to("CreateRoom")) == 1
        room.refresh_from_db()
        occ.refresh_from_db()
        assert room.status == "active" and room.live_since is not None
        assert occ.status == "live" and occ.started_at is not None
        session = RoomSession.objects.get(room=room)
        assert session.occurrence == occ and session.close_at == occ.end_time

    def test_a_start_missed_while_workers_were_down_is_made_up(self, owner, livekit):
        room, occ = make_due(owner, start_in=-dt.timedelta(minutes=20))
        assert room_services.start_occurrence(occurrence_pk=occ.pk) == "started"

    def test_a_start_after_the_end_is_missed(self, owner, livekit):
        room, occ = make_due(owner, start_in=-dt.timedelta(hours=2))
        assert room_services.start_occurrence(occurrence_pk=occ.pk) == "missed"
        occ.refresh_from_db()
        assert occ.status == "missed" and livekit.calls == []

    def test_a_task_that_fires_early_does_nothing(self, owner, livekit):
        room, occ = make_due(owner, start_in=dt.timedelta(minutes=5))
        assert room_services.start_occurrence(occurrence_pk=occ.pk) == "early"
        occ.refresh_from_db()
        assert occ.status == "scheduled" and livekit.calls == []

    def test_livekit_down_rolls_the_claim_back(self, owner, livekit):
        room, occ = make_due(owner)
        livekit.down()
        with pytest.raises(Unavailable):
            room_services.start_occurrence(occurrence_pk=occ.pk)
        occ.refresh_from_db()
        assert occ.status == "scheduled" and not RoomSession.objects.exists()
        livekit.up()
        assert room_services.start_occurrence(occurrence_pk=occ.pk) == "started"
        assert RoomSession.objects.count() == 1

    def test_close_at_end_time_then_wait_for_the_next(self, owner, livekit):
        start = timezone.now()
        room = room_services.create_room(
            tenant=owner.tenant,
            data={
                "name": "Daily",
                "room_type": "scheduled",
                "recurring": True,
                "start_time": start,
                "end_time": start + dt.timedelta(minutes=30),
                "recurrence": schedule_services.recurrence.parse(
                    "FREQ=DAILY;COUNT=3", start=start, zone=dt.UTC
                ),
            },
        )
        first = Occurrence.objects.filter(room=room).order_by("start_time").first()
        assert room_services.start_occurrence(occurrence_pk=first.pk) == "started"
        session = RoomSession.objects.get()
        assert room_services.close_session(session_pk=session.pk) == "early"
        later = session.close_at + dt.timedelta(seconds=1)
        assert room_services.close_session(session_pk=session.pk, now=later) == "closed"
        assert room_services.close_session(session_pk=session.pk, now=later) == "already"
        [delete] = livekit.calls_to("DeleteRoom")
        assert delete.request.room == room.room_id
        room.refresh_from_db()
        first.refresh_from_db()
        assert room.status == "scheduled" and room.live_since is None
        assert first.status == "completed"

    def test_one_off_room_completes_when_closed(self, owner, livekit):
        room, occ = make_due(owner, length=dt.timedelta(minutes=1))
        room_services.start_occurrence(occurrence_pk=occ.pk)
        session = RoomSession.objects.get()
        room_services.close_session(session_pk=session.pk, now=occ.end_time)
        room.refresh_from_db()
        assert room.status == "completed"

    def test_session_end_and_deactivate(self, owner, livekit, api):
        start = timezone.now()
        room = create(
            api,
            recurring=True,
            start_time=iso(start),
            recurrence="FREQ=DAILY;COUNT=5",
            auto_close_config={"type": "session-end-and-deactivate", "duration": 30},
        )
        first = Occurrence.objects.filter(room__room_id=room["room_id"]).order_by("start_time")[0]
        room_services.start_occurrence(occurrence_pk=first.pk)
        session = RoomSession.objects.get()
        assert session.close_at - session.started_at == dt.timedelta(minutes=30)
        room_services.close_session(session_pk=session.pk, now=session.close_at)
        body = api.get(f"/api/v1/rooms/{room['room_id']}").json()
        assert body["deactivated"] is True and body["status"] == "completed"
        assert {o["status"] for o in occurrences(api, room)} == {"completed", "cancelled"}
        assert_error(api.post(f"/api/v1/rooms/{room['room_id']}/start"), 409, "ROOM_DEACTIVATED")

    def test_api_started_room_auto_closes_after_the_default_480_minutes(self, api, livekit):
        room = create(api)
        api.post(f"/api/v1/rooms/{room['room_id']}/start")
        session = RoomSession.objects.get()
        assert session.close_at - session.started_at == dt.timedelta(minutes=480)

    def test_host_starts_early_and_the_scheduler_does_not_start_again(self, owner, api, livekit):
        room, occ = make_due(owner, start_in=dt.timedelta(minutes=5))
        assert api.post(f"/api/v1/rooms/{room.room_id}/start").status_code == 200
        occ.refresh_from_db()
        assert occ.status == "live"
        later = occ.start_time + dt.timedelta(seconds=1)
        assert room_services.start_occurrence(occurrence_pk=occ.pk, now=later) == "already"
        assert len(livekit.calls_to("CreateRoom")) == 1

    def test_stop_completes_the_live_occurrence(self, owner, api, livekit):
        room, occ = make_due(owner)
        room_services.start_occurrence(occurrence_pk=occ.pk)
        assert api.post(f"/api/v1/rooms/{room.room_id}/stop").json()["status"] == "completed"
        occ.refresh_from_db()
        assert occ.status == "completed"


class TestDispatcher:
    def test_claims_due_work_once_and_redispatches_lost_work(self, owner, settings):
        _, due = make_due(owner, start_in=dt.timedelta(seconds=10))
        make_due(owner, start_in=dt.timedelta(hours=3))
        now = timezone.now()
        work = schedule_services.claim_due(now=now)
        assert [pk for pk, _ in work.starts] == [due.pk]
        assert schedule_services.claim_due(now=now).starts == []
        # Lost: still scheduled well after its start -> dispatched again.
        later = due.start_time + dt.timedelta(seconds=settings.SCHEDULE_REDISPATCH_SECONDS + 1)
        assert [pk for pk, _ in schedule_services.claim_due(now=later).starts] == [due.pk]

    def test_claims_sessions_to_close(self, owner, api, livekit):
        room, occ = make_due(owner, length=dt.timedelta(seconds=5))
        room_services.start_occurrence(occurrence_pk=occ.pk)
        work = schedule_services.claim_due(now=timezone.now())
        assert [pk for pk, _ in work.closes] == [RoomSession.objects.get().pk]

    def test_dispatch_task_runs_eagerly(self, owner, livekit, settings):
        from conferences import tasks
        from dashboard.celery import app

        room, occ = make_due(owner)
        app.conf.task_always_eager = True
        try:
            result = tasks.dispatch.apply().get()
        finally:
            app.conf.task_always_eager = False
        assert result["starts"] == 1
        occ.refresh_from_db()
        assert occ.status == "live" and len(livekit.calls_to("CreateRoom")) == 1

    def test_window_is_extended(self, owner):
        start = timezone.now() + dt.timedelta(hours=1)
        room = room_services.create_room(
            tenant=owner.tenant,
            data={
                "name": "Forever",
                "room_type": "scheduled",
                "recurring": True,
                "start_time": start,
                "recurrence": schedule_services.recurrence.parse(
                    "FREQ=DAILY", start=start, zone=dt.UTC
                ),
            },
        )
        count = Occurrence.objects.filter(room=room).count()
        assert 59 <= count <= 61
        assert schedule_services.extend_windows(now=timezone.now() + dt.timedelta(days=10)) >= 9
        assert Occurrence.objects.filter(room=room).count() >= count + 9
