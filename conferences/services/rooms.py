"""Room lifecycle: create, update, delete, start, stop, and join tokens.

Rooms are `scheduled` (waiting for their start), `active` (open to join) or `completed`.
Independently, an active room is *live* while LiveKit holds a session for it (`live_since`);
the plan's concurrent-room limit counts live rooms, and is enforced when a room goes live:
on `start_room`, or on the first join token of an open room. LiveKit calls happen inside the
transaction, before anything is written, so a LiveKit failure leaves no trace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from accounts.models import Tenant
from conferences import events, livekit
from conferences.models import (
    Occurrence,
    Participant,
    Room,
    RoomSession,
    Schedule,
    default_host_controls,
    new_host_secret,
)
from conferences.roles import attributes_for, default_role, grants_for
from parley import hotcache

from . import attendance
from . import recordings as recording_services
from . import schedule as schedule_services
from .errors import InvalidState, LimitExceeded

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "room_type": Room.RoomType.TEMPORARY,
    "media_type": Room.MediaType.BOTH,
    "access_type": Room.AccessType.PUBLIC,
    "recurring": False,
    "recording_enabled": False,
    "screen_sharing_enabled": True,
    "chat_enabled": True,
    "waiting_room_enabled": False,
    "video_quality": Room.VideoQuality.HIGH,
    "audio_only_mode": False,
}
SETTINGS_FIELDS = (
    "name room_type media_type max_participants access_type start_time end_time recurring "
    "recording_enabled screen_sharing_enabled chat_enabled waiting_room_enabled video_quality "
    "audio_only_mode custom_logo_url timezone join_before_minutes allow_webinar_mode max_speakers "
    "recording_layout"
).split()
# Set by the compatibility facades (VideoSDK customRoomId, per-room webhook, automatic
# recording options and HLS), in the shared vocabulary of conferences.models.Room.
SETTINGS_FIELDS += [
    "custom_room_id",
    "webhook_url",
    "webhook_events",
    "recording_options",
    "hls_options",
]


def _apply(room: Room, data: dict[str, Any]) -> None:
    """Copy validated settings onto `room`, hashing the password and normalising access."""
    for name in SETTINGS_FIELDS:
        if name in data:
            value = data[name]
            setattr(room, name, "" if value is None and name == "custom_logo_url" else value)
    if "auto_close_config" in data:
        room.auto_close_type = data["auto_close_config"]["type"]
        room.auto_close_duration = data["auto_close_config"]["duration"]
    if "host_controls" in data:
        room.host_controls = {**default_host_controls(), **data["host_controls"]}
    if "password" in data:
        room.password_hash = make_password(data["password"])
    if "whitelist_emails" in data:
        room.whitelist_emails = data["whitelist_emails"]
    if "allowed_email_domains" in data:
        room.allowed_email_domains = data["allowed_email_domains"]
    # Credentials of an access type the room no longer uses are dropped, never kept around.
    if room.access_type != Room.AccessType.PASSWORD:
        room.password_hash = ""
    if room.access_type != Room.AccessType.WHITELIST:
        room.whitelist_emails = []
    if room.access_type != Room.AccessType.AUTHENTICATED:
        room.allowed_email_domains = []


SCHEDULING_FIELDS = {"room_type", "start_time", "end_time", "recurring", "recurrence", "timezone"}


@transaction.atomic
def create_room(*, tenant: Tenant, data: dict[str, Any]) -> Room:
    """Store a new room from validated `data` (RoomInputSerializer). No LiveKit call.

    A scheduled room gets its schedule and the occurrences of the rolling window."""
    Tenant.objects.filter(pk=tenant.pk).update(room_seq=F("room_seq") + 1)
    number = Tenant.objects.values_list("room_seq", flat=True).get(pk=tenant.pk)
    room = Room(
        tenant=tenant,
        number=number,
        max_participants=tenant.plan.max_participants_per_room,
        host_controls=default_host_controls(),
        timezone=tenant.timezone,
        **DEFAULTS,
    )
    _apply(room, data)
    if not room.name:  # facades whose rooms have no name (VideoSDK): its public meeting id
        room.name = room.meeting_id
    room.status = (
        Room.Status.SCHEDULED if room.room_type == Room.RoomType.SCHEDULED else Room.Status.ACTIVE
    )
    room.save()
    hotcache.invalidate_tenant(room.tenant_id)  # a newer room of the same name (Show facade)
    if room.room_type == Room.RoomType.SCHEDULED:
        _schedule(room, data, replace=False)
    events.emit_on_commit(
        "room.created", tenant_id=tenant.pk, room_id=room.room_id, data={"name": room.name}
    )
    return room


def create_or_get_room(*, tenant: Tenant, data: dict[str, Any]) -> tuple[Room, bool]:
    """`create_room`, idempotent on `data["custom_room_id"]`: the tenant's room with that id
    if it exists (created False), else a new one (created True). Two concurrent calls with
    the same id make one room: the (tenant, custom_room_id) unique constraint refuses the
    second insert, whose savepoint is rolled back, and the winner's room is returned."""
    custom_room_id = data.get("custom_room_id") or ""
    if not custom_room_id:
        return create_room(tenant=tenant, data=data), True
    rooms = Room.objects.for_tenant(tenant).filter(custom_room_id=custom_room_id)
    existing = rooms.first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return create_room(tenant=tenant, data=data), True
    except IntegrityError:
        existing = rooms.first()
        if existing is None:
            raise
        return existing, False


def _schedule(room: Room, data: dict[str, Any], *, replace: bool) -> None:
    rule = data.get("recurrence") if room.recurring else None
    write = schedule_services.replace_schedule if replace else schedule_services.create_schedule
    assert room.start_time is not None  # a scheduled room has one (validated)
    write(room=room, start=room.start_time, end=room.end_time, zone_name=room.timezone, rule=rule)


@transaction.atomic
def update_room(*, room: Room, data: dict[str, Any]) -> Room:
    """Change settings from validated partial `data`. A waiting scheduled room turned into an
    ordinary one opens at once; an open room turned scheduled waits for its start. Changing
    the schedule (start, end, rule, zone) replaces the series' future occurrences."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    was_scheduled = room.room_type == Room.RoomType.SCHEDULED
    _apply(room, data)
    if room.prepared_at is not None and room.live_since is None:
        # A LiveKit room pre-created with the old settings: its start goes the one-by-one
        # way (CreateRoom again, which updates it); the release sweep still sees it.
        room.livekit_sid = ""
    now = timezone.now()
    if room.room_type == Room.RoomType.SCHEDULED:
        if not was_scheduled or SCHEDULING_FIELDS & set(data):
            hotcache.invalidate_tenant(room.tenant_id)  # token path's cached room
            room.save()
            _schedule(room, data, replace=True)
    elif was_scheduled:
        schedule_services.drop_schedule(room=room, now=now)
    if room.live_since is None and room.status != Room.Status.COMPLETED:
        room.status = (
            Room.Status.SCHEDULED
            if room.room_type == Room.RoomType.SCHEDULED
            else Room.Status.ACTIVE
        )
    hotcache.invalidate_tenant(room.tenant_id)  # token path's cached room
    room.save()
    events.emit_on_commit(
        "room.updated",
        tenant_id=room.tenant_id,
        room_id=room.room_id,
        data={"name": room.name, "fields": sorted(data)},
    )
    return room


@transaction.atomic
def delete_room(*, room: Room) -> None:
    """Delete the room; a live one is closed on LiveKit first (503 if LiveKit is down)."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    recording_services.stop_all_for_room(room=room)
    if room.live_since is not None:
        _livekit_delete(room)
    elif room.prepared_at is not None:  # pre-created for a start that will never come
        name = room.livekit_name
        transaction.on_commit(lambda: _release_quietly(name))
    tenant_id, room_id = room.tenant_id, room.room_id
    hotcache.invalidate_tenant(room.tenant_id)  # token path's cached room
    room.delete()
    events.emit_on_commit("room.deleted", tenant_id=tenant_id, room_id=room_id, data={})


def _check_concurrency(room: Room) -> None:
    """Count the tenant's live rooms against its plan, with the tenant row locked so two
    rooms going live at once cannot both take the last slot. Unlimited plans skip the lock
    (it would serialise every start of the tenant)."""
    limit = Tenant.objects.filter(pk=room.tenant_id).values_list(
        "plan__max_concurrent_rooms", flat=True
    )[0]
    if limit is None:
        return
    tenant = Tenant.objects.select_for_update().select_related("plan").get(pk=room.tenant_id)
    limit = tenant.plan.max_concurrent_rooms
    if limit is None:
        return
    live = Room.objects.for_tenant(tenant).live().exclude(pk=room.pk).count()
    if live >= limit:
        raise LimitExceeded(
            f"Your {tenant.plan.name} plan allows {limit} concurrent rooms; stop a room first"
        )


def livekit_metadata(room: Room) -> dict[str, Any]:
    return {
        "room_id": room.room_id,
        "media_type": room.media_type,
        "video_quality": room.video_quality,
        "audio_only_mode": room.audio_only_mode,
        "chat_enabled": room.chat_enabled,
        "screen_sharing_enabled": room.screen_sharing_enabled,
        "waiting_room_enabled": room.waiting_room_enabled,
        "recording_enabled": room.recording_enabled,
        "host_controls": room.host_controls,
    }


def _close_at(room: Room, now: datetime, occurrence: Occurrence | None) -> datetime:
    """When auto-close ends a session starting now: the occurrence's (or a one-off room's)
    end_time if it lies ahead, else after the room's auto-close duration."""
    if occurrence is not None and occurrence.end_time and occurrence.end_time > now:
        return occurrence.end_time
    if occurrence is None and room.end_time and room.end_time > now and not room.recurring:
        return room.end_time
    return now + timedelta(minutes=room.auto_close_duration)


def _go_live(room: Room, now: datetime, occurrence: Occurrence | None = None) -> None:
    """Room is locked by the caller. Check the plan, create the LiveKit room, record it."""
    if room.deactivated_at is not None:
        raise InvalidState("The room has been deactivated", code="ROOM_DEACTIVATED")
    _check_concurrency(room)
    if room.prepared_at is not None and room.livekit_sid:
        sid = room.livekit_sid  # pre-created in the look-ahead with these settings
    else:
        sid = livekit.create_room(
            name=room.livekit_name,
            max_participants=room.max_participants,
            metadata=livekit_metadata(room),
        )
    room.prepared_at = None
    room.live_since = now
    room.livekit_sid = sid
    session = RoomSession.objects.create(
        room=room, occurrence=occurrence, started_at=now, close_at=_close_at(room, now, occurrence)
    )
    recording_services.session_started(room=room, session=session)


def _mark_started(room: Room, now: datetime) -> None:
    room.status = Room.Status.ACTIVE
    room.started_at = now
    room.ended_at = None
    hotcache.invalidate_tenant(room.tenant_id)  # token path's cached room
    room.save(
        update_fields=[
            "status",
            "started_at",
            "ended_at",
            "live_since",
            "livekit_sid",
            "prepared_at",
            "updated_at",
        ]
    )
    events.emit_on_commit("room.started", tenant_id=room.tenant_id, room_id=room.room_id, data={})


@transaction.atomic
def start_room(*, room: Room) -> Room:
    """Open the room now and make it live on LiveKit. Idempotent for a live room.

    A scheduled room may be started early by its host: the next occurrence whose join window
    is open (join_before_minutes) becomes this session, so the scheduler does not start it
    again."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    if room.live_since is not None:
        return room
    now = timezone.now()
    occurrence = None
    if room.room_type == Room.RoomType.SCHEDULED:
        occurrence = schedule_services.next_scheduled(
            room, not_after=now + timedelta(minutes=room.join_before_minutes)
        )
        if occurrence is not None:
            claimed = Occurrence.objects.filter(
                pk=occurrence.pk, status=Occurrence.Status.SCHEDULED
            ).update(status=Occurrence.Status.LIVE, started_at=now)
            occurrence = occurrence if claimed == 1 else None
    _go_live(room, now, occurrence)
    _mark_started(room, now)
    return room


def _livekit_delete(room: Room) -> None:
    livekit.delete_room(name=room.livekit_name)


def _deactivate(room: Room, now: datetime) -> None:
    """Room is locked by the caller: no session may start in it again (its future
    occurrences are cancelled, its schedule closed). The caller saves the room."""
    room.deactivated_at = now
    Occurrence.objects.filter(room=room, status=Occurrence.Status.SCHEDULED).update(
        status=Occurrence.Status.CANCELLED
    )
    Schedule.objects.filter(room=room).update(open_ended=False, generated_until=now)


def _end_session(
    room: Room, now: datetime, *, on_livekit: bool = True, deactivate: bool = False
) -> None:
    """Room is locked by the caller: close it on LiveKit (first: a failure writes nothing),
    then end its session and occurrence, deactivate if so configured, settle its status.
    Its recordings and streams are stopped first."""
    recording_services.stop_all_for_room(room=room, on_livekit=on_livekit)
    if room.live_since is not None and on_livekit:
        _livekit_delete(room)
    open_sessions = RoomSession.objects.filter(room=room, ended_at__isnull=True)
    occurrence_ids = [pk for pk in open_sessions.values_list("occurrence_id", flat=True) if pk]
    open_sessions.update(ended_at=now)
    Participant.objects.filter(room=room, left_at__isnull=True).update(
        left_at=now, hand_raised_at=None, invited_at=None
    )
    attendance.close_open(room=room, now=now)  # everyone still there left with the session
    Occurrence.objects.filter(room=room, status=Occurrence.Status.LIVE).update(
        status=Occurrence.Status.COMPLETED, ended_at=now
    )
    room.live_since = None
    room.livekit_sid = ""
    room.ended_at = now
    if deactivate or room.auto_close_type == "session-end-and-deactivate":
        _deactivate(room, now)
    if (
        room.deactivated_at is None
        and room.room_type == Room.RoomType.SCHEDULED
        and schedule_services.has_future(room, now)
    ):
        room.status = Room.Status.SCHEDULED
    else:
        room.status = Room.Status.COMPLETED
    hotcache.invalidate_tenant(room.tenant_id)  # token path's cached room
    room.save(
        update_fields=[
            "status",
            "live_since",
            "livekit_sid",
            "ended_at",
            "deactivated_at",
            "updated_at",
        ]
    )
    from .calls import session_ended  # a direct call backed by this room ends with it

    session_ended(room=room, now=now)
    events.emit_on_commit(
        "room.ended",
        tenant_id=room.tenant_id,
        room_id=room.room_id,
        data={"occurrences": len(occurrence_ids)},
    )


@transaction.atomic
def stop_room(*, room: Room) -> Room:
    """End the room for everyone, whatever the route (v1 /stop, host /end, the dashboard,
    the Interactive Show facade): LiveKit room deleted; status completed (a recurring room
    waits for its next occurrence); everyone still in its waiting room leaves the queue."""
    from . import lobby  # lobby issues tokens through this module

    room = Room.objects.select_for_update().get(pk=room.pk)
    if room.live_since is None and room.status == Room.Status.COMPLETED:
        raise InvalidState("The room has already ended", code="ROOM_ALREADY_ENDED")
    _end_session(room, timezone.now())
    lobby.close(room=room)
    return room


@transaction.atomic
def rotate_host_link(*, room: Room) -> Room:
    """A new host secret: every earlier host link stops working, and so does every host
    session a link opened (their proofs are keyed on the secret); open host pages are told
    and their sockets close. Returns the room with its new secret."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    room.host_secret = new_host_secret()
    room.save(update_fields=["host_secret", "updated_at"])
    hotcache.invalidate_tenant(room.tenant_id)  # join pages' cached room (host proofs)
    events.notify_on_commit(events.room_group(room.room_id), {"type": "host.revoked"})
    return room


@transaction.atomic
def deactivate_room(*, room: Room) -> Room:
    """Deactivate the room for good (VideoSDK `rooms/deactivate`): a live session is ended
    for everyone first, exactly as auto-close's session-end-and-deactivate does (503 and
    nothing written if LiveKit is down); joins and starts are refused from then on; as
    with stop_room, everyone still in its waiting room leaves the queue. Idempotent."""
    from . import lobby  # lobby issues tokens through this module

    room = Room.objects.select_for_update().get(pk=room.pk)
    if room.deactivated_at is not None:
        return room
    now = timezone.now()
    if room.live_since is not None:
        _end_session(room, now, deactivate=True)
    else:
        _deactivate(room, now)
        room.status = Room.Status.COMPLETED
        hotcache.invalidate_tenant(room.tenant_id)  # token path's cached room
        room.save(update_fields=["status", "deactivated_at", "updated_at"])
        events.emit_on_commit(
            "room.updated",
            tenant_id=room.tenant_id,
            room_id=room.room_id,
            data={"deactivated": True},
        )
    lobby.close(room=room)
    return room


def session_ended_by_livekit(*, room: Room, now: datetime) -> None:
    """LiveKit closed the room itself (everyone left and its empty timeout passed)."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    if room.live_since is not None:
        _end_session(room, now, on_livekit=False)


# --- scheduled work (called by Celery tasks) ------------------------------------------------


def start_occurrence(*, occurrence_pk: int, now: datetime | None = None) -> str:
    """Start one due occurrence exactly once.

    The claim is a conditional UPDATE (scheduled -> live) inside the transaction that also
    creates the LiveKit room and the session: a second worker, a re-delivered task or a
    restarted beat finds nothing to claim; a LiveKit failure rolls the claim back so a retry
    can take it. Returns started | already | missed | early | gone."""
    now = now or timezone.now()
    with transaction.atomic():
        occurrence = Occurrence.objects.select_related("room").filter(pk=occurrence_pk).first()
        if occurrence is None:
            return "gone"
        if occurrence.status != Occurrence.Status.SCHEDULED:
            return "already"
        room = occurrence.room
        end = occurrence.end_time or occurrence.start_time + timedelta(
            minutes=room.auto_close_duration
        )
        if end <= now:
            if Occurrence.objects.filter(
                pk=occurrence_pk, status=Occurrence.Status.SCHEDULED
            ).update(status=Occurrence.Status.MISSED, note="not started before its end"):
                events.emit_on_commit(
                    "occurrence.missed",
                    tenant_id=room.tenant_id,
                    room_id=room.room_id,
                    data={"occurrence_id": occurrence.occurrence_id},
                )
            return "missed"
        if occurrence.start_time > now + timedelta(seconds=1):
            return "early"
        claimed = Occurrence.objects.filter(
            pk=occurrence_pk, status=Occurrence.Status.SCHEDULED
        ).update(status=Occurrence.Status.LIVE, started_at=now)
        if claimed != 1:
            return "already"
        room = Room.objects.select_for_update().get(pk=room.pk)
        if room.live_since is None:
            _go_live(room, now, occurrence)
        else:  # the host started early: this occurrence joins the running session
            RoomSession.objects.filter(room=room, ended_at__isnull=True, occurrence=None).update(
                occurrence=occurrence
            )
        _mark_started(room, now)
        events.emit_on_commit(
            "occurrence.started",
            tenant_id=room.tenant_id,
            room_id=room.room_id,
            data={"occurrence_id": occurrence.occurrence_id},
        )
    return "started"


# --- scheduled bursts: LiveKit rooms pre-created in the look-ahead, started in batches ------


def _release_quietly(name: str) -> None:
    try:
        livekit.delete_room(name=name)
    except livekit.LiveKitUnavailable:  # LiveKit's empty timeout closes the unused room
        logger.warning("Could not release pre-created LiveKit room %s", name)


def prepare_occurrences(*, occurrence_pks: list[int], now: datetime | None = None) -> int:
    """Pre-create the LiveKit rooms of scheduled occurrences that start soon (the dispatcher's
    look-ahead), so that at their second they only have to be marked live. Nothing else
    changes: no session, no event, no webhook; the room stays `scheduled`.

    The room is marked first (`prepared_at`, committed), then LiveKit is called for all of
    them at once, outside any lock (a slow LiveKit must not hold rows locked), then each sid
    is recorded. A room LiveKit did not create is unmarked and starts the ordinary way at its
    second (CreateRoom then, with retries). Its empty_timeout covers the wait until the start
    plus LIVEKIT_EMPTY_TIMEOUT, so LiveKit never closes it before anyone could join. Returns
    how many rooms were pre-created."""
    now = now or timezone.now()
    occurrences = (
        Occurrence.objects.select_related("room")
        .filter(
            pk__in=occurrence_pks,
            status=Occurrence.Status.SCHEDULED,
            start_time__gt=now,
            room__live_since__isnull=True,
            room__deactivated_at__isnull=True,
            room__prepared_at__isnull=True,
        )
        .order_by("start_time")
    )
    wanted: dict[int, tuple[Room, Occurrence]] = {}
    for occurrence in occurrences:
        wanted.setdefault(occurrence.room_id, (occurrence.room, occurrence))
    if not wanted:
        return 0
    with transaction.atomic():
        marked = list(
            Room.objects.select_for_update()
            .filter(pk__in=list(wanted), prepared_at__isnull=True, live_since__isnull=True)
            .values_list("pk", flat=True)
        )
        Room.objects.filter(pk__in=marked).update(prepared_at=now)
    specs = []
    for pk in marked:
        room, occurrence = wanted[pk]
        wait = math.ceil((occurrence.start_time - now).total_seconds())
        specs.append(
            livekit.RoomSpec(
                name=room.livekit_name,
                max_participants=room.max_participants,
                metadata=livekit_metadata(room),
                empty_timeout=max(wait, 0) + settings.LIVEKIT_EMPTY_TIMEOUT,
            )
        )
    sids = livekit.create_rooms(specs)
    prepared = 0
    with transaction.atomic():
        for pk in marked:
            mine = Room.objects.filter(pk=pk, prepared_at=now, live_since__isnull=True)
            sid = sids.get(wanted[pk][0].livekit_name)
            if sid:
                prepared += mine.update(livekit_sid=sid)
            else:
                mine.filter(livekit_sid="").update(prepared_at=None)
        for tenant_id in {wanted[pk][0].tenant_id for pk in marked}:
            hotcache.invalidate_tenant(tenant_id)  # token path's cached rooms
    return prepared


@dataclass(frozen=True)
class BatchStart:
    started: list[int]  # occurrences that went live in this batch
    early: list[int]  # not due yet (an ETA that fired early): try again in a moment
    alone: list[int]  # to start one by one (start_occurrence): see start_occurrences


def start_occurrences(*, occurrence_pks: list[int], now: datetime | None = None) -> BatchStart:
    """Start many due occurrences at once, each exactly once: the burst at the top of the
    hour. One transaction locks the occurrences and their rooms, claims every still
    scheduled one with one conditional UPDATE, creates their sessions in one INSERT, marks
    their rooms live in one UPDATE, and emits `room.started` and `occurrence.started` (events
    and webhooks) after commit. No LiveKit call: only rooms pre-created in the look-ahead
    (prepare_occurrences) are taken. Anything else is returned in `alone` for the one-by-one
    start_occurrence, which keeps every rule and retry: a room not pre-created (LiveKit was
    down, or its settings changed), already live (host started early), deactivated, past its
    end, on a plan with a concurrent-room limit, or with two occurrences in the batch.
    Occurrences no longer scheduled (started, cancelled, deleted) are simply left out.

    Rows are read as tuples, not model instances: building a thousand of each is most of
    the cost of a burst."""
    now = now or timezone.now()
    with transaction.atomic():
        occurrences = list(
            Occurrence.objects.select_for_update()
            .filter(pk__in=occurrence_pks, status=Occurrence.Status.SCHEDULED)
            .order_by("pk")
            .values_list("pk", "room_id", "occurrence_id", "start_time", "end_time")
        )
        rooms = _batch_rooms({o[1] for o in occurrences})
        limits = dict(
            Tenant.objects.filter(pk__in={r.tenant_id for r in rooms.values()}).values_list(
                "pk", "plan__max_concurrent_rooms"
            )
        )
        batch: list[tuple[int, str, datetime | None, _BatchRoom]] = []
        early: list[int] = []
        alone: list[int] = []
        taken: set[int] = set()
        for pk, room_pk, occurrence_id, start_time, end_time in occurrences:
            room = rooms[room_pk]
            end = end_time or start_time + timedelta(minutes=room.auto_close_duration)
            if start_time > now + timedelta(seconds=1):
                early.append(pk)
            elif (
                end <= now
                or not room.ready
                or limits.get(room.tenant_id) is not None
                or room.pk in taken
            ):
                alone.append(pk)
            else:
                taken.add(room.pk)
                batch.append((pk, occurrence_id, end_time, room))
        if not batch:
            return BatchStart(started=[], early=early, alone=alone)
        started = [pk for pk, _, _, _ in batch]
        claimed = Occurrence.objects.filter(
            pk__in=started, status=Occurrence.Status.SCHEDULED
        ).update(status=Occurrence.Status.LIVE, started_at=now)
        if claimed != len(batch):  # the rows are locked: nobody else can have claimed one
            raise RuntimeError(f"claimed {claimed} of {len(batch)} locked occurrences")
        sessions = RoomSession.objects.bulk_create(
            [
                RoomSession(
                    room_id=room.pk,
                    occurrence_id=pk,
                    started_at=now,
                    # _close_at for an occurrence: its end if ahead, else the auto-close.
                    close_at=(
                        end_time
                        if end_time and end_time > now
                        else now + timedelta(minutes=room.auto_close_duration)
                    ),
                )
                for pk, _, end_time, room in batch
            ]
        )
        Room.objects.filter(pk__in=taken).update(
            status=Room.Status.ACTIVE,
            started_at=now,
            ended_at=None,
            live_since=now,
            prepared_at=None,
            updated_at=timezone.now(),
        )
        recording = [(room, s) for (_, _, _, room), s in zip(batch, sessions, strict=True)]
        recording = [(room, s) for room, s in recording if room.records]
        if recording:  # rooms recorded automatically: the recording service reads the room
            full = Room.objects.in_bulk([room.pk for room, _ in recording])
            for room, session in recording:
                recording_services.session_started(room=full[room.pk], session=session)
        emitted: list[events.Event] = []
        for _, occurrence_id, _, room in batch:
            emitted.append(events.Event("room.started", room.tenant_id, room.room_id, {}))
            emitted.append(
                events.Event(
                    "occurrence.started",
                    room.tenant_id,
                    room.room_id,
                    {"occurrence_id": occurrence_id},
                )
            )
        events.emit_many_on_commit(emitted)
        for tenant_id in {room.tenant_id for _, _, _, room in batch}:
            hotcache.invalidate_tenant(tenant_id)  # token path's cached rooms (now live)
    return BatchStart(started=started, early=early, alone=alone)


@dataclass(frozen=True)
class _BatchRoom:
    pk: int
    tenant_id: int
    room_id: str
    auto_close_duration: int
    ready: bool  # pre-created for this start, not live, not deactivated
    records: bool  # starts a recording or a stream with its sessions


def _batch_rooms(pks: set[int]) -> dict[int, _BatchRoom]:
    """The rooms of a batch start, locked (FOR UPDATE, in pk order), as plain tuples."""
    rows = (
        Room.objects.select_for_update()
        .filter(pk__in=pks)
        .order_by("pk")
        .values_list(
            "pk",
            "tenant_id",
            "room_id",
            "auto_close_duration",
            "deactivated_at",
            "prepared_at",
            "livekit_sid",
            "live_since",
            "recording_enabled",
            "hls_options",
        )
    )
    rooms: dict[int, _BatchRoom] = {}
    for pk, tenant, room_id, duration, deactivated, prepared, sid, live, recorded, hls in rows:
        rooms[pk] = _BatchRoom(
            pk=pk,
            tenant_id=tenant,
            room_id=room_id,
            auto_close_duration=duration,
            ready=deactivated is None and prepared is not None and bool(sid) and live is None,
            records=bool(recorded or hls is not None),  # recordings.wanted_kinds() not empty
        )
    return rooms


def release_prepared(*, now: datetime | None = None, limit: int = 200) -> int:
    """Delete the LiveKit rooms pre-created for starts that are no longer coming (cancelled,
    moved out of the look-ahead, rescheduled, the series ended, missed): a pre-created room
    with no scheduled occurrence due within the look-ahead. Each room is locked and checked
    again, so a room that went live meanwhile is never touched. LiveKit down: left for the
    next tick (and LiveKit's empty timeout closes it anyway). Returns how many released."""
    now = now or timezone.now()
    horizon = now + timedelta(
        seconds=settings.SCHEDULE_LOOKAHEAD_SECONDS + settings.SCHEDULE_PREPARE_SECONDS
    )

    def due(room: Any) -> Any:
        return Occurrence.objects.filter(
            room=room, status=Occurrence.Status.SCHEDULED, start_time__lte=horizon
        )

    stale = list(
        Room.objects.filter(prepared_at__isnull=False, live_since__isnull=True)
        .exclude(Exists(due(OuterRef("pk"))))
        .values_list("pk", flat=True)[:limit]
    )
    released = 0
    for pk in stale:
        with transaction.atomic():
            room = (
                Room.objects.select_for_update()
                .filter(pk=pk, prepared_at__isnull=False, live_since__isnull=True)
                .first()
            )
            if room is None or due(room).exists():
                continue
            try:
                livekit.delete_room(name=room.livekit_name)
            except livekit.LiveKitUnavailable:
                logger.warning("LiveKit unavailable releasing room %s; next tick", room.room_id)
                continue
            Room.objects.filter(pk=pk).update(prepared_at=None, livekit_sid="")
            hotcache.invalidate_tenant(room.tenant_id)  # token path's cached room
            released += 1
    return released


def mark_missed(*, occurrence_pk: int, note: str) -> bool:
    return bool(
        Occurrence.objects.filter(pk=occurrence_pk, status=Occurrence.Status.SCHEDULED).update(
            status=Occurrence.Status.MISSED, note=note[:200]
        )
    )


def close_session(*, session_pk: int, now: datetime | None = None) -> str:
    """Auto-close: end the session if it is still open and due. closed | already | early."""
    now = now or timezone.now()
    with transaction.atomic():
        session = RoomSession.objects.filter(pk=session_pk, ended_at__isnull=True).first()
        if session is None:
            return "already"
        if session.close_at is None or session.close_at > now + timedelta(seconds=1):
            return "early"
        room = Room.objects.select_for_update().get(pk=session.room_id)
        if not RoomSession.objects.filter(pk=session_pk, ended_at__isnull=True).exists():
            return "already"
        _end_session(room, now)
    return "closed"


def _hidden_token(object_id: str, secret_key: str) -> str:
    message = f"parley:hidden-participant\x00{object_id}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:40]


def hidden_token(room: Room) -> str:
    """The room's hidden-participant secret: who holds it may mint a hidden, subscribe-only
    token through the public Callaba helper. Derived (HMAC-SHA256 keyed with SECRET_KEY over
    the room's object id), so nothing secret is stored; it changes with SECRET_KEY."""
    from django.conf import settings

    return _hidden_token(room.object_id, settings.SECRET_KEY)


def hidden_token_matches(room: Room, token: object) -> bool:
    """Constant-time check of a presented hidden token; tokens derived from a key in
    SECRET_KEY_FALLBACKS still match while a key rotation is under way."""
    from django.conf import settings

    if not isinstance(token, str) or not token or len(token) > 128 or not token.isascii():
        return False
    keys = [settings.SECRET_KEY, *(getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ())]
    return any(
        hmac.compare_digest(token.encode(), _hidden_token(room.object_id, key).encode())
        for key in keys
    )


@dataclass(frozen=True)
class IssuedToken:
    token: str
    ws_url: str
    room_name: str
    identity: str
    name: str
    role: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenRequest:
    """One join token to issue (see issue_token for what each field means)."""

    room: Room
    name: str
    identity: str | None = None
    role: str | None = None
    hidden: bool = False


def issue_token(
    *,
    room: Room,
    name: str,
    identity: str | None = None,
    role: str | None = None,
    hidden: bool = False,
) -> IssuedToken:
    """A short-lived LiveKit join token for `room` with exactly the grants of a role.

    The role is the one asked for (and then stored for the identity), else the identity's
    stored role (a promoted speaker's next token carries it), else the room's default
    (viewer in webinar mode, participant otherwise). The room must be open; an open room
    that is not live yet goes live first (plan limit, LiveKit room created). A `hidden`
    token (the caller has checked the room's hidden_token) is invisible and subscribe-only."""
    request = TokenRequest(room=room, name=name, identity=identity, role=role, hidden=hidden)
    return issue_tokens([request])[0]


def issue_tokens(requests: Sequence[TokenRequest]) -> list[IssuedToken]:
    """issue_token for several requests at once, in order, by the same rules (the join-token
    fast path answers the requests that arrived together this way). Their participant rows
    are written by one statement (`_record_participants`), not one each. Any error (a room
    that is not open, the plan limit, LiveKit down) raises for all of them."""
    live: dict[int, Room] = {}
    for request in requests:
        room = request.room
        if room.status == Room.Status.SCHEDULED:
            raise InvalidState("The room has not started yet", code="ROOM_NOT_STARTED")
        if room.status == Room.Status.COMPLETED:
            raise InvalidState("The room has ended", code="ROOM_ENDED")
        if room.live_since is None and room.pk not in live:
            with transaction.atomic():
                locked = Room.objects.select_for_update().get(pk=room.pk)
                if locked.live_since is None and locked.status == Room.Status.ACTIVE:
                    now = timezone.now()
                    _go_live(locked, now)
                    _mark_started(locked, now)
                live[room.pk] = locked
    rows: list[_Row] = []
    for request in requests:
        room = live.get(request.room.pk, request.room)
        role, identity = request.role or None, request.identity
        if not identity:
            role = role or default_role(room)
            identity = f"{role}-{secrets.token_hex(6)}"
        rows.append(_Row(room=room, identity=identity, name=request.name, role=role))
    issued = []
    for request, row, (role, mic_only, hand_raised) in zip(
        requests, rows, _record_participants(rows), strict=True
    ):
        token, expires_at = livekit.mint_token(
            identity=row.identity,
            name=row.name,
            grants=grants_for(role, row.room, mic_only=mic_only, hidden=request.hidden),
            attributes={
                k: v for k, v in attributes_for(role, hand_raised=hand_raised).items() if v
            },
            metadata=json.dumps({"role": str(role), "displayName": row.name}),
        )
        issued.append(
            IssuedToken(
                token=token,
                ws_url=settings.LIVEKIT_PUBLIC_URL,
                room_name=row.room.livekit_name,
                identity=row.identity,
                name=row.name,
                role=str(role),
                expires_at=expires_at,
            )
        )
    return issued


@dataclass(frozen=True)
class _Row:
    room: Room
    identity: str
    name: str
    role: str | None  # the role asked for (None: the stored one, else the room's default)


_UPSERT_ROWS = 100  # rows per statement at most (8 parameters each)


def _upsert_sql(rows: int, *, asked: bool) -> str:
    """INSERT ... VALUES (...) x rows ON CONFLICT (room, identity) DO UPDATE ... RETURNING,
    from the model's table and column names (PostgreSQL and SQLite >= 3.35 share the
    syntax). `asked`: the rows carry the role asked for, which replaces the stored one (and
    mic-only ends with a change of role); otherwise they carry the room's default role, used
    only for a new row, and the stored role and mic-only stay."""
    key = (rows, asked)
    sql = _UPSERT_SQL.get(key)
    if sql is None:
        meta = Participant._meta
        t = connection.ops.quote_name(meta.db_table)

        def c(field: str) -> str:
            return connection.ops.quote_name(meta.get_field(field).column)  # type: ignore[union-attr,arg-type]

        role_change = (
            f"{c('role')} = EXCLUDED.{c('role')}, {c('mic_only')} = CASE WHEN "
            f"{t}.{c('role')} = EXCLUDED.{c('role')} THEN {t}.{c('mic_only')} "
            f"ELSE EXCLUDED.{c('mic_only')} END, "
        )
        sql = (
            f"INSERT INTO {t} ({c('room')}, {c('identity')}, {c('name')}, {c('role')}, "
            f"{c('mic_only')}, {c('invite_mic_only')}, {c('created_at')}, {c('updated_at')}) "
            f"VALUES {', '.join(['(%s, %s, %s, %s, %s, %s, %s, %s)'] * rows)} "
            f"ON CONFLICT ({c('room')}, {c('identity')}) DO UPDATE SET "
            f"{c('name')} = EXCLUDED.{c('name')}, {role_change if asked else ''}"
            f"{c('left_at')} = NULL, {c('updated_at')} = EXCLUDED.{c('updated_at')} "
            f"RETURNING {c('room')}, {c('identity')}, {c('role')}, {c('mic_only')}, "
            f"{c('hand_raised_at')}"
        )
        _UPSERT_SQL[key] = sql
    return sql


_UPSERT_SQL: dict[tuple[int, bool], str] = {}


def _record_participants(rows: Sequence[_Row]) -> list[tuple[str, bool, bool]]:
    """Store each identity's role in its room and answer (role, mic_only, hand_raised) as
    then stored, in order: the role asked for, else the one already stored, else the room's
    default. The row's hand and invitation state survive; mic-only survives while the role
    stays.

    INSERT ... ON CONFLICT (room, identity) DO UPDATE ... RETURNING, so two tokens for one
    identity at once cannot lose a role or fail on the unique constraint, and a token reads
    and writes its row in a single round trip: one statement for all the rows asking for a
    role and one for the others. A statement may not touch a row twice, so an identity that
    comes again in `rows` is written by the next round of statements, as if one at a time."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    stored: list[tuple[str, bool, bool] | None] = [None] * len(rows)
    pending = list(range(len(rows)))
    while pending:
        seen: set[tuple[int, str]] = set()
        this_round: list[int] = []
        later: list[int] = []
        for i in pending:
            key = (rows[i].room.pk, rows[i].identity)
            (later if key in seen else this_round).append(i)
            seen.add(key)
        for asked in (True, False):
            group = [i for i in this_round if (rows[i].role is not None) is asked]
            for at in range(0, len(group), _UPSERT_ROWS):
                chunk = group[at : at + _UPSERT_ROWS]
                params: list[Any] = []
                for i in chunk:
                    row = rows[i]
                    role = row.role if asked else default_role(row.room)
                    params += [row.room.pk, row.identity, row.name, role, False, False, now, now]
                with connection.cursor() as cursor:
                    cursor.execute(_upsert_sql(len(chunk), asked=asked), params)
                    found = {(r[0], r[1]): r[2:] for r in cursor.fetchall()}
                for i in chunk:
                    role, mic_only, hand_raised_at = found[(rows[i].room.pk, rows[i].identity)]
                    stored[i] = (str(role), bool(mic_only), hand_raised_at is not None)
        pending = later
    return [s for s in stored if s is not None]


def live_participants(*, room: Room) -> list[livekit.ParticipantDict]:
    """Who is in the room on LiveKit right now (LiveKit down: Unavailable)."""
    return livekit.list_participants(room=room.livekit_name)
