"""One vocabulary of roles, and the one function that turns role + room policy into grants."""

from __future__ import annotations

from django.db import models

from . import livekit
from .models import Room


class Role(models.TextChoices):
    OWNER = "owner"
    HOST = "host"
    SPEAKER = "speaker"
    PARTICIPANT = "participant"
    VIEWER = "viewer"


HOST_ROLES = frozenset({Role.OWNER, Role.HOST})
# Roles that may publish in a webinar-mode room; everyone else watches and raises a hand.
STAGE_ROLES = frozenset({Role.OWNER, Role.HOST, Role.SPEAKER})


def default_role(room: Room) -> str:
    """The role of a guest who asks for none: webinar audiences watch."""
    return Role.VIEWER if room.allow_webinar_mode else Role.PARTICIPANT


def screen_share_allowed(room: Room) -> bool:
    """Whether publishers may share a screen in `room`: never in a voice-only room."""
    return room.screen_sharing_enabled and room.media_type != Room.MediaType.AUDIO


def publish_sources(room: Room, *, mic_only: bool = False) -> tuple[str, ...]:
    """Sources a publisher may send in `room`: media_type decides camera/microphone;
    `mic_only` (a speaker brought on stage to talk only) drops camera and screen share.
    An "audio" room is voice only (the reference's ~50 kbps rooms): the microphone and
    nothing else, whatever `screen_sharing_enabled` says (stored, without effect there)."""
    sources: list[str] = []
    if room.media_type in (Room.MediaType.VIDEO, Room.MediaType.BOTH) and not mic_only:
        sources.append(livekit.CAMERA)
    if room.media_type in (Room.MediaType.AUDIO, Room.MediaType.BOTH):
        sources.append(livekit.MICROPHONE)
    if screen_share_allowed(room) and not mic_only:
        sources.append(livekit.SCREEN_SHARE)
        if room.media_type != Room.MediaType.VIDEO:  # "video" rooms are silent
            sources.append(livekit.SCREEN_SHARE_AUDIO)
    return tuple(sources)


def grants_for(
    role: str, room: Room, *, mic_only: bool = False, hidden: bool = False
) -> livekit.Grants:
    """The LiveKit grants of `role` in `room`, for tokens and for live UpdateParticipant alike.

    Viewers subscribe only (in webinar mode they may also chat); in webinar mode a
    participant is audience too. Everyone else publishes the sources the room's media_type
    allows. Data messages (chat) never outlive the room's `chat_enabled`, whatever the role:
    raising a hand is a call to Parley's server, never a data message. Nobody gets admin
    grants: host actions go through Parley's server. A `hidden` participant (an egress-style
    watcher, whatever its role) is invisible to the others and only subscribes."""
    if hidden:
        return livekit.Grants(
            room=room.livekit_name,
            can_publish=False,
            can_subscribe=True,
            can_publish_data=False,
            can_publish_sources=(),
            hidden=True,
        )
    audience = role == Role.VIEWER or (room.allow_webinar_mode and role not in STAGE_ROLES)
    if audience:
        return livekit.Grants(
            room=room.livekit_name,
            can_publish=False,
            can_subscribe=True,
            # A webinar's audience may chat when chat is on; viewers elsewhere only watch.
            can_publish_data=room.allow_webinar_mode and room.chat_enabled,
            can_publish_sources=(),
        )
    return livekit.Grants(
        room=room.livekit_name,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=room.chat_enabled,
        can_publish_sources=publish_sources(room, mic_only=mic_only),
    )


def attributes_for(role: str, *, hand_raised: bool = False) -> dict[str, str]:
    """Server-owned LiveKit participant attributes. For UpdateParticipant an empty value
    deletes the key, so `hand` is always sent."""
    return {"role": str(role), "hand": "raised" if hand_raised else ""}
