"""The LiveKit gateway: the only module that talks to LiveKit.

Every call has a timeout; any transport failure, timeout or server-side error surfaces as
`LiveKitUnavailable`, so callers can answer 503 and leave the database untouched. A missing
room or participant surfaces as `LiveKitNotFound`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

import aiohttp
from asgiref.sync import async_to_sync
from django.conf import settings
from livekit import api

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Sources a client may publish, in LiveKit's token vocabulary.
CAMERA = "camera"
MICROPHONE = "microphone"
SCREEN_SHARE = "screen_share"
SCREEN_SHARE_AUDIO = "screen_share_audio"


class LiveKitError(Exception):
    pass


class LiveKitUnavailable(LiveKitError):
    """LiveKit could not be reached, timed out, or failed on its side."""


class LiveKitNotFound(LiveKitError):
    """LiveKit does not know the room or participant."""


@dataclass(frozen=True)
class Grants:
    """What a client token allows: derived from role and room policy in one place."""

    room: str
    can_publish: bool
    can_subscribe: bool
    can_publish_data: bool
    can_publish_sources: tuple[str, ...]
    can_update_own_metadata: bool = False


class ParticipantDict(TypedDict):
    sid: str
    identity: str
    name: str
    metadata: str
    attributes: dict[str, str]
    joined_at: int
    is_publisher: bool


def _client() -> api.LiveKitAPI:
    return api.LiveKitAPI(
        settings.LIVEKIT_URL,
        settings.LIVEKIT_API_KEY,
        settings.LIVEKIT_API_SECRET,
        timeout=aiohttp.ClientTimeout(total=settings.LIVEKIT_TIMEOUT),
        failover=False,
    )


async def _run(op: Callable[[api.LiveKitAPI], Awaitable[T]]) -> T:
    lk = _client()
    try:
        # The SDK passes timeout=None per request, which overrides the session's timeout in
        # aiohttp; this wait_for is the bound that holds.
        return await asyncio.wait_for(op(lk), timeout=settings.LIVEKIT_TIMEOUT)
    except api.TwirpError as exc:
        if exc.code == "not_found" or exc.status == 404:
            raise LiveKitNotFound(exc.message) from None
        logger.warning("LiveKit error %s (%s): %s", exc.code, exc.status, exc.message)
        raise LiveKitUnavailable(f"LiveKit answered {exc.code}") from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        logger.warning("LiveKit unreachable: %r", exc)
        raise LiveKitUnavailable("LiveKit is unreachable") from None
    finally:
        await lk.aclose()


def _call(op: Callable[[api.LiveKitAPI], Awaitable[T]]) -> T:
    return async_to_sync(_run)(op)


def create_room(
    *, name: str, max_participants: int, metadata: dict[str, Any], empty_timeout: int | None = None
) -> None:
    """Create (or keep) the LiveKit room `name` with our limits. Idempotent on LiveKit's side."""
    request = api.CreateRoomRequest(
        name=name,
        max_participants=max_participants,
        empty_timeout=settings.LIVEKIT_EMPTY_TIMEOUT if empty_timeout is None else empty_timeout,
        departure_timeout=settings.LIVEKIT_DEPARTURE_TIMEOUT,
        metadata=json.dumps(metadata, separators=(",", ":"), sort_keys=True),
    )
    _call(lambda lk: lk.room.create_room(request))


def delete_room(*, name: str) -> bool:
    """Delete the LiveKit room, disconnecting everyone. False if LiveKit had no such room."""
    try:
        _call(lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room=name)))
    except LiveKitNotFound:
        return False
    return True


def list_participants(*, room: str) -> list[ParticipantDict]:
    """Participants LiveKit has in `room` now; empty when LiveKit has no such room."""
    try:
        response = _call(
            lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room))
        )
    except LiveKitNotFound:
        return []
    return [
        {
            "sid": p.sid,
            "identity": p.identity,
            "name": p.name,
            "metadata": p.metadata,
            "attributes": dict(p.attributes),
            "joined_at": p.joined_at,
            "is_publisher": p.is_publisher,
        }
        for p in response.participants
    ]


def mint_token(
    *,
    identity: str,
    name: str,
    grants: Grants,
    attributes: dict[str, str] | None = None,
    metadata: str = "",
    ttl_seconds: int | None = None,
) -> tuple[str, dt.datetime]:
    """A signed client join token for exactly `grants`, and when it expires (UTC)."""
    ttl = dt.timedelta(seconds=ttl_seconds or settings.LIVEKIT_TOKEN_TTL)
    video = api.VideoGrants(
        room_join=True,
        room=grants.room,
        can_publish=grants.can_publish,
        can_subscribe=grants.can_subscribe,
        can_publish_data=grants.can_publish_data,
        can_publish_sources=list(grants.can_publish_sources),
        can_update_own_metadata=grants.can_update_own_metadata,
        room_admin=False,
        room_create=False,
        room_list=False,
        room_record=False,
        hidden=False,
        recorder=False,
    )
    token = (
        api.AccessToken(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET)
        .with_identity(identity)
        .with_name(name)
        .with_grants(video)
        .with_ttl(ttl)
    )
    if attributes:
        token = token.with_attributes(attributes)
    if metadata:
        token = token.with_metadata(metadata)
    jwt = token.to_jwt()
    expires_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + ttl
    return jwt, expires_at
