"""Schedules and occurrences: the rolling window, single-occurrence edits, series splits, and
claiming due work for the dispatcher.

Occurrences are stored ahead for `SCHEDULE_WINDOW_DAYS` (and on demand further, for listing);
each is identified by its rule start (`original_start`) so moving one never loses it, and a
re-run of the window never duplicates one (unique per schedule and rule start).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conferences import events, recurrence
from conferences.models import Occurrence, Room, RoomSession, Schedule
from parley import hotcache

from .errors import InvalidState, ServiceError

BATCH = 5000  # most due items claimed by one dispatcher tick


def window_end(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(days=settings.SCHEDULE_WINDOW_DAYS)


def rule_of(schedule: Schedule) -> recurrence.Recurrence | None:
    return recurrence.from_text(schedule.rule) if schedule.rule else None


def _starts(schedule: Schedule, after: dt.datetime, before: dt.datetime) -> list[dt.datetime]:
    """UTC starts of `schedule` in [after, before)."""
    rule = rule_of(schedule)
    if rule is None:
        return [schedule.start] if after <= schedule.start < before else []
    zone = recurrence.get_zone(schedule.timezone)
    return [
        utc
        for _, utc in recurrence.expand(
            rule, start=schedule.start, zone=zone, after=after, before=before
        )
    ]


def materialize(schedule: Schedule, *, until: dt.datetime) -> int:
    """Store the occurrences of `schedule` that start before `until`; returns how many new."""
    if not schedule.open_ended and schedule.generated_until is not None:
        until = min(until, schedule.generated_until)
    lo = schedule.generated_until or schedule.start
    if until <= lo and schedule.generated_until is not None:
        return 0
    starts = _starts(schedule, lo, until)
    rows = [
        Occurrence(
            room_id=schedule.room_id,
            schedule=schedule,
            original_start=start,
            start_time=start,
            end_time=start + schedule.duration if schedule.duration else None,
        )
        for start in starts
    ]
    created = Occurrence.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    done = schedule.rule == "" or _exhausted(schedule, until)
    Schedule.objects.filter(pk=schedule.pk).update(
        generated_until=max(until, schedule.generated_until or until),
        open_ended=schedule.open_ended and not done,
    )
    schedule.generated_until = max(until, schedule.generated_until or until)
    schedule.open_ended = schedule.open_ended and not done
    return len(created)


def _exhausted(schedule: Schedule, until: dt.datetime) -> bool:
    """True when the rule has no start at or after `until` (COUNT/UNTIL reached)."""
    last = series_end(schedule)
    return last is not None and last < until


def series_end(schedule: Schedule) -> dt.datetime | None:
    """UTC rule start of the schedule's last occurrence, or None when it never ends."""
    rule = rule_of(schedule)
    if rule is None:
        return schedule.start
    zone = recurrence.get_zone(schedule.timezone)
    return recurrence.last_start(rule, start=schedule.start, zone=zone)


def create_schedule(
    *,
    room: Room,
    start: dt.datetime,
    end: dt.datetime | None,
    zone_name: str,
    rule: recurrence.Recurrence | None,
    now: dt.datetime | None = None,
) -> Schedule:
    now = now or timezone.now()
    start = start.replace(microsecond=0)  # RRULE times have whole seconds
    schedule = Schedule.objects.create(
        room=room,
        start=start,
        duration=(end - start) if end else None,
        timezone=zone_name,
        rule=rule.as_text() if rule else "",
        open_ended=True,
    )
    materialize(schedule, until=window_end(max(now, start)))
    events.emit_on_commit(
        "occurrence.scheduled", tenant_id=room.tenant_id, room_id=room.room_id, data={}
    )
    return schedule


def replace_schedule(
    *,
    room: Room,
    start: dt.datetime,
    end: dt.datetime | None,
    zone_name: str,
    rule: recurrence.Recurrence | None,
    now: dt.datetime | None = None,
) -> Schedule:
    """The room's whole series changes: future scheduled occurrences go, a new schedule comes.
    Past, live and finished occurrences are kept as history."""
    now = now or timezone.now()
    Occurrence.objects.filter(room=room, status=Occurrence.Status.SCHEDULED).delete()
    Schedule.objects.filter(room=room, open_ended=True).update(
        open_ended=False, generated_until=now
    )
    return create_schedule(room=room, start=start, end=end, zone_name=zone_name, rule=rule, now=now)


def drop_schedule(*, room: Room, now: dt.datetime | None = None) -> None:
    """The room is no longer scheduled: its future occurrences go."""
    now = now or timezone.now()
    Occurrence.objects.filter(room=room, status=Occurrence.Status.SCHEDULED).delete()
    Schedule.objects.filter(room=room).update(open_ended=False, generated_until=now)


def extend_windows(*, now: dt.datetime, limit: int = 200) -> int:
    """Keep every open-ended schedule materialized a full window ahead."""
    target = window_end(now)
    stale = Schedule.objects.filter(
        open_ended=True, generated_until__lt=target - dt.timedelta(hours=1)
    ).order_by("generated_until")[:limit]
    return sum(materialize(schedule, until=target) for schedule in stale)


def ensure_until(*, room: Room, until: dt.datetime) -> None:
    """Materialize the room's open schedules up to `until` (listing further ahead)."""
    for schedule in Schedule.objects.filter(room=room, open_ended=True):
        materialize(schedule, until=until)


def ensure_complete(*, room: Room) -> dt.datetime | None:
    """Materialize every finite series (COUNT or UNTIL) of the room to its last occurrence, so
    a listing shows all of them (a series spans at most `recurrence.MAX_YEARS`).

    Returns the end of the stored window of the room's endless series (the earliest, if
    several), or None when no series of the room is endless: then every occurrence is stored.
    """
    window: dt.datetime | None = None
    for schedule in Schedule.objects.filter(room=room, open_ended=True):
        last = series_end(schedule)
        if last is not None:
            materialize(schedule, until=last + dt.timedelta(seconds=1))
        if schedule.open_ended:  # endless (or not yet used up): its window ends here
            stored = schedule.generated_until or schedule.start
            window = stored if window is None else min(window, stored)
    return window


def has_future(room: Room, now: dt.datetime) -> bool:
    return (
        Schedule.objects.filter(room=room, open_ended=True).exists()
        or Occurrence.objects.filter(
            room=room, status=Occurrence.Status.SCHEDULED, start_time__gt=now
        ).exists()
    )


def next_scheduled(room: Room, *, not_after: dt.datetime | None = None) -> Occurrence | None:
    qs = Occurrence.objects.filter(room=room, status=Occurrence.Status.SCHEDULED)
    if not_after is not None:
        qs = qs.filter(start_time__lte=not_after)
    return qs.order_by("start_time").first()


# --- single-occurrence edits and series splits ----------------------------------------------


def _editable(occurrence: Occurrence) -> None:
    if occurrence.status != Occurrence.Status.SCHEDULED:
        raise InvalidState(
            f"Only scheduled occurrences can be changed; this one is {occurrence.status}",
            code="OCCURRENCE_NOT_EDITABLE",
        )


@transaction.atomic
def move_occurrence(
    *, occurrence: Occurrence, start: dt.datetime, end: dt.datetime | None
) -> Occurrence:
    occurrence = Occurrence.objects.select_for_update().get(pk=occurrence.pk)
    _editable(occurrence)
    if end is not None and end <= start:
        raise ServiceError(
            "The 'end_time' must be after 'start_time'", code="INVALID_PARAMETER", field="end_time"
        )
    occurrence.start_time = start
    occurrence.end_time = end
    occurrence.modified = True
    occurrence.dispatched_at = None
    occurrence.save(update_fields=["start_time", "end_time", "modified", "dispatched_at"])
    return occurrence


@transaction.atomic
def cancel_occurrence(*, occurrence: Occurrence) -> Occurrence:
    occurrence = Occurrence.objects.select_for_update().get(pk=occurrence.pk)
    _editable(occurrence)
    occurrence.status = Occurrence.Status.CANCELLED
    occurrence.save(update_fields=["status"])
    _settle_room_status(occurrence.room_id)
    return occurrence


def _truncate(schedule: Schedule, before: dt.datetime, *, cancel: bool = False) -> None:
    """End `schedule` just before the rule start `before`: its later scheduled occurrences
    are dropped (or kept as cancelled), and the window never creates them again."""
    if schedule.open_ended and (schedule.generated_until or schedule.start) < before:
        materialize(schedule, until=before)
    later = Occurrence.objects.filter(
        schedule=schedule, original_start__gte=before, status=Occurrence.Status.SCHEDULED
    )
    if cancel:
        later.update(status=Occurrence.Status.CANCELLED)
    else:
        later.delete()
    Schedule.objects.filter(pk=schedule.pk).update(open_ended=False, generated_until=before)


@dataclass(frozen=True)
class SeriesChange:
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    zone_name: str | None = None
    rule: recurrence.Recurrence | None = None
    rule_given: bool = False


@transaction.atomic
def split_series(*, occurrence: Occurrence, change: SeriesChange) -> Schedule:
    """Change the series from `occurrence` on; earlier occurrences keep the old rule."""
    occurrence = Occurrence.objects.select_for_update().get(pk=occurrence.pk)
    _editable(occurrence)
    old = occurrence.schedule
    start = (change.start or occurrence.original_start).replace(microsecond=0)
    duration: dt.timedelta | None
    if change.end is not None:
        duration = change.end - start
        if duration <= dt.timedelta(0):
            raise ServiceError(
                "The 'end_time' must be after 'start_time'",
                code="INVALID_PARAMETER",
                field="end_time",
            )
    else:
        duration = old.duration
    zone_name = change.zone_name or old.timezone
    rule = change.rule if change.rule_given else _remaining_rule(old, occurrence.original_start)
    _truncate(old, occurrence.original_start)
    new = Schedule.objects.create(
        room_id=old.room_id,
        start=start,
        duration=duration,
        timezone=zone_name,
        rule=rule.as_text() if rule else "",
        open_ended=True,
    )
    materialize(new, until=window_end(max(timezone.now(), start)))
    return new


def _remaining_rule(schedule: Schedule, split_at: dt.datetime) -> recurrence.Recurrence | None:
    """The old rule continued from `split_at`: a COUNT shrinks by the starts already used."""
    rule = rule_of(schedule)
    if rule is None:
        return None
    parts = dict(p.split("=", 1) for p in rule.rule.split(";"))
    if "COUNT" in parts:
        used = len(_starts(schedule, schedule.start, split_at))
        left = int(parts["COUNT"]) - used
        if left <= 0:
            raise InvalidState("The series has no occurrence left to change", code="SERIES_ENDED")
        parts["COUNT"] = str(left)
    return recurrence.Recurrence(
        rule=";".join(f"{k}={v}" for k, v in parts.items()), exdates=rule.exdates
    )


@transaction.atomic
def end_series(*, occurrence: Occurrence) -> None:
    """Cancel `occurrence` and every later one of its series."""
    occurrence = Occurrence.objects.select_for_update().get(pk=occurrence.pk)
    _editable(occurrence)
    _truncate(occurrence.schedule, occurrence.original_start, cancel=True)
    for later in Schedule.objects.filter(
        room_id=occurrence.room_id, start__gt=occurrence.original_start
    ).exclude(pk=occurrence.schedule_id):
        _truncate(later, later.start, cancel=True)
    _settle_room_status(occurrence.room_id)


def _settle_room_status(room_pk: int) -> None:
    """A waiting scheduled room with nothing left to wait for is completed."""
    room = Room.objects.select_for_update().get(pk=room_pk)
    if room.status == Room.Status.SCHEDULED and not has_future(room, timezone.now()):
        Room.objects.filter(pk=room_pk).update(status=Room.Status.COMPLETED)
        hotcache.invalidate_tenant(room.tenant_id)


# --- the dispatcher -------------------------------------------------------------------------


@dataclass(frozen=True)
class DueWork:
    starts: list[tuple[int, dt.datetime]]  # occurrence pk, start (UTC)
    closes: list[tuple[int, dt.datetime]]  # session pk, close_at (UTC)


@transaction.atomic
def claim_due(*, now: dt.datetime) -> DueWork:
    """Occurrences to start and sessions to close within the lookahead, marked dispatched.

    An item dispatched before whose time has passed by the grace period without effect (a
    lost message, a worker that died) is dispatched again; the start and close services are
    idempotent, so a duplicate costs a no-op."""
    horizon = now + dt.timedelta(seconds=settings.SCHEDULE_LOOKAHEAD_SECONDS)
    grace = now - dt.timedelta(seconds=settings.SCHEDULE_REDISPATCH_SECONDS)
    # FOR UPDATE SKIP LOCKED: two overlapping ticks never claim the same rows.
    starts = list(
        Occurrence.objects.select_for_update(skip_locked=True)
        .filter(status=Occurrence.Status.SCHEDULED, start_time__lte=horizon)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=grace, start_time__lt=grace))
        .order_by("start_time")
        .values_list("pk", "start_time")[:BATCH]
    )
    closes = list(
        RoomSession.objects.select_for_update(skip_locked=True)
        .filter(ended_at__isnull=True, close_at__lte=horizon)
        .filter(
            Q(close_dispatched_at__isnull=True)
            | Q(close_dispatched_at__lt=grace, close_at__lt=grace)
        )
        .order_by("close_at")
        .values_list("pk", "close_at")[:BATCH]
    )
    for chunk in range(0, len(starts), 900):
        ids = [pk for pk, _ in starts[chunk : chunk + 900]]
        Occurrence.objects.filter(pk__in=ids).update(dispatched_at=now)
    if closes:
        RoomSession.objects.filter(pk__in=[pk for pk, _ in closes]).update(close_dispatched_at=now)
    return DueWork(starts=starts, closes=closes)  # type: ignore[arg-type]  # close_at__lte: not null
