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


class TrackDict(TypedDict):
    sid: str
    source: str  # camera | microphone | screen_share | screen_share_audio | unknown
    muted: bool


class ParticipantDict(TypedDict):
    sid: str
    identity: str
    name: str
    metadata: str
    attributes: dict[str, str]
    joined_at: int
    is_publisher: bool
    tracks: list[TrackDict]


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
            "tracks": [
                {"sid": t.sid, "source": _SOURCES.get(t.source, "unknown"), "muted": t.muted}
                for t in p.tracks
            ],
        }
        for p in response.participants
    ]


_SOURCES = {
    api.TrackSource.CAMERA: CAMERA,
    api.TrackSource.MICROPHONE: MICROPHONE,
    api.TrackSource.SCREEN_SHARE: SCREEN_SHARE,
    api.TrackSource.SCREEN_SHARE_AUDIO: SCREEN_SHARE_AUDIO,
}


def mute_published_tracks(*, room: str, tracks: list[tuple[str, str]], muted: bool = True) -> int:
    """Mute (identity, track_sid) pairs in `room`, concurrently over one client. Tracks whose
    participant left meanwhile are skipped; returns how many LiveKit muted."""
    if not tracks:
        return 0

    async def op(lk: api.LiveKitAPI) -> int:
        results = await asyncio.gather(
            *(
                lk.room.mute_published_track(
                    api.MuteRoomTrackRequest(
                        room=room, identity=identity, track_sid=sid, muted=muted
                    )
                )
                for identity, sid in tracks
            ),
            return_exceptions=True,
        )
        done = 0
        for result in results:
            if isinstance(result, api.TwirpError) and (
                result.code == "not_found" or result.status == 404
            ):
                continue
            if isinstance(result, BaseException):
                raise result
            done += 1
        return done

    return _call(op)


def remove_participant(*, room: str, identity: str) -> bool:
    """Disconnect `identity` from `room`. False if LiveKit had no such participant."""
    try:
        _call(
            lambda lk: lk.room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity=identity)
            )
        )
    except LiveKitNotFound:
        return False
    return True


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


_SOURCE_ENUMS = {
    CAMERA: api.TrackSource.CAMERA,
    MICROPHONE: api.TrackSource.MICROPHONE,
    SCREEN_SHARE: api.TrackSource.SCREEN_SHARE,
    SCREEN_SHARE_AUDIO: api.TrackSource.SCREEN_SHARE_AUDIO,
}


def permission_of(grants: Grants) -> api.ParticipantPermission:
    """The whole ParticipantPermission for `grants` (LiveKit replaces permissions whole, so
    every field is set, false ones included)."""
    return api.ParticipantPermission(
        can_subscribe=grants.can_subscribe,
        can_publish=grants.can_publish,
        can_publish_data=grants.can_publish_data,
        can_publish_sources=[_SOURCE_ENUMS[s] for s in grants.can_publish_sources],
        can_update_metadata=grants.can_update_own_metadata,
        hidden=False,
        recorder=False,
    )


def update_participant(
    *, room: str, identity: str, grants: Grants | None, attributes: dict[str, str]
) -> bool:
    """Change a connected participant's permissions (whole, when `grants` is given) and
    server-owned attributes (merged; an empty value deletes). Revoking publish unpublishes
    their tracks. False if the participant is not connected."""
    request = api.UpdateParticipantRequest(room=room, identity=identity, attributes=attributes)
    if grants is not None:
        request.permission.CopyFrom(permission_of(grants))
    try:
        _call(lambda lk: lk.room.update_participant(request))
    except LiveKitNotFound:
        return False
    return True


def send_data(
    *, room: str, payload: dict[str, Any], destination_identities: list[str] | None = None
) -> bool:
    """Send a reliable data message (JSON) to everyone in `room`, or to the given identities.
    False if LiveKit has no such room."""
    request = api.SendDataRequest(
        room=room,
        data=json.dumps(payload, separators=(",", ":")).encode(),
        kind=api.DataPacket.Kind.RELIABLE,
        destination_identities=destination_identities or [],
    )
    try:
        _call(lambda lk: lk.room.send_data(request))
    except LiveKitNotFound:
        return False
    return True


class RoomDict(TypedDict):
    name: str
    sid: str
    num_participants: int
    creation_time: int


def list_rooms(*, names: list[str]) -> list[RoomDict]:
    """LiveKit's view of the named rooms (those it does not have are left out)."""
    if not names:
        return []
    response = _call(lambda lk: lk.room.list_rooms(api.ListRoomsRequest(names=names)))
    return [
        {
            "name": r.name,
            "sid": r.sid,
            "num_participants": r.num_participants,
            "creation_time": r.creation_time,
        }
        for r in response.rooms
    ]


def verify_client_token(token: str) -> tuple[str, str]:
    """(identity, room) of a join token this server minted and that has not expired.
    Raises LiveKitError otherwise. Lets a guest page prove who it is to Parley."""
    try:
        claims = api.TokenVerifier(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET).verify(
            token
        )
    except Exception:  # any malformed, forged or expired token
        raise LiveKitError("invalid token") from None
    if not claims.identity or claims.video is None or not claims.video.room:
        raise LiveKitError("invalid token")
    return claims.identity, claims.video.room


@dataclass(frozen=True)
class WebhookNotice:
    """The parts of a LiveKit webhook Parley acts on."""

    event: str  # room_started, room_finished, participant_joined, participant_left, ...
    room: str
    identity: str
    name: str
    event_id: str
    # For attendance: when LiveKit created the event (unix seconds), the participant's sid
    # and join time (unix seconds, millisecond precision), the room's sid.
    created_at: int = 0
    participant_sid: str = ""
    joined_at: float = 0.0
    room_sid: str = ""


def receive_webhook(*, body: bytes, authorization: str) -> WebhookNotice:
    """Verify a LiveKit webhook (JWT signed with our secret, carrying the body's SHA-256) and
    parse it. Raises LiveKitError when it is not authentic."""
    try:
        receiver = api.WebhookReceiver(
            api.TokenVerifier(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET)
        )
        event = receiver.receive(body.decode(), authorization)
    except Exception:  # forged, tampered, expired or malformed
        raise LiveKitError("invalid webhook") from None
    return WebhookNotice(
        event=event.event,
        room=event.room.name,
        identity=event.participant.identity,
        name=event.participant.name,
        event_id=event.id,
        created_at=int(event.created_at),
        participant_sid=event.participant.sid,
        joined_at=(
            event.participant.joined_at_ms / 1000
            if event.participant.joined_at_ms
            else float(event.participant.joined_at)
        ),
        room_sid=event.room.sid,
    )
