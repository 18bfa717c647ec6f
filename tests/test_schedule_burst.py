"""Scheduled bursts: LiveKit rooms pre-created in the dispatcher's look-ahead, then many due
occurrences started in one batch at their second, each exactly once; pre-created rooms whose
start goes away are released; LiveKit down falls back to the one-by-one start at the due
second. (The real worker and beat run this path in tests/test_celery_worker.py.)"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conferences import events
from conferences.models import Occurrence, Room, RoomSession, WebhookEvent
from conferences.services import rooms as room_services
from conferences.services import schedule as schedule_services
from conferences.services import webhooks as webhook_services
from tests.conftest import make_member
from tests.event_tap import EventTap

LEAD = dt.timedelta(seconds=20)


@pytest.fixture
def big(db):
    """An enterprise tenant (no concurrent-room limit), subscribed to every webhook event."""
    member = make_member("Big Co", plan="enterprise")
    return member


@pytest.fixture
def hooked(big, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_QUEUE_ON_COMMIT = False
    webhook_services.create_endpoint(tenant=big.tenant, url="http://127.0.0.1:9/hook", events=["*"])
    return big


def scheduled(member, n: int, *, start: dt.datetime, length=dt.timedelta(hours=1)):
    """`n` one-off scheduled rooms all starting at `start`; their occurrence pks."""
    pks = []
    for i in range(n):
        room = room_services.create_room(
            tenant=member.tenant,
            data={
                "name": f"Burst {i}",
                "room_type": "scheduled",
                "start_time": start,
                "end_time": start + length,
            },
        )
        pks.append(Occurrence.objects.get(room=room).pk)
    return pks


def started_events(type_: str) -> int:
    return WebhookEvent.objects.filter(type=type_).count()


def test_pre_created_in_the_look_ahead_then_started_in_one_batch_exactly_once(
    hooked, livekit, django_capture_on_commit_callbacks, settings
):
    start = (timezone.now() + LEAD).replace(microsecond=0)
    pks = scheduled(hooked, 3, start=start)
    now = start - LEAD
    tap = EventTap(events.tenant_group(hooked.tenant.pk))
    assert room_services.prepare_occurrences(occurrence_pks=pks, now=now) == 3

    creates = livekit.calls_to("CreateRoom")
    rooms = Room.objects.filter(occurrences__pk__in=pks)
    assert sorted(c.request.name for c in creates) == sorted(r.room_id for r in rooms)
    # LiveKit's empty timeout counts from creation: it must outlast the wait for the start.
    assert {c.request.empty_timeout for c in creates} == {20 + settings.LIVEKIT_EMPTY_TIMEOUT}
    # Pre-created is not started: no session, no event, no webhook, the room still waits.
    assert {(r.status, r.live_since) for r in rooms} == {("scheduled", None)}
    assert all(r.prepared_at == now and r.livekit_sid for r in rooms)
    assert not RoomSession.objects.exists()
    assert started_events("occurrence.started") == started_events("session-started") == 0
    # Preparing again (a re-dispatch) calls LiveKit for nothing.
    assert room_services.prepare_occurrences(occurrence_pks=pks, now=now) == 0

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = room_services.start_occurrences(occurrence_pks=pks, now=start)
    assert sorted(result.started) == sorted(pks) and result.alone == result.early == []
    # One publication for the whole batch (plus one cache generation bump per tenant).
    published = [c for c in callbacks if "invalidate_tenant" not in c.__qualname__]
    assert len(published) == 1 and len(callbacks) == 2
    assert len(livekit.calls_to("CreateRoom")) == 3  # nothing more at the second
    for room in rooms.all():
        assert room.status == "active" and room.live_since == start
        assert room.prepared_at is None and room.livekit_sid
    assert {o.status for o in Occurrence.objects.filter(pk__in=pks)} == {"live"}
    assert RoomSession.objects.filter(started_at=start).count() == 3
    assert started_events("occurrence.started") == started_events("session-started") == 3

    again = room_services.start_occurrences(occurrence_pks=pks, now=start)
    assert again.started == again.alone == []
    assert RoomSession.objects.count() == 3 and started_events("occurrence.started") == 3
    # Over the whole test (pre-creation, the batch, the repeat): each event once per room.
    # (One drain: a Redis layer's receive buffer belongs to the event loop that made it.)
    assert tap.names() == ["occurrence.started"] * 3 + ["room.started"] * 3
    assert room_services.start_occurrence(occurrence_pk=pks[0], now=start) == "already"


def batch_queries(member, n: int) -> int:
    """Queries of one batch start of `n` pre-created occurrences of `member`'s tenant."""
    start = (timezone.now() + LEAD).replace(microsecond=0)
    pks = scheduled(member, n, start=start)
    room_services.prepare_occurrences(occurrence_pks=pks, now=start - LEAD)
    with CaptureQueriesContext(connection) as queries:
        assert len(room_services.start_occurrences(occurrence_pks=pks, now=start).started) == n
    return len(queries)


def test_batch_start_queries_do_not_grow_with_the_batch(big, livekit):
    # occurrences FOR UPDATE, rooms FOR UPDATE, plan limits, claim UPDATE, sessions INSERT,
    # rooms UPDATE, webhook endpoints, rooms with their own webhook (+ savepoint/transaction)
    assert batch_queries(big, 2) == batch_queries(big, 12)


def test_batch_start_webhooks_are_written_in_bulk(hooked, livekit):
    """A tenant subscribed to every event: the batch's webhook events and deliveries are
    written with a fixed number of queries (not ~6 per event), each as `record` would."""
    from conferences.models import WebhookDelivery

    assert batch_queries(hooked, 2) == batch_queries(hooked, 12)
    sessions = {s.room.room_id: s for s in RoomSession.objects.select_related("room")}
    started = WebhookEvent.objects.filter(type="session-started").order_by("pk")
    assert started.count() == 14 and started_events("occurrence.started") == 14
    for event in started:
        session = sessions[event.room_id]
        assert event.payload["data"]["session_id"] == session.session_id
        assert event.payload["data"]["started_at"] == session.started_at.isoformat().replace(
            "+00:00", "Z"
        )
        assert event.payload["room"]["status"] == "active"
        assert event.payload["tenant"] == hooked.tenant.public_id
    # One delivery per event, in the order of the events.
    deliveries = list(
        WebhookDelivery.objects.filter(event__type__in=["session-started", "occurrence.started"])
        .order_by("pk")
        .values_list("event_id", flat=True)
    )
    assert deliveries == sorted(deliveries) and len(set(deliveries)) == len(deliveries) == 28


def test_a_batch_with_a_rooms_own_webhook_records_every_event_as_before(hooked, livekit):
    from conferences.models import WebhookDelivery, WebhookEndpoint

    start = (timezone.now() + LEAD).replace(microsecond=0)
    pks = scheduled(hooked, 3, start=start)
    own = Room.objects.get(occurrences__pk=pks[1])
    Room.objects.filter(pk=own.pk).update(
        webhook_url="http://127.0.0.1:9/own", webhook_events=["session-started"]
    )
    room_services.prepare_occurrences(occurrence_pks=pks, now=start - LEAD)
    assert len(room_services.start_occurrences(occurrence_pks=pks, now=start).started) == 3
    endpoint = WebhookEndpoint.objects.get(room=own)
    # The tenant's endpoint gets all six events, the room's own endpoint its one.
    assert started_events("session-started") == started_events("occurrence.started") == 3
    [mine] = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event")
    assert mine.event.type == "session-started" and mine.event.room_id == own.room_id
    assert mine.event.payload["data"]["session_id"] == RoomSession.objects.get(room=own).session_id


def test_the_start_task_goes_through_its_batches_each_exactly_once(big, livekit, settings):
    """A start task with more starts than SCHEDULE_START_BATCH commits batch after batch; run
    again (a re-delivered message) it starts nothing more."""
    from conferences import tasks

    settings.SCHEDULE_START_BATCH = 2
    start = timezone.now().replace(microsecond=0)
    pks = scheduled(big, 5, start=start)
    room_services.prepare_occurrences(occurrence_pks=pks, now=start - LEAD)
    with CaptureQueriesContext(connection) as queries:
        assert tasks.start_occurrences.apply(args=(pks,)).get() == 5
    claims = [q for q in queries if q["sql"].startswith('UPDATE "conferences_occurrence"')]
    assert len(claims) == 3  # batches of 2, 2 and 1
    assert tasks.start_occurrences.apply(args=(pks,)).get() == 0
    assert RoomSession.objects.filter(occurrence__in=pks).count() == 5
    assert len(livekit.calls_to("CreateRoom")) == 5


def test_not_pre_created_early_or_limited_plans_go_one_by_one(owner, big, livekit):
    start = (timezone.now() + LEAD).replace(microsecond=0)
    [free] = scheduled(owner, 1, start=start)  # the free plan has a concurrent-room limit
    [later] = scheduled(big, 1, start=start + dt.timedelta(minutes=5))
    [unprepared] = scheduled(big, 1, start=start)
    room_services.prepare_occurrences(occurrence_pks=[free, later], now=start - LEAD)
    assert len(livekit.calls_to("CreateRoom")) == 2

    result = room_services.start_occurrences(occurrence_pks=[free, later, unprepared], now=start)
    assert result.started == [] and result.early == [later]
    assert sorted(result.alone) == sorted([free, unprepared])
    # One by one: the pre-created room is used as it is, the other is created now.
    assert room_services.start_occurrence(occurrence_pk=free, now=start) == "started"
    assert len(livekit.calls_to("CreateRoom")) == 2
    assert room_services.start_occurrence(occurrence_pk=unprepared, now=start) == "started"
    assert len(livekit.calls_to("CreateRoom")) == 3
    assert RoomSession.objects.count() == 2


def test_livekit_down_while_pre_creating_falls_back_to_the_start_at_the_due_second(big, livekit):
    start = (timezone.now() + LEAD).replace(microsecond=0)
    [pk] = scheduled(big, 1, start=start)
    livekit.down()
    assert room_services.prepare_occurrences(occurrence_pks=[pk], now=start - LEAD) == 0
    room = Room.objects.get(occurrences__pk=pk)
    assert room.prepared_at is None and room.livekit_sid == ""
    livekit.up()
    result = room_services.start_occurrences(occurrence_pks=[pk], now=start)
    assert result.alone == [pk] and not RoomSession.objects.exists()
    assert room_services.start_occurrence(occurrence_pk=pk, now=start) == "started"
    assert [c.request.name for c in livekit.calls_to("CreateRoom")] == [room.room_id]
    assert RoomSession.objects.get().started_at == start


def _prepared(member, livekit):
    start = (timezone.now() + LEAD).replace(microsecond=0)
    [pk] = scheduled(member, 1, start=start)
    assert room_services.prepare_occurrences(occurrence_pks=[pk]) == 1
    return Occurrence.objects.select_related("room").get(pk=pk)


@pytest.mark.parametrize("change", ["cancel", "move", "reschedule", "unschedule", "end_series"])
def test_a_pre_created_room_whose_start_goes_away_is_released(big, livekit, change):
    occurrence = _prepared(big, livekit)
    room = occurrence.room
    assert room_services.release_prepared() == 0  # still due: kept
    if change == "cancel":
        schedule_services.cancel_occurrence(occurrence=occurrence)
    elif change == "move":
        later = occurrence.start_time + dt.timedelta(hours=2)
        schedule_services.move_occurrence(occurrence=occurrence, start=later, end=None)
    elif change == "reschedule":
        later = occurrence.start_time + dt.timedelta(days=1)
        room_services.update_room(room=room, data={"start_time": later, "end_time": None})
    elif change == "unschedule":
        room_services.update_room(room=room, data={"room_type": "temporary"})
    else:
        schedule_services.end_series(occurrence=occurrence)
    assert room_services.release_prepared() == 1
    [delete] = livekit.calls_to("DeleteRoom")
    assert delete.request.room == room.room_id
    room.refresh_from_db()
    assert room.prepared_at is None and room.livekit_sid == "" and room.live_since is None
    assert room_services.release_prepared() == 0


def test_a_deleted_pre_created_room_is_deleted_on_livekit(
    big, livekit, django_capture_on_commit_callbacks
):
    room = _prepared(big, livekit).room
    with django_capture_on_commit_callbacks(execute=True):
        room_services.delete_room(room=room)
    assert [c.request.room for c in livekit.calls_to("DeleteRoom")] == [room.room_id]


def test_release_waits_while_livekit_is_down_and_never_touches_a_live_room(big, livekit):
    occurrence = _prepared(big, livekit)
    schedule_services.cancel_occurrence(occurrence=occurrence)
    livekit.down()
    assert room_services.release_prepared() == 0
    livekit.up()
    assert room_services.release_prepared() == 1

    other = _prepared(big, livekit)
    room_services.start_room(room=other.room)  # the host opens it early: uses the room as is
    assert len(livekit.calls_to("CreateRoom")) == 2
    other.refresh_from_db()
    assert other.status == "live"
    assert room_services.release_prepared() == 0
    assert [c.request.room for c in livekit.calls_to("DeleteRoom")] == [occurrence.room.room_id]


def test_changed_settings_after_pre_creation_refresh_the_room_at_the_start(big, livekit):
    occurrence = _prepared(big, livekit)
    room_services.update_room(room=occurrence.room, data={"max_participants": 7})
    start = occurrence.start_time
    result = room_services.start_occurrences(occurrence_pks=[occurrence.pk], now=start)
    assert result.alone == [occurrence.pk]
    assert room_services.start_occurrence(occurrence_pk=occurrence.pk, now=start) == "started"
    assert [c.request.max_participants for c in livekit.calls_to("CreateRoom")][-1] == 7


def test_a_room_recorded_automatically_starts_recording_with_its_batch(
    big, livekit, settings, tmp_path, django_capture_on_commit_callbacks
):
    from conferences.models import Recording

    settings.RECORDINGS_DIR = tmp_path / "recordings"
    settings.RECORDINGS_EGRESS_DIR = "/out"
    settings.PUBLIC_BASE_URL = "http://parley.test"
    start = (timezone.now() + LEAD).replace(microsecond=0)
    pks = scheduled(big, 2, start=start)
    recorded = Room.objects.get(occurrences__pk=pks[0])
    room_services.update_room(room=recorded, data={"recording_enabled": True})
    room_services.prepare_occurrences(occurrence_pks=pks, now=start - LEAD)
    with django_capture_on_commit_callbacks(execute=True):
        result = room_services.start_occurrences(occurrence_pks=pks, now=start)
    assert sorted(result.started) == sorted(pks)
    [egress] = livekit.calls_to("StartRoomCompositeEgress")
    assert egress.request.room_name == recorded.room_id
    assert Recording.objects.get().session == RoomSession.objects.get(room=recorded)


def test_a_seconds_starts_are_split_into_tasks_run_at_once(settings):
    from django.db import connection as db

    from conferences import tasks

    settings.SCHEDULE_START_TASKS = 4
    assert tasks._start_parts(list(range(10))) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    settings.SCHEDULE_START_TASKS = 1
    parts = tasks._start_parts(list(range(2500)))  # at most START_TASK_SIZE to a transaction
    assert [len(p) for p in parts] == [1000, 1000, 500] and sum(parts, []) == list(range(2500))
    settings.SCHEDULE_START_TASKS = 0  # auto: SQLite's writers queue for one lock anyway
    assert len(tasks._start_parts(list(range(8)))) == (1 if db.vendor == "sqlite" else 4)
