"""Celery tasks: translate a message into one service call. Ids in, JSON only, time limits.

`dispatch` runs every SCHEDULE_TICK_SECONDS from beat. It claims occurrences starting (and
sessions closing) within the lookahead and queues one task each with an ETA at its instant;
long ETAs are never used (far-future work waits in the database, not in the broker).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import defaultdict

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.utils import timezone

from conferences.services import attendance as attendance_services
from conferences.services import calls as call_services
from conferences.services import rooms as room_services
from conferences.services import schedule as schedule_services
from conferences.services import webhooks as webhook_services
from conferences.services.errors import InvalidState, LimitExceeded, Unavailable

logger = logging.getLogger(__name__)

START_TASK_SIZE = 1000  # most occurrences one start_occurrences task takes


def _backoff(retries: int) -> float:
    """Exponential backoff with jitter, capped at a minute."""
    return min(60.0, 2.0 ** min(retries, 6)) + random.uniform(0, 1)


@shared_task(name="conferences.dispatch", ignore_result=True, soft_time_limit=50, time_limit=60)
def dispatch() -> dict[str, int]:
    """Starts at least SCHEDULE_PREPARE_SECONDS ahead are grouped by their instant: their
    LiveKit rooms are pre-created now (`prepare_rooms`, SCHEDULE_START_BATCH to a task, in
    parallel), and at their second they go live in batches (`start_occurrences`: the second's
    starts split into SCHEDULE_START_TASKS tasks with an ETA, run at once).
    Nearer (or overdue) starts are started one by one, as are closes."""
    now = timezone.now()
    due = schedule_services.claim_due(now=now)
    lead = dt.timedelta(seconds=settings.SCHEDULE_PREPARE_SECONDS)
    ahead: dict[dt.datetime, list[int]] = defaultdict(list)
    for pk, start in due.starts:
        if start - now >= lead:
            ahead[start].append(pk)
        else:
            start_occurrence.apply_async((pk,), eta=start if start > now else None)
    size = max(1, settings.SCHEDULE_START_BATCH)
    for start, pks in ahead.items():
        for i in range(0, len(pks), size):
            prepare_rooms.apply_async((pks[i : i + size],))
        # A few tasks at once (ten batches of a hundred in one task made the last batch wait
        # for nine others' round trips and commits on PostgreSQL).
        for part in _start_parts(pks):
            start_occurrences.apply_async((part,), eta=start)
    for pk, close_at in due.closes:
        close_session.apply_async((pk,), eta=close_at if close_at > now else None)
    extended = schedule_services.extend_windows(now=now)
    released = room_services.release_prepared(now=now)
    return {
        "starts": len(due.starts),
        "closes": len(due.closes),
        "extended": extended,
        "released": released,
    }


def _start_parts(pks: list[int]) -> list[list[int]]:
    """The starts of one second split into SCHEDULE_START_TASKS tasks run at once by the
    worker's threads, at most START_TASK_SIZE each. Auto (0): one on SQLite (its writers queue
    for one lock anyway), else 4 (PostgreSQL updates the rows and indexes in parallel)."""
    tasks = settings.SCHEDULE_START_TASKS or (1 if connection.vendor == "sqlite" else 4)
    size = max(-(-len(pks) // max(1, tasks)), 1)
    size = min(size, START_TASK_SIZE)
    return [pks[i : i + size] for i in range(0, len(pks), size)]


@shared_task(
    name="conferences.prepare_rooms", ignore_result=True, soft_time_limit=50, time_limit=60
)
def prepare_rooms(occurrence_pks: list[int]) -> int:
    """Pre-create the LiveKit rooms of a batch of starts due soon (no retry: a room not
    pre-created by its second is started the ordinary way)."""
    return room_services.prepare_occurrences(occurrence_pks=occurrence_pks)


@shared_task(
    bind=True,
    name="conferences.start_occurrences",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=10,
    soft_time_limit=30,
    time_limit=40,
)
def start_occurrences(self, occurrence_pks: list[int]) -> int:
    """Start occurrences due at the same second, SCHEDULE_START_BATCH to a transaction
    (services: start_occurrences), each batch committed before the next begins, so the first
    are visible at once rather than all when the last is done (the whole costs the same); the
    ones a batch cannot take are started one by one at once, the early ones again in a moment.
    Several of these tasks run at once for one second (`_start_parts`)."""
    size = max(1, settings.SCHEDULE_START_BATCH)
    started, early = 0, []
    for i in range(0, len(occurrence_pks), size):
        result = room_services.start_occurrences(occurrence_pks=occurrence_pks[i : i + size])
        for pk in result.alone:
            start_occurrence.apply_async((pk,))
        started += len(result.started)
        early += result.early
    if early and self.request.retries < 10:
        raise self.retry(args=(early,), countdown=0.5)
    return started


@shared_task(
    bind=True,
    name="conferences.start_occurrence",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=30,
    time_limit=40,
)
def start_occurrence(self, occurrence_pk: int) -> str:
    try:
        result = room_services.start_occurrence(occurrence_pk=occurrence_pk)
    except Unavailable:
        # LiveKit is down: try again with backoff; once the occurrence's end has passed the
        # service marks it missed instead.
        logger.warning("LiveKit unavailable starting occurrence %s; retrying", occurrence_pk)
        raise self.retry(countdown=_backoff(self.request.retries)) from None
    except LimitExceeded as exc:
        room_services.mark_missed(occurrence_pk=occurrence_pk, note=exc.message)
        return "missed"
    except InvalidState as exc:
        room_services.mark_missed(occurrence_pk=occurrence_pk, note=exc.message)
        return "missed"
    if result == "early" and self.request.retries < 10:
        # An ETA that fired a moment early; an occurrence moved later is re-dispatched by
        # `dispatch` when it comes due, so give up after a few seconds.
        raise self.retry(countdown=0.5)
    return result


@shared_task(
    bind=True,
    name="conferences.close_session",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=30,
    time_limit=40,
)
def close_session(self, session_pk: int) -> str:
    try:
        result = room_services.close_session(session_pk=session_pk)
    except Unavailable:
        raise self.retry(countdown=_backoff(self.request.retries)) from None
    if result == "early" and self.request.retries < 10:
        raise self.retry(countdown=0.5)
    return result


@shared_task(
    name="conferences.reconcile_recordings", ignore_result=True, soft_time_limit=50, time_limit=60
)
def reconcile_recordings() -> dict[str, int]:
    """Settle recordings whose egress vanished or went silent; start missed auto-starts."""
    from conferences.services import recordings

    return recordings.reconcile()


@shared_task(
    name="conferences.enforce_recording_retention",
    ignore_result=True,
    soft_time_limit=300,
    time_limit=330,
)
def enforce_recording_retention() -> int:
    """Delete recordings older than their tenant's retention (files, then rows)."""
    from conferences.services import recordings

    return recordings.enforce_retention()


@shared_task(name="conferences.expire_call_requests", ignore_result=True, time_limit=30)
def expire_call_requests() -> int:
    """Direct-call requests nobody answered in time (beat, every second). Each is claimed by
    a conditional UPDATE, so overlapping runs on several workers tell each side once."""
    return call_services.expire_due()


# --- outbound webhooks and attendance -----------------------------------------------------


@shared_task(
    name="conferences.deliver_webhooks",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=300,
    time_limit=330,
)
def deliver_webhooks(endpoint_pk: int) -> str:
    """Deliver one endpoint's due events in order (see services.webhooks.deliver_endpoint).
    A full batch hands over to a fresh task so other endpoints get their turn."""
    result = webhook_services.deliver_endpoint(endpoint_pk=endpoint_pk)
    if result == "more":
        deliver_webhooks.delay(endpoint_pk)
    return result


@shared_task(
    name="conferences.webhooks_sweep", ignore_result=True, soft_time_limit=20, time_limit=30
)
def webhooks_sweep() -> int:
    """Queue every endpoint with a due delivery and no live lease: retries come due here, and
    work a lost message or a killed worker left behind is picked up again."""
    due = webhook_services.due_endpoints()
    for pk in due:
        deliver_webhooks.delay(pk)
    return len(due)


@shared_task(
    name="conferences.reconcile_attendance", ignore_result=True, soft_time_limit=50, time_limit=60
)
def reconcile_attendance() -> dict[str, int]:
    """Close attendances LiveKit never reported a leave for (ListParticipants per live room)."""
    return attendance_services.reconcile()
