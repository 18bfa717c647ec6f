"""Attendance from LiveKit's webhooks: who was in each session, from when to when.

LiveKit may repeat, reorder or drop webhooks, so:
- every webhook is applied once (its id is stored; a repeat changes nothing);
- an attendance is keyed by LiveKit's participant sid (a rejoin is a new sid, a new row);
- a `left` that arrives before its `joined` creates the row closed (the participant info it
  carries has the join time), and the late `joined` then finds it and does not reopen it;
- `reconcile` (beat, every ATTENDANCE_RECONCILE_SECONDS) asks LiveKit who is in each live
  room and closes attendances whose participant is gone (a dropped leave) and opens those
  LiveKit has but we never heard of (a dropped join). A leave webhook arriving after a
  reconciliation close puts the exact time back.
Participant-minutes (dashboard.usage) are computed from these rows, to the second.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from conferences import events, livekit
from conferences.models import Attendance, LiveKitWebhookReceipt, Participant, Room, RoomSession

logger = logging.getLogger(__name__)
RECONCILE_GRACE = dt.timedelta(seconds=5)  # a join this fresh may not be listed yet


def first_time(event_id: str, event: str) -> bool:
    """Store the webhook's id; False if it was applied before. Runs in the caller's
    transaction (a savepoint, so a duplicate does not break it)."""
    if not event_id:
        return True
    try:
        with transaction.atomic():
            LiveKitWebhookReceipt.objects.create(event_id=event_id, event=event[:40])
    except IntegrityError:
        return False
    return True


def _at(seconds: float, fallback: dt.datetime) -> dt.datetime:
    if not seconds:
        return fallback
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _session_at(room: Room, at: dt.datetime) -> RoomSession | None:
    """The session a moment belongs to: the open one, else the last started by then."""
    current = RoomSession.objects.filter(room=room, ended_at__isnull=True).order_by("-started_at")
    session = current.first()
    if session is not None:
        return session
    return (
        RoomSession.objects.filter(room=room, started_at__lte=at + dt.timedelta(seconds=5))
        .order_by("-started_at")
        .first()
    )


def _data(att: Attendance, session: RoomSession) -> dict[str, Any]:
    return {
        "identity": att.identity,
        "name": att.name,
        "participant_sid": att.participant_sid,
        "session_id": session.session_id,
        "joined_at": att.joined_at,
        "left_at": att.left_at,
    }


def joined(*, room: Room, notice: livekit.WebhookNotice, now: dt.datetime) -> str:
    at = _at(notice.joined_at or notice.created_at, now)
    session = _session_at(room, at)
    if session is None:
        return "no-session"
    if notice.participant_sid:
        sid = notice.participant_sid
        if Attendance.objects.filter(session__room=room, participant_sid=sid).exists():
            return "known"  # a repeat, or a late joined after its left: never reopened
    else:  # no sid (not from livekit-server): one open stay per identity
        sid = f"identity:{notice.identity}:{notice.event_id}"
        if Attendance.objects.filter(
            session=session, identity=notice.identity, left_at__isnull=True
        ).exists():
            return "known"
    left_at = session.ended_at  # joined reported after the session ended
    att = Attendance.objects.create(
        tenant_id=room.tenant_id,
        session=session,
        participant_sid=sid,
        identity=notice.identity,
        name=notice.name[:100],
        joined_at=min(at, left_at) if left_at else at,
        left_at=left_at,
        left_by=Attendance.LeftBy.SESSION_ENDED if left_at else "",
    )
    if left_at is None:
        Participant.objects.filter(room=room, identity=notice.identity).update(left_at=None)
    events.emit_on_commit(
        "participant.joined",
        tenant_id=room.tenant_id,
        room_id=room.room_id,
        data=_data(att, session),
    )
    return "joined"


def left(*, room: Room, notice: livekit.WebhookNotice, now: dt.datetime, aborted: bool) -> str:
    at = _at(notice.created_at, now)
    by = Attendance.LeftBy.ABORTED if aborted else Attendance.LeftBy.LEFT
    if notice.participant_sid:
        att = (
            Attendance.objects.select_related("session")
            .filter(session__room=room, participant_sid=notice.participant_sid)
            .first()
        )
    else:  # no sid: the identity's latest open attendance
        att = (
            Attendance.objects.select_related("session")
            .filter(session__room=room, identity=notice.identity, left_at__isnull=True)
            .order_by("-joined_at")
            .first()
        )
    Participant.objects.filter(room=room, identity=notice.identity, left_at=None).update(
        left_at=now, hand_raised_at=None, invited_at=None
    )
    if att is None:  # its joined was dropped or comes later: record the whole stay now
        joined_at = _at(notice.joined_at, at)
        session = _session_at(room, joined_at)
        if session is None:
            return "no-session"
        att = Attendance.objects.create(
            tenant_id=room.tenant_id,
            session=session,
            participant_sid=notice.participant_sid
            or f"identity:{notice.identity}:{notice.event_id}",
            identity=notice.identity,
            name=notice.name[:100],
            joined_at=min(joined_at, at),
            left_at=at,
            left_by=by,
        )
    elif att.left_at is None:
        att.left_at = max(at, att.joined_at)
        att.left_by = by
        att.save(update_fields=["left_at", "left_by"])
    elif att.left_by == Attendance.LeftBy.RECONCILED or (
        att.left_by == Attendance.LeftBy.SESSION_ENDED and at < att.left_at
    ):
        # Closed when we noticed (reconciliation, session end); LiveKit's time is exact.
        att.left_at = max(at, att.joined_at)
        att.left_by = by
        att.save(update_fields=["left_at", "left_by"])
        return "corrected"
    else:
        return "already-left"
    events.emit_on_commit(
        "participant.left",
        tenant_id=room.tenant_id,
        room_id=room.room_id,
        data={**_data(att, att.session), "reason": by},
    )
    return "left"


def room_started(*, room: Room, notice: livekit.WebhookNotice) -> str:
    session = RoomSession.objects.filter(room=room, ended_at__isnull=True).first()
    if session is None:
        return "no-session"
    if notice.room_sid and not session.livekit_sid:
        RoomSession.objects.filter(pk=session.pk).update(livekit_sid=notice.room_sid)
    return "started"


def close_open(*, room: Room, now: dt.datetime) -> int:
    """The session ended: everyone still in it left now."""
    return Attendance.objects.filter(session__room=room, left_at__isnull=True).update(
        left_at=now, left_by=Attendance.LeftBy.SESSION_ENDED
    )


def reconcile(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Compare every live room's open attendances with LiveKit's participant list: close the
    ones LiveKit no longer has, open the ones it has that we never heard of. Rooms LiveKit
    cannot list now are left for the next run."""
    now = now or timezone.now()
    closed = opened = rooms = 0
    for room in Room.objects.live().only("pk", "room_id", "tenant_id"):
        try:
            present = livekit.list_participants(room=room.livekit_name)
        except livekit.LiveKitError:
            continue
        rooms += 1
        c, o = _reconcile_room(room, present, now)
        closed += c
        opened += o
    return {"rooms": rooms, "closed": closed, "opened": opened}


@transaction.atomic
def _reconcile_room(
    room: Room, present: list[livekit.ParticipantDict], now: dt.datetime
) -> tuple[int, int]:
    session = RoomSession.objects.filter(room=room, ended_at__isnull=True).first()
    if session is None:
        return 0, 0
    sids = {p["sid"] for p in present}
    closed = 0
    for att in Attendance.objects.filter(session=session, left_at__isnull=True):
        if att.participant_sid in sids or att.joined_at > now - RECONCILE_GRACE:
            continue
        if att.participant_sid.startswith("identity:") and any(
            p["identity"] == att.identity for p in present
        ):
            continue
        att.left_at = max(now, att.joined_at)
        att.left_by = Attendance.LeftBy.RECONCILED
        att.save(update_fields=["left_at", "left_by"])
        closed += 1
        events.emit_on_commit(
            "participant.left",
            tenant_id=room.tenant_id,
            room_id=room.room_id,
            data={**_data(att, session), "reason": "reconciled"},
        )
    known = set(
        Attendance.objects.filter(session__room=room, participant_sid__in=sids).values_list(
            "participant_sid", flat=True
        )
    )
    opened = 0
    for p in present:
        if p["sid"] in known or not p["sid"]:
            continue
        att = Attendance.objects.create(
            tenant_id=room.tenant_id,
            session=session,
            participant_sid=p["sid"],
            identity=p["identity"],
            name=p["name"][:100],
            joined_at=max(_at(p["joined_at"], now), session.started_at),
        )
        opened += 1
        events.emit_on_commit(
            "participant.joined",
            tenant_id=room.tenant_id,
            room_id=room.room_id,
            data=_data(att, session),
        )
    return closed, opened
