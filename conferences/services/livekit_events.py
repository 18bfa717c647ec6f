"""What LiveKit tells us through its webhooks: who joined or left, and rooms that closed on
their own (empty timeout). Idempotent: LiveKit may deliver an event more than once."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from conferences import events, livekit
from conferences.models import Participant, Room

from . import recordings as recording_services
from . import rooms as room_services


@transaction.atomic
def apply(notice: livekit.WebhookNotice) -> str:
    """Apply one verified webhook; returns what was done (for logs and tests)."""
    if notice.event.startswith("egress_") and notice.egress is not None:
        return recording_services.egress_reported(state=notice.egress)
    room = Room.objects.select_for_update().filter(room_id=notice.room).first()
    if room is None:
        return "unknown-room"
    now = timezone.now()
    if notice.event == "participant_joined" and notice.identity:
        updated = Participant.objects.filter(room=room, identity=notice.identity).update(
            left_at=None
        )
        events.emit_on_commit(
            "participant.joined",
            tenant_id=room.tenant_id,
            room_id=room.room_id,
            data={"identity": notice.identity, "name": notice.name},
        )
        return "joined" if updated else "joined-untracked"
    if notice.event == "participant_left" and notice.identity:
        Participant.objects.filter(room=room, identity=notice.identity, left_at=None).update(
            left_at=now, hand_raised_at=None, invited_at=None
        )
        events.emit_on_commit(
            "participant.left",
            tenant_id=room.tenant_id,
            room_id=room.room_id,
            data={"identity": notice.identity, "name": notice.name},
        )
        from .calls import member_left_room  # a direct call ends when it is down to one

        member_left_room(room=room, identity=notice.identity)
        return "left"
    if notice.event == "room_finished":
        if room.live_since is None:
            return "already-ended"
        room_services.session_ended_by_livekit(room=room, now=now)
        return "ended"
    return "ignored"
