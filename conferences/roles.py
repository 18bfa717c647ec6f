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


def publish_sources(room: Room) -> tuple[str, ...]:
    """Sources a publisher may send in `room`: media_type decides camera/microphone."""
    sources: list[str] = []
    if room.media_type in (Room.MediaType.VIDEO, Room.MediaType.BOTH):
        sources.append(livekit.CAMERA)
    if room.media_type in (Room.MediaType.AUDIO, Room.MediaType.BOTH):
        sources.append(livekit.MICROPHONE)
    if room.screen_sharing_enabled:
        sources.append(livekit.SCREEN_SHARE)
        if room.media_type != Room.MediaType.VIDEO:  # "video" rooms are silent
            sources.append(livekit.SCREEN_SHARE_AUDIO)
    return tuple(sources)


def grants_for(role: str, room: Room) -> livekit.Grants:
    """The LiveKit grants of `role` in `room`. Viewers subscribe only; everyone else publishes
    the sources the room's media_type allows, and sends data only where chat is enabled.
    Nobody gets admin grants: host actions go through Parley's server."""
    if role == Role.VIEWER:
        return livekit.Grants(
            room=room.livekit_name,
            can_publish=False,
            can_subscribe=True,
            can_publish_data=False,
            can_publish_sources=(),
        )
    return livekit.Grants(
        room=room.livekit_name,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=room.chat_enabled,
        can_publish_sources=publish_sources(room),
    )


def attributes_for(role: str) -> dict[str, str]:
    """Server-owned LiveKit participant attributes for `role`."""
    return {"role": str(role)}
