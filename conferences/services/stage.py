"""The stage: raise hand, invite, promote, demote — live, through LiveKit.

Every change is stored first (so the identity's next token carries it), then pushed to the
connected participant with one UpdateParticipant carrying the whole new permission set and
the server-owned attributes (`role`, `hand`), inside the same transaction: if LiveKit fails
the change is rolled back. Notifications go out after commit: a domain event to the room's
Channels group (the host's live queue) and a LiveKit data message in the interactive-show
vocabulary (hand_raise, guest_invite, guest_promoted, ...) for clients written for it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from conferences import access, events, livekit, selectors
from conferences.models import Participant, Room
from conferences.roles import STAGE_ROLES, Role, attributes_for, grants_for
from parley import ratelimit

from . import moderation
from .errors import Conflict, InvalidState, LockedOut, NotFound

STAGE_ACTIONS_PER_MINUTE = 30  # hand and invitation answers one identity may send

# Reads moved to conferences.selectors; kept here for callers written against this module.
Hand = selectors.Hand
Lineup = selectors.Lineup
HANDS_SHOWN = selectors.HANDS_SHOWN
hand_queue = selectors.hand_queue
lineup = selectors.lineup
present_participant = selectors.present_participant

logger = logging.getLogger(__name__)


def _locked(room: Room, identity: str) -> tuple[Room, Participant]:
    room = Room.objects.select_for_update().get(pk=room.pk)
    participant = (
        Participant.objects.select_for_update().filter(room=room, identity=identity).first()
    )
    if participant is None or participant.left_at is not None:
        raise NotFound(
            f"No participant '{identity[:128]}' in this room", code="PARTICIPANT_NOT_FOUND"
        )
    return room, participant


def _push(room: Room, participant: Participant, *, permissions: bool) -> None:
    """Apply the stored role and hand to the connected participant (no-op when not live or
    not connected)."""
    if room.live_since is None:
        return
    grants = (
        grants_for(participant.role, room, mic_only=participant.mic_only) if permissions else None
    )
    livekit.update_participant(
        room=room.livekit_name,
        identity=participant.identity,
        grants=grants,
        attributes=attributes_for(
            participant.role, hand_raised=participant.hand_raised_at is not None
        ),
    )


def _data_on_commit(room: Room, payload: dict[str, Any], *, to: list[str] | None = None) -> None:
    """Best-effort LiveKit data message after commit (the stored change stands without it)."""
    if room.live_since is None:
        return
    message = {**payload, "timestamp": int(time.time() * 1000)}

    def send() -> None:
        try:
            livekit.send_data(room=room.livekit_name, payload=message, destination_identities=to)
        except livekit.LiveKitError:
            logger.warning("Could not send %s to room %s", payload.get("type"), room.room_id)

    transaction.on_commit(send)


def _event(room: Room, name: str, participant: Participant, **extra: Any) -> None:
    events.emit_on_commit(
        name,
        tenant_id=room.tenant_id,
        room_id=room.room_id,
        data={
            "identity": participant.identity,
            "name": participant.name,
            "role": participant.role,
            **extra,
        },
    )


@transaction.atomic
def set_hand(*, room: Room, identity: str, raised: bool) -> Participant:
    """Raise or lower `identity`'s hand. Idempotent; hosts and speakers are on stage already."""
    room, participant = _locked(room, identity)
    if raised and participant.role in STAGE_ROLES:
        raise Conflict("Hosts and speakers are already on stage", code="ALREADY_ON_STAGE")
    if raised == (participant.hand_raised_at is not None):
        return participant
    participant.hand_raised_at = timezone.now() if raised else None
    participant.save(update_fields=["hand_raised_at", "updated_at"])
    _push(room, participant, permissions=False)
    kind = "hand_raise" if raised else "hand_lower"
    _event(room, f"participant.{'hand_raised' if raised else 'hand_lowered'}", participant)
    _data_on_commit(
        room, {"type": kind, "senderId": participant.identity, "senderName": participant.name}
    )
    return participant


@transaction.atomic
def lower_all_hands(*, room: Room) -> int:
    room = Room.objects.select_for_update().get(pk=room.pk)
    raised = list(
        Participant.objects.select_for_update()
        .present()
        .filter(room=room, hand_raised_at__isnull=False)
    )
    for participant in raised:
        participant.hand_raised_at = None
        participant.save(update_fields=["hand_raised_at", "updated_at"])
        _push(room, participant, permissions=False)
        _event(room, "participant.hand_lowered", participant)
        _data_on_commit(
            room,
            {
                "type": "hand_lower",
                "senderId": participant.identity,
                "senderName": participant.name,
            },
        )
    return len(raised)


@transaction.atomic
def invite(
    *, room: Room, identity: str, mic_only: bool = False, host_name: str = "Host"
) -> Participant:
    """Ask an audience member to come on stage; they accept or decline."""
    room, participant = _locked(room, identity)
    if participant.role in STAGE_ROLES:
        raise Conflict("That participant is already on stage", code="ALREADY_ON_STAGE")
    _check_speaker_cap(room)
    participant.invited_at = timezone.now()
    participant.invite_mic_only = mic_only
    participant.save(update_fields=["invited_at", "invite_mic_only", "updated_at"])
    _event(room, "participant.invited", participant, mic_only=mic_only)
    _data_on_commit(
        room,
        {
            "type": "guest_invite",
            "senderId": "parley",
            "senderName": host_name,
            "targetParticipantId": participant.identity,
            "targetParticipantName": participant.name,
            "micOnly": mic_only,
        },
        to=[participant.identity],
    )
    return participant


@transaction.atomic
def respond_to_invite(*, room: Room, identity: str, accept: bool) -> Participant:
    """The invited participant accepts (promoted live) or declines (the host is told)."""
    room, participant = _locked(room, identity)
    if participant.invited_at is None:
        raise InvalidState("There is no invitation to answer", code="NO_INVITATION")
    _data_on_commit(
        room,
        {
            "type": "guest_invite_response",
            "senderId": participant.identity,
            "senderName": participant.name,
            "accepted": accept,
        },
    )
    if not accept:
        participant.invited_at = None
        participant.save(update_fields=["invited_at", "updated_at"])
        _event(room, "participant.invite_declined", participant)
        return participant
    return _promote(room, participant, mic_only=participant.invite_mic_only)


def _check_speaker_cap(room: Room, *, exclude: Participant | None = None) -> None:
    if room.max_speakers is None:
        return
    speakers = Participant.objects.present().filter(room=room, role=Role.SPEAKER)
    if exclude is not None:
        speakers = speakers.exclude(pk=exclude.pk)
    if speakers.count() >= room.max_speakers:
        raise Conflict(
            f"The stage is full: this room allows {room.max_speakers} speakers",
            code="SPEAKER_LIMIT_REACHED",
        )


def _promote(room: Room, participant: Participant, *, mic_only: bool) -> Participant:
    if participant.role in (Role.OWNER, Role.HOST):
        raise Conflict("Hosts are on stage already", code="ALREADY_ON_STAGE")
    if participant.role == Role.SPEAKER and participant.mic_only == mic_only:
        return participant
    _check_speaker_cap(room, exclude=participant)
    participant.role = Role.SPEAKER
    participant.mic_only = mic_only
    participant.hand_raised_at = None
    participant.invited_at = None
    participant.save(
        update_fields=["role", "mic_only", "hand_raised_at", "invited_at", "updated_at"]
    )
    _push(room, participant, permissions=True)
    _event(room, "participant.promoted", participant, mic_only=mic_only)
    _data_on_commit(
        room,
        {
            "type": "guest_promoted",
            "senderId": "parley",
            "senderName": "Parley",
            "participantId": participant.identity,
            "participantName": participant.name,
            "micOnly": mic_only,
        },
    )
    return participant


@transaction.atomic
def promote(*, room: Room, identity: str, mic_only: bool = False) -> Participant:
    """Bring `identity` on stage now (camera and microphone as the room allows, or the
    microphone only)."""
    room, participant = _locked(room, identity)
    return _promote(room, participant, mic_only=mic_only)


@transaction.atomic
def demote(*, room: Room, identity: str) -> Participant:
    """Back to the audience: LiveKit revokes publishing, which unpublishes their tracks."""
    room, participant = _locked(room, identity)
    if participant.role == Role.OWNER:
        raise Conflict("The room's owner cannot be demoted", code="CANNOT_DEMOTE_OWNER")
    if participant.role == Role.VIEWER:
        return participant
    participant.role = Role.VIEWER
    participant.mic_only = False
    participant.invited_at = None
    participant.save(update_fields=["role", "mic_only", "invited_at", "updated_at"])
    _push(room, participant, permissions=True)
    _event(room, "participant.demoted", participant)
    _data_on_commit(
        room,
        {
            "type": "guest_demoted",
            "senderId": "parley",
            "senderName": "Parley",
            "participantId": participant.identity,
            "participantName": participant.name,
        },
    )
    return participant


def remove(*, room: Room, identity: str) -> Participant | None:
    """Kept for callers written before moderation.remove_participant: removal by the tenant
    itself (API key). Hosts' routes call moderation.remove_participant (switch checked)."""
    return moderation.remove_participant(room=room, identity=identity, by_tenant=True)


def count_stage_action(*, room: Room, identity: str) -> None:
    """At most STAGE_ACTIONS_PER_MINUTE hand changes and invitation answers per identity and
    minute from a guest's page (each one is a LiveKit call and an event to the room)."""
    subject = f"{room.pk}:{access.keyed('identity', identity)}"
    if ratelimit.hit(ratelimit.window("stage", subject, seconds=60)) > STAGE_ACTIONS_PER_MINUTE:
        raise LockedOut("Too many changes at once: wait a minute and try again", retry_after=60)
