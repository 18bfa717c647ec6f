"""What LiveKit tells us through its webhooks: rooms that started and closed on their own
(empty timeout), and who joined or left, recorded as attendance (services.attendance).
Idempotent: each webhook id is applied once; LiveKit may deliver an event more than once,
late, or out of order."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from conferences import livekit
from conferences.models import Room

from . import attendance, lobby
from . import recordings as recording_services
from . import rooms as room_services

logger = logging.getLogger(__name__)


def _put_out(room_name: str, identity: str) -> None:
    try:
        livekit.remove_participant(room=room_name, identity=identity)
    except livekit.LiveKitError:  # LiveKit down: its token expires soon anyway
        logger.warning("Could not remove %s from %s again", identity, room_name)


@transaction.atomic
def apply(notice: livekit.WebhookNotice) -> str:
    """Apply one verified webhook; returns what was done (for logs and tests)."""
    if notice.event.startswith("egress_") and notice.egress is not None:
        return recording_services.egress_reported(state=notice.egress)
    room = Room.objects.select_for_update().filter(room_id=notice.room).first()
    if room is None:
        return "unknown-room"
    if not attendance.first_time(notice.event_id, notice.event):
        return "duplicate"
    now = timezone.now()
    if notice.event == "participant_joined" and notice.identity:
        done = attendance.joined(room=room, notice=notice, now=now)
        if lobby.admission_ended(room=room, identity=notice.identity):
            # A removed guest came back with the token it still held (it lives for
            # LIVEKIT_TOKEN_TTL): it is put out again.
            name, identity = room.livekit_name, notice.identity
            transaction.on_commit(lambda: _put_out(name, identity))
            return "removed-again"
        return done
    if notice.event in ("participant_left", "participant_connection_aborted") and notice.identity:
        done = attendance.left(
            room=room,
            notice=notice,
            now=now,
            aborted=notice.event == "participant_connection_aborted",
        )
        from .calls import member_left_room  # a direct call ends when it is down to one

        member_left_room(room=room, identity=notice.identity)
        return done
    if notice.event == "room_started":
        return attendance.room_started(room=room, notice=notice)
    if notice.event == "room_finished":
        if room.live_since is None:
            return "already-ended"
        room_services.session_ended_by_livekit(room=room, now=now)
        return "ended"
    return "ignored"
