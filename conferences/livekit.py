"""The LiveKit gateway: the only module that talks to LiveKit.

Every call has a timeout; any transport failure, timeout or server-side error surfaces as
`LiveKitUnavailable`, which *is* the services' `Unavailable` error (503, "The media server is
unavailable"): callers let it propagate, and their transaction leaves the database untouched.
A missing room or participant surfaces as `LiveKitNotFound`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

import aiohttp
from asgiref.sync import async_to_sync
from django.conf import settings
from livekit import api

from parley.errors import Unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Sources a client may publish, in LiveKit's token vocabulary.
CAMERA = "camera"
MICROPHONE = "microphone"
SCREEN_SHARE = "screen_share"
SCREEN_SHARE_AUDIO = "screen_share_audio"


# What livekit-server answers (Twirp `unavailable`) when a call routed to a participant's node
# finds nobody there, e.g. MutePublishedTrack for someone who just left (psrpc.ErrNoResponse).
NO_RESPONSE = "no response from servers"


class LiveKitError(Exception):
    pass


UNAVAILABLE_MESSAGE = "The media server is unavailable; try again shortly"


class LiveKitUnavailable(LiveKitError, Unavailable):
    """LiveKit could not be reached, timed out, or failed on its side. The service error
    itself: every interface answers it as 503 LIVEKIT_UNAVAILABLE with a message for people;
    `detail` keeps what went wrong for the logs."""

    def __init__(self, detail: str = "") -> None:
        Unavailable.__init__(self, UNAVAILABLE_MESSAGE)
        self.detail = detail


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
    # Invisible to the other participants (an egress-style watcher): LiveKit's `hidden` grant.
    hidden: bool = False


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


@dataclass(frozen=True)
class RoomSpec:
    """One room for `create_rooms`: the arguments of `create_room`."""

    name: str
    max_participants: int
    metadata: dict[str, Any]
    empty_timeout: int | None = None


def create_room(
    *, name: str, max_participants: int, metadata: dict[str, Any], empty_timeout: int | None = None
) -> str:
    """Create (or keep) the LiveKit room `name` with our limits. Idempotent on LiveKit's side.
    Returns the room's sid (an existing room keeps its own)."""
    request = _create_request(RoomSpec(name, max_participants, metadata, empty_timeout))
    room = _call(lambda lk: lk.room.create_room(request))
    return room.sid


def _create_request(spec: RoomSpec) -> api.CreateRoomRequest:
    return api.CreateRoomRequest(
        name=spec.name,
        max_participants=spec.max_participants,
        empty_timeout=(
            settings.LIVEKIT_EMPTY_TIMEOUT if spec.empty_timeout is None else spec.empty_timeout
        ),
        departure_timeout=settings.LIVEKIT_DEPARTURE_TIMEOUT,
        metadata=json.dumps(spec.metadata, separators=(",", ":"), sort_keys=True),
    )


def create_rooms(specs: list[RoomSpec], *, concurrency: int = 16) -> dict[str, str | None]:
    """`create_room` for many rooms at once (the scheduler pre-creating a burst of starts):
    up to `concurrency` CreateRoom calls in flight on one client. Returns each name's sid, or
    None for a room LiveKit did not create (unreachable, timed out, refused); never raises."""

    async def run_all() -> dict[str, str | None]:
        lk = _client()
        gate = asyncio.Semaphore(concurrency)

        async def one(spec: RoomSpec) -> str | None:
            async with gate:
                try:
                    room = await asyncio.wait_for(
                        lk.room.create_room(_create_request(spec)), timeout=settings.LIVEKIT_TIMEOUT
                    )
                except (api.TwirpError, TimeoutError, aiohttp.ClientError, OSError) as exc:
                    logger.warning("LiveKit could not create room %s: %r", spec.name, exc)
                    return None
                return str(room.sid)

        try:
            sids = await asyncio.gather(*(one(spec) for spec in specs))
        finally:
            await lk.aclose()
        return {spec.name: sid for spec, sid in zip(specs, sids, strict=True)}

    if not specs:
        return {}
    return async_to_sync(run_all)()


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
                result.code == "not_found"
                or result.status == 404
                # livekit-server's answer for a participant no node holds (it left)
                or (result.code == "unavailable" and NO_RESPONSE in result.message)
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
    return _client_token(
        identity=identity,
        name=name,
        grants=grants,
        attributes=attributes,
        metadata=metadata,
        ttl=int(ttl_seconds or settings.LIVEKIT_TOKEN_TTL),
    )


def _client_token(
    *,
    identity: str,
    name: str,
    grants: Grants,
    attributes: dict[str, str] | None = None,
    metadata: str = "",
    ttl: int,
    recorder: bool = False,
) -> tuple[str, dt.datetime]:
    """Every client token Parley signs, and when it expires (UTC).

    The claims are exactly those of the SDK's `AccessToken(...).to_jwt()` for the same
    grants (tests/test_token_path.py compares them), written out directly: the SDK's
    dataclass-to-dict conversion cost more than the rest of the token path's Python."""
    if not identity or not grants.room:
        raise ValueError("identity and room must be set when joining a room")
    now = int(time.time())
    claims: dict[str, Any] = {}
    if name:
        claims["name"] = name
    if metadata:
        claims["metadata"] = metadata
    claims["video"] = {
        "roomCreate": False,
        "roomList": False,
        "roomRecord": False,
        "roomAdmin": False,
        "roomJoin": True,
        "room": grants.room,
        "canPublish": grants.can_publish,
        "canSubscribe": grants.can_subscribe,
        "canPublishData": grants.can_publish_data,
        "canPublishSources": list(grants.can_publish_sources),
        "canUpdateOwnMetadata": grants.can_update_own_metadata,
        "hidden": grants.hidden,
        "recorder": recorder,
    }
    if attributes:
        claims["attributes"] = attributes
    claims.update(sub=identity, iss=settings.LIVEKIT_API_KEY, nbf=now, exp=now + ttl)
    token = sign_hs256(claims, settings.LIVEKIT_API_SECRET)
    return token, dt.datetime.fromtimestamp(now + ttl, dt.UTC)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_JWT_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')


def sign_hs256(claims: dict[str, Any], secret: str) -> str:
    """`claims` as an HS256 JWT, byte for byte what `jwt.encode(claims, secret, "HS256")`
    writes (tests/test_token_path.py), without PyJWT's per-call key checks."""
    signing_input = _JWT_HEADER + b"." + _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _b64(signature)).decode("ascii")


def mint_recorder_token(*, room: str, identity: str, ttl_seconds: int = 3600) -> str:
    """A hidden, subscribe-only token for the recording template page: it sees and hears
    everyone, publishes nothing, sends no data, and is listed to no participant."""
    grants = Grants(room, can_publish=False, can_subscribe=True, can_publish_data=False,
                    can_publish_sources=(), hidden=True)  # fmt: skip
    token, _ = _client_token(
        identity=identity, name="Recorder", grants=grants, ttl=ttl_seconds, recorder=True
    )
    return token


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
        hidden=grants.hidden,
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
    egress: EgressState | None = None  # egress_started | egress_updated | egress_ended
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
        egress=_egress_state(event.egress_info) if event.HasField("egress_info") else None,
        created_at=int(event.created_at),
        participant_sid=event.participant.sid,
        joined_at=(
            event.participant.joined_at_ms / 1000
            if event.participant.joined_at_ms
            else float(event.participant.joined_at)
        ),
        room_sid=event.room.sid,
    )


# --- Egress: composite recordings and HLS streams -------------------------------------------

# LiveKit's EgressStatus, in words.
_EGRESS_STATUS = {
    api.EgressStatus.EGRESS_STARTING: "starting",
    api.EgressStatus.EGRESS_ACTIVE: "active",
    api.EgressStatus.EGRESS_ENDING: "ending",
    api.EgressStatus.EGRESS_COMPLETE: "complete",
    api.EgressStatus.EGRESS_FAILED: "failed",
    api.EgressStatus.EGRESS_ABORTED: "aborted",
    api.EgressStatus.EGRESS_LIMIT_REACHED: "limit_reached",
}

# (quality, orientation) -> LiveKit's encoding preset. Parley's quality words: low|med|high.
_PRESETS = {
    ("low", "landscape"): api.EncodingOptionsPreset.H264_720P_30,
    ("med", "landscape"): api.EncodingOptionsPreset.H264_1080P_30,
    ("high", "landscape"): api.EncodingOptionsPreset.H264_1080P_60,
    ("low", "portrait"): api.EncodingOptionsPreset.PORTRAIT_H264_720P_30,
    ("med", "portrait"): api.EncodingOptionsPreset.PORTRAIT_H264_1080P_30,
    ("high", "portrait"): api.EncodingOptionsPreset.PORTRAIT_H264_1080P_60,
}


def encoding_preset(quality: str, orientation: str) -> str:
    """The name of LiveKit's encoding preset for a quality and an orientation."""
    return api.EncodingOptionsPreset.Name(_PRESETS[(quality, orientation)])


@dataclass(frozen=True)
class S3Target:
    endpoint: str
    region: str
    bucket: str
    access_key: str
    secret: str


@dataclass(frozen=True)
class EgressState:
    """What LiveKit says about one egress."""

    egress_id: str
    room: str
    status: str  # starting | active | ending | complete | failed | aborted | limit_reached
    error: str
    started_at: int  # ns since the epoch, 0 when unknown
    ended_at: int
    location: str  # file location, or the HLS playlist's
    live_location: str  # HLS live playlist
    size: int
    duration_seconds: int


def _egress_state(info: Any) -> EgressState:
    location, live_location, size, duration_ns = "", "", 0, 0
    if info.file_results:
        f = info.file_results[0]
        location, size, duration_ns = f.location or f.filename, f.size, f.duration
    elif info.HasField("file") and (info.file.location or info.file.filename):
        f = info.file
        location, size, duration_ns = f.location or f.filename, f.size, f.duration
    if info.segment_results:
        s = info.segment_results[0]
        location = s.playlist_location or s.playlist_name
        live_location = s.live_playlist_location or s.live_playlist_name
        size, duration_ns = s.size, s.duration
    return EgressState(
        egress_id=info.egress_id,
        room=info.room_name,
        status=_EGRESS_STATUS.get(info.status, "failed"),
        error=info.error,
        started_at=info.started_at,
        ended_at=info.ended_at,
        location=location,
        live_location=live_location,
        size=size,
        duration_seconds=int(duration_ns // 1_000_000_000),
    )


def _s3_upload(target: S3Target) -> api.S3Upload:
    return api.S3Upload(
        access_key=target.access_key,
        secret=target.secret,
        region=target.region,
        endpoint=target.endpoint,
        bucket=target.bucket,
        force_path_style=bool(target.endpoint),
    )


def start_room_composite_egress(
    *,
    room: str,
    layout: str,
    audio_only: bool,
    preset: str,
    custom_base_url: str = "",
    file_path: str = "",
    hls_prefix: str = "",
    s3: S3Target | None = None,
) -> EgressState:
    """Start a composite egress of `room`: an MP4 (OGG when audio only) at `file_path`, or
    a segmented HLS stream under `hls_prefix` (playlists `index.m3u8` and `live.m3u8`), in
    the tenant's bucket when `s3` is given, else on the egress host's disk."""
    request = api.RoomCompositeEgressRequest(
        room_name=room,
        layout=layout,
        audio_only=audio_only,
        custom_base_url=custom_base_url,
        preset=preset,  # the enum's name
    )
    if hls_prefix:
        segments = api.SegmentedFileOutput(
            protocol=api.SegmentedFileProtocol.HLS_PROTOCOL,
            filename_prefix=hls_prefix,
            playlist_name="index.m3u8",
            live_playlist_name="live.m3u8",
            segment_duration=4,
        )
        if s3 is not None:
            segments.s3.CopyFrom(_s3_upload(s3))
        request.segment_outputs.append(segments)
    else:
        output = api.EncodedFileOutput(
            file_type=api.EncodedFileType.OGG if audio_only else api.EncodedFileType.MP4,
            filepath=file_path,
        )
        if s3 is not None:
            output.s3.CopyFrom(_s3_upload(s3))
        request.file_outputs.append(output)
    try:
        info = _call(lambda lk: lk.egress.start_room_composite_egress(request))
    except LiveKitNotFound:
        raise LiveKitUnavailable("LiveKit does not have the room") from None
    return _egress_state(info)


def stop_egress(*, egress_id: str) -> EgressState | None:
    """Ask LiveKit to stop an egress. None when LiveKit no longer knows it or it had
    already ended (failed_precondition): ask `list_egress` what became of it."""

    async def op(lk: api.LiveKitAPI) -> Any:
        try:
            return await lk.egress.stop_egress(api.StopEgressRequest(egress_id=egress_id))
        except api.TwirpError as exc:
            if exc.code == "failed_precondition":
                return None
            raise

    try:
        info = _call(op)
    except LiveKitNotFound:
        return None
    return _egress_state(info) if info is not None else None


def list_egress(*, room: str = "", egress_id: str = "", active: bool = False) -> list[EgressState]:
    """LiveKit's egresses of a room (or one egress); an unknown one is simply absent."""
    request = api.ListEgressRequest(room_name=room, egress_id=egress_id, active=active)
    try:
        response = _call(lambda lk: lk.egress.list_egress(request))
    except LiveKitNotFound:
        return []
    return [_egress_state(info) for info in response.items]
