"""An in-process stand-in for livekit-server at its HTTP (Twirp) boundary, for tests only.

`LiveKitDouble` runs a small aiohttp app on 127.0.0.1 (ephemeral port, own thread and event
loop) that speaks the server API the official SDK (`livekit.api.LiveKitAPI`) talks to:
``POST /twirp/livekit.RoomService/<Method>`` and ``POST /twirp/livekit.Egress/<Method>``, raw
protobuf bodies (JSON bodies too), and a per-call JWT in ``Authorization: Bearer <jwt>``.

What it mirrors from livekit-server (pkg/service/auth.go, roomservice.go, egress.go,
roomallocator.go, localstore.go; livekit/protocol auth/grants.go):

* Auth middleware: a token that cannot be parsed, names an unknown API key (``iss``), has a bad
  HS256 signature or is outside ``nbf``/``exp`` (60 s leeway, as go-jose) is refused with HTTP
  401 and a *plain-text* body -- the SDK turns that into ``ServerError(code="unknown",
  status=401)``. An ``Authorization`` header not starting with ``Bearer `` is refused the same
  way. No header at all passes the middleware and fails the grant check below.
* Grant checks (``video`` claim): CreateRoom/DeleteRoom need ``roomCreate``; ListRooms needs
  ``roomList``; participant and room-admin calls need ``roomAdmin`` and ``room`` equal to the
  request's room; Egress calls need ``roomRecord``. livekit-server answers a missing grant with
  Twirp ``unauthenticated`` / "permissions denied" and HTTP **401** (``twirpAuthError``), not
  ``permission_denied``/403, and so does this double.
* Twirp errors otherwise are JSON ``{"code": ..., "msg": ...}`` with Twirp's status mapping
  (not_found 404, invalid_argument 400, failed_precondition 412, unavailable 503, ...).
* CreateRoom is get-or-create: an existing room keeps its sid and only non-zero request fields
  (empty_timeout, departure_timeout, max_participants, metadata) overwrite it. New rooms get
  the server defaults (empty_timeout 300 s, departure_timeout 20 s).
* DeleteRoom of an unknown room: not_found "requested room does not exist". ListParticipants of
  an unknown room: an empty list (that is what the room store returns). GetParticipant /
  UpdateParticipant / UpdateSubscriptions of an unknown participant: not_found "participant
  does not exist"; RemoveParticipant: not_found "participant not found". MutePublishedTrack
  of an unknown participant: unavailable (503) "twirp error unknown: no response from servers"
  (the server routes it to the participant's node without a store lookup; checked by
  tests/media/test_livekit_conformance.py against the real server).
* UpdateParticipant: ``permission`` (when set) replaces the participant's permission whole and
  unpublishes tracks it no longer allows; ``attributes`` are merged, an empty value deleting
  the key; ``name`` and ``metadata`` are replaced when non-empty; ``version`` increases.
* MutePublishedTrack with ``muted=False`` fails with failed_precondition "remote unmute not
  enabled" unless ``enable_remote_unmute`` is set (the server default is off).
* Egress: Start* needs the room to exist (not_found otherwise) and returns an EgressInfo with
  an ``EG_`` id; StopEgress of an egress that is no longer active fails with
  failed_precondition "egress with status ... cannot be stopped"; unknown ids are not_found
  "egress does not exist".
* Webhooks: protobuf-JSON ``WebhookEvent`` body, ``Content-Type: application/webhook+json``,
  ``Authorization: <jwt>`` (no Bearer) carrying a ``sha256`` claim of the body, 5 min TTL.
* Join tokens (`verify_join_token`, `join`): the checks ``/rtc`` does on connect, and the
  grant -> ParticipantPermission mapping of ``VideoGrant.ToPermission``.

Deliberate simplifications: no media, no node selection, rooms never close on their own
(empty/departure timeouts are stored, not enforced), egress goes straight to EGRESS_ACTIVE
and StopEgress straight to EGRESS_COMPLETE with made-up file/segment results (the real egress
service reports STARTING/ENDING in between; use `set_egress_status` to model that), and no
webhooks are sent on their own -- tests send the ones they need with `send_webhook` or
`send_egress_webhook`; `forget_egress` makes an egress vanish.

Usage::

    with LiveKitDouble() as lk:
        api = LiveKitAPI(lk.url, lk.api_key, lk.api_secret)
        ...
        assert lk.calls_to("UpdateParticipant")[0].request.permission.can_publish
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import hashlib
import hmac
import json
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit.api import AccessToken
from livekit.protocol import egress as proto_egress
from livekit.protocol import models as proto_models
from livekit.protocol import room as proto_room
from livekit.protocol import webhook as proto_webhook

__all__ = [
    "Call",
    "JoinTokenError",
    "LiveKitDouble",
    "SentData",
    "SentWebhook",
]

# livekit-server defaults (pkg/config): room.empty_timeout and room.departure_timeout.
DEFAULT_EMPTY_TIMEOUT = 300
DEFAULT_DEPARTURE_TIMEOUT = 20
# psrpc.ErrNoResponse: what livekit-server answers when no node handles a participant's topic.
NO_RESPONSE = "twirp error unknown: no response from servers"
# go-jose's jwt.DefaultLeeway, used by livekit/protocol auth.APIKeyTokenVerifier.
TOKEN_LEEWAY_SECONDS = 60
# livekit/protocol webhook notifier signs each request with a short-lived token.
WEBHOOK_TOKEN_TTL = datetime.timedelta(minutes=5)

_ID_ALPHABET = string.ascii_letters + string.digits
_M = TypeVar("_M", bound=Message)

# twirp.ServerHTTPStatusFromErrorCode
TWIRP_STATUS: dict[str, int] = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
}

_ACTIVE_EGRESS = (proto_egress.EGRESS_STARTING, proto_egress.EGRESS_ACTIVE)
_LIVE_EGRESS = (*_ACTIVE_EGRESS, proto_egress.EGRESS_ENDING)


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def _now_ns() -> int:
    return time.time_ns()


@dataclass
class Call:
    """One Twirp request the double received, and what it answered."""

    service: str  # "RoomService" or "Egress"
    method: str  # e.g. "UpdateParticipant"
    request: Any  # the decoded protobuf request (None if it could not be decoded)
    claims: dict[str, Any]  # verified JWT claims; {} when the token was missing or rejected
    status: int  # HTTP status replied
    error_code: str | None = None  # Twirp error code when status != 200 (None if plain text)
    # time.perf_counter() when the call was handled (benchmarks time requests against it)
    at: float = field(default_factory=time.perf_counter)


@dataclass
class SentData:
    """A RoomService.SendData the double accepted."""

    room: str
    payload: bytes
    kind: int
    destination_identities: list[str]
    destination_sids: list[str]
    topic: str


@dataclass
class SentWebhook:
    """A webhook `LiveKitDouble.send_webhook` delivered (or tried to)."""

    url: str
    event: proto_webhook.WebhookEvent
    body: str
    auth: str
    status: int


class JoinTokenError(Exception):
    """A client join token livekit-server would refuse at ``/rtc`` connect."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _TwirpError(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


class _AuthRejected(Exception):
    """The auth middleware's plain-text 401 (before any Twirp handling)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class _TokenError(Exception):
    pass


# --- JWT (HS256) --------------------------------------------------------------------------
# Verified by hand rather than with PyJWT: PyJWT warns about short HMAC keys ("secret"), and
# warning filters are process-global, so a warning raised in the server thread could turn into
# an error under a strict pytest configuration.


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _unverified_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise _TokenError("token contains an invalid number of segments")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, TypeError) as exc:
        raise _TokenError(f"malformed token: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _TokenError("malformed token")
    return claims


def _verify_hs256(token: str, *, api_key: str, api_secret: str) -> dict[str, Any]:
    """Return the claims of `token` if it is a valid, current HS256 JWT issued by `api_key`."""
    claims = _unverified_claims(token)
    head_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(_b64url_decode(head_b64))
    if header.get("alg") != "HS256":
        raise _TokenError(f"unexpected signature algorithm {header.get('alg')!r}")
    expected = hmac.new(
        api_secret.encode(), f"{head_b64}.{payload_b64}".encode(), hashlib.sha256
    ).digest()
    try:
        signature = _b64url_decode(sig_b64)
    except ValueError as exc:
        raise _TokenError("malformed signature") from exc
    if not hmac.compare_digest(signature, expected):
        raise _TokenError("go-jose/go-jose: error in cryptographic primitive")
    if claims.get("iss") != api_key:
        raise _TokenError("validation failed, invalid issuer claim (iss)")
    now = time.time()
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        raise _TokenError("token has no expiry (exp)")
    if now > exp + TOKEN_LEEWAY_SECONDS:
        raise _TokenError("validation failed, token is expired (exp)")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and now < nbf - TOKEN_LEEWAY_SECONDS:
        raise _TokenError("validation failed, token not valid yet (nbf)")
    return claims


def _video(claims: Mapping[str, Any] | None) -> dict[str, Any]:
    video = (claims or {}).get("video")
    return video if isinstance(video, dict) else {}


def permission_from_grants(
    video: Mapping[str, Any],
) -> proto_models.ParticipantPermission:
    """`VideoGrant.ToPermission` from livekit/protocol: unset canPublish/canSubscribe mean true,
    unset canPublishData follows canPublish, unset canUpdateOwnMetadata means false."""
    can_publish = video.get("canPublish")
    can_publish = True if can_publish is None else bool(can_publish)
    can_publish_data = video.get("canPublishData")
    can_subscribe = video.get("canSubscribe")
    sources = []
    for name in video.get("canPublishSources") or []:
        try:
            sources.append(proto_models.TrackSource.Value(str(name).upper()))
        except ValueError:
            sources.append(proto_models.TrackSource.UNKNOWN)
    return proto_models.ParticipantPermission(
        can_publish=can_publish,
        can_publish_data=can_publish if can_publish_data is None else bool(can_publish_data),
        can_subscribe=True if can_subscribe is None else bool(can_subscribe),
        can_publish_sources=sources,
        can_update_metadata=bool(video.get("canUpdateOwnMetadata", False)),
        hidden=bool(video.get("hidden", False)),
        recorder=bool(video.get("recorder", False)),
        agent=bool(video.get("agent", False)),
        can_subscribe_metrics=bool(video.get("canSubscribeMetrics", False)),
    )


# --- method table -------------------------------------------------------------------------

_CREATE, _LIST, _ADMIN, _RECORD = "roomCreate", "roomList", "roomAdmin", "roomRecord"


@dataclass(frozen=True)
class _Method:
    request_cls: type[Message]
    grant: str
    handler: str  # name of the LiveKitDouble method implementing it
    room_field: str | None = None  # request field holding the room for roomAdmin checks


_ROOM_METHODS: dict[str, _Method] = {
    "CreateRoom": _Method(proto_room.CreateRoomRequest, _CREATE, "_create_room"),
    "ListRooms": _Method(proto_room.ListRoomsRequest, _LIST, "_list_rooms"),
    "DeleteRoom": _Method(proto_room.DeleteRoomRequest, _CREATE, "_delete_room"),
    "ListParticipants": _Method(
        proto_room.ListParticipantsRequest, _ADMIN, "_list_participants", "room"
    ),
    "GetParticipant": _Method(
        proto_room.RoomParticipantIdentity, _ADMIN, "_get_participant", "room"
    ),
    "RemoveParticipant": _Method(
        proto_room.RoomParticipantIdentity, _ADMIN, "_remove_participant", "room"
    ),
    "MutePublishedTrack": _Method(
        proto_room.MuteRoomTrackRequest, _ADMIN, "_mute_published_track", "room"
    ),
    "UpdateParticipant": _Method(
        proto_room.UpdateParticipantRequest, _ADMIN, "_update_participant", "room"
    ),
    "UpdateSubscriptions": _Method(
        proto_room.UpdateSubscriptionsRequest, _ADMIN, "_update_subscriptions", "room"
    ),
    "SendData": _Method(proto_room.SendDataRequest, _ADMIN, "_send_data", "room"),
    "UpdateRoomMetadata": _Method(
        proto_room.UpdateRoomMetadataRequest, _ADMIN, "_update_room_metadata", "room"
    ),
}

_EGRESS_METHODS: dict[str, _Method] = {
    "StartRoomCompositeEgress": _Method(
        proto_egress.RoomCompositeEgressRequest, _RECORD, "_start_room_composite_egress"
    ),
    "StartWebEgress": _Method(proto_egress.WebEgressRequest, _RECORD, "_start_web_egress"),
    "StartParticipantEgress": _Method(
        proto_egress.ParticipantEgressRequest, _RECORD, "_start_participant_egress"
    ),
    "StartTrackCompositeEgress": _Method(
        proto_egress.TrackCompositeEgressRequest,
        _RECORD,
        "_start_track_composite_egress",
    ),
    "StartTrackEgress": _Method(proto_egress.TrackEgressRequest, _RECORD, "_start_track_egress"),
    "UpdateLayout": _Method(proto_egress.UpdateLayoutRequest, _RECORD, "_update_layout"),
    "UpdateStream": _Method(proto_egress.UpdateStreamRequest, _RECORD, "_update_stream"),
    "ListEgress": _Method(proto_egress.ListEgressRequest, _RECORD, "_list_egress"),
    "StopEgress": _Method(proto_egress.StopEgressRequest, _RECORD, "_stop_egress"),
}

# Real methods of those services that this double does not simulate: answered `unimplemented`
# (501) so a test fails loudly instead of passing against a made-up behaviour.
_NOT_SIMULATED = {
    "RoomService": {"ForwardParticipant", "MoveParticipant", "PerformRpc"},
    "Egress": {"StartEgress"},
}

_SERVICES: dict[str, dict[str, _Method]] = {
    "livekit.RoomService": _ROOM_METHODS,
    "livekit.Egress": _EGRESS_METHODS,
}


class LiveKitDouble:
    """A LiveKit server double on 127.0.0.1; see the module docstring for what it mirrors.

    Thread-safe: the HTTP handlers run on the double's own event loop thread, test code calls
    the accessors and hooks from the main thread, and all state sits behind one lock.
    Accessors return copies of the stored protobuf messages.
    """

    def __init__(self, api_key: str = "devkey", api_secret: str = "secret") -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        # livekit-server config knobs the double honours.
        self.auto_create = True  # room.auto_create: joining an unknown room creates it
        self.enable_remote_unmute = False  # room.enable_remote_unmute

        self._lock = threading.RLock()
        self.calls: list[Call] = []
        self.sent_data: list[SentData] = []
        self.webhooks: list[SentWebhook] = []
        self._rooms: dict[str, proto_models.Room] = {}
        self._participants: dict[str, dict[str, proto_models.ParticipantInfo]] = {}
        self._egresses: dict[str, proto_egress.EgressInfo] = {}
        self._fail: tuple[int, str, str] | None = None
        self._fail_times: int | None = None
        self._latency = 0.0

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> LiveKitDouble:
        """Start serving on an ephemeral port in a background thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("LiveKitDouble already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="LiveKitDouble", daemon=True
        )
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            self._submit(self._serve())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving and end the background thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if self._runner is not None:
                self._submit(self._unserve())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LiveKitDouble not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._runner is not None

    def down(self) -> None:
        """Close the listening socket and open connections: connections are then refused."""
        if self._runner is not None:
            self._submit(self._unserve())

    def up(self) -> None:
        """Listen again, on the same port as before."""
        if self._thread is None:
            raise RuntimeError("LiveKitDouble not started")
        if self._runner is None:
            self._submit(self._serve())

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def _submit(self, coro: Any, timeout: float = 10.0) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/twirp/{service}/{method}", self._handle_twirp)
        app.router.add_get("/rtc/validate", self._handle_rtc_validate)
        app.router.add_get("/rtc/v1/validate", self._handle_rtc_validate)
        app.router.add_get("/", self._handle_health)
        # A short shutdown timeout so down()/stop() do not wait on a slow (set_latency) call.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port or 0, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def _unserve(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # --- test controls --------------------------------------------------------------------

    def reset(self) -> None:
        """Forget calls, rooms, participants, egresses, sent data/webhooks, failures, latency.

        Also brings the double back up if a test left it down."""
        with self._lock:
            self.calls.clear()
            self.sent_data.clear()
            self.webhooks.clear()
            self._rooms.clear()
            self._participants.clear()
            self._egresses.clear()
            self._fail = None
            self._fail_times = None
            self._latency = 0.0
        if self._thread is not None:
            self.up()

    def fail_with(
        self,
        status: int = 503,
        code: str = "unavailable",
        times: int | None = None,
        msg: str = "injected failure",
    ) -> None:
        """Answer the next `times` Twirp calls (all of them if None) with `status` and a Twirp
        JSON error `code`. Takes effect before authentication, like an outage would."""
        with self._lock:
            self._fail = (status, code, msg)
            self._fail_times = times

    def clear_failures(self) -> None:
        with self._lock:
            self._fail = None
            self._fail_times = None

    def set_latency(self, seconds: float) -> None:
        """Delay every Twirp answer by `seconds`."""
        with self._lock:
            self._latency = max(0.0, float(seconds))

    def calls_to(self, method: str) -> list[Call]:
        """Calls to `method` ("UpdateParticipant", or "RoomService/UpdateParticipant")."""
        service, _, name = method.rpartition("/")
        with self._lock:
            return [
                c for c in self.calls if c.method == name and (not service or c.service == service)
            ]

    # --- state accessors (copies) ---------------------------------------------------------

    def room_names(self) -> list[str]:
        with self._lock:
            return list(self._rooms)

    def get_room(self, name: str) -> proto_models.Room | None:
        with self._lock:
            room = self._rooms.get(name)
            return _clone(room) if room is not None else None

    def participants(self, room: str) -> list[proto_models.ParticipantInfo]:
        with self._lock:
            return [_clone(p) for p in self._participants.get(room, {}).values()]

    def get_participant(self, room: str, identity: str) -> proto_models.ParticipantInfo | None:
        with self._lock:
            p = self._participants.get(room, {}).get(identity)
            return _clone(p) if p is not None else None

    def egresses(self, room: str | None = None) -> list[proto_egress.EgressInfo]:
        with self._lock:
            return [
                _clone(e) for e in self._egresses.values() if room is None or e.room_name == room
            ]

    def get_egress(self, egress_id: str) -> proto_egress.EgressInfo | None:
        with self._lock:
            e = self._egresses.get(egress_id)
            return _clone(e) if e is not None else None

    # --- simulation hooks -----------------------------------------------------------------

    def create_room_local(self, name: str, **fields: Any) -> proto_models.Room:
        """Create (or update) a room without an API call, as CreateRoom would."""
        with self._lock:
            return _clone(
                self._get_or_create_room(proto_room.CreateRoomRequest(name=name, **fields))
            )

    def add_participant(
        self,
        room: str,
        identity: str,
        name: str = "",
        metadata: str = "",
        attributes: Mapping[str, str] | None = None,
        permission: proto_models.ParticipantPermission | None = None,
        *,
        kind: int = proto_models.ParticipantInfo.STANDARD,
    ) -> proto_models.ParticipantInfo:
        """Simulate a client joining `room` (auto-created if missing, as with auto_create).

        `permission` defaults to what a token with default grants gives (publish, publish
        data, subscribe). A second join with the same identity replaces the first one with a
        new sid, like livekit-server's duplicate-identity handling."""
        if not identity:
            raise ValueError("identity cannot be empty")
        if permission is None:
            permission = permission_from_grants({})
        now = time.time()
        info = proto_models.ParticipantInfo(
            sid=_new_id("PA_"),
            identity=identity,
            name=name,
            metadata=metadata,
            attributes=dict(attributes or {}),
            permission=permission,
            state=proto_models.ParticipantInfo.ACTIVE,
            joined_at=int(now),
            joined_at_ms=int(now * 1000),
            kind=kind,  # type: ignore[arg-type]
        )
        with self._lock:
            if room not in self._rooms:
                if not self.auto_create:
                    raise JoinTokenError("requested room does not exist", status=404)
                self._get_or_create_room(proto_room.CreateRoomRequest(name=room))
            self._participants.setdefault(room, {})[identity] = info
            self._sync_room_counts(room)
            return _clone(info)

    def join(self, token: str, *, room: str | None = None) -> proto_models.ParticipantInfo:
        """Simulate a client connecting with `token`: verify it as ``/rtc`` does, then add the
        participant with identity, name, metadata, attributes and permission from its claims."""
        claims = self.verify_join_token(token, room=room)
        video = _video(claims)
        kind_name = str(claims.get("kind") or "standard").upper()
        try:
            kind = proto_models.ParticipantInfo.Kind.Value(kind_name)
        except ValueError:
            kind = proto_models.ParticipantInfo.STANDARD
        attributes = claims.get("attributes") or {}
        return self.add_participant(
            video["room"],
            claims["sub"],
            name=str(claims.get("name") or ""),
            metadata=str(claims.get("metadata") or ""),
            attributes={str(k): str(v) for k, v in attributes.items()},
            permission=permission_from_grants(video),
            kind=kind,
        )

    def remove_participant_local(self, room: str, identity: str) -> bool:
        """Simulate a participant leaving on its own. Returns whether it was there."""
        with self._lock:
            removed = self._participants.get(room, {}).pop(identity, None) is not None
            if removed:
                self._sync_room_counts(room)
            return removed

    def publish_track(
        self,
        room: str,
        identity: str,
        *,
        source: int = proto_models.TrackSource.CAMERA,
        name: str = "",
        muted: bool = False,
    ) -> proto_models.TrackInfo:
        """Simulate the participant publishing a track (no permission check)."""
        audio = source in (
            proto_models.TrackSource.MICROPHONE,
            proto_models.TrackSource.SCREEN_SHARE_AUDIO,
        )
        track = proto_models.TrackInfo(
            sid=_new_id("TR_"),
            type=proto_models.TrackType.AUDIO if audio else proto_models.TrackType.VIDEO,
            source=source,  # type: ignore[arg-type]
            name=name,
            muted=muted,
        )
        with self._lock:
            p = self._participants.get(room, {}).get(identity)
            if p is None:
                raise KeyError(f"no participant {identity!r} in room {room!r}")
            p.tracks.append(track)
            p.is_publisher = True
            self._sync_room_counts(room)
            return _clone(track)

    def set_egress_status(self, egress_id: str, status: int, *, error: str = "") -> None:
        """Move an egress to `status` (e.g. EGRESS_FAILED) as the egress service would."""
        with self._lock:
            info = self._egresses[egress_id]
            info.status = status  # type: ignore[assignment]
            info.updated_at = _now_ns()
            if status not in _LIVE_EGRESS and not info.ended_at:
                info.ended_at = info.updated_at
            if status == proto_egress.EGRESS_COMPLETE:
                _fill_results(info)
            if error:
                info.error = error
            self._sync_active_recording(info.room_name)

    def forget_egress(self, egress_id: str) -> None:
        """Make an egress vanish (an egress node that crashed, a server restarted): ListEgress
        no longer knows it and no webhook will ever come."""
        with self._lock:
            info = self._egresses.pop(egress_id)
            self._sync_active_recording(info.room_name)

    def send_egress_webhook(self, target_url: str, egress_id: str, event: str) -> int:
        """POST `event` (egress_started | egress_updated | egress_ended) carrying the egress's
        current EgressInfo, signed as livekit-server signs it."""
        info = self.get_egress(egress_id)
        assert info is not None, egress_id
        return self.send_webhook(
            target_url, self.make_event(event, room=info.room_name, egress_id=egress_id)
        )

    # --- join tokens ----------------------------------------------------------------------

    def verify_join_token(self, token: str, *, room: str | None = None) -> dict[str, Any]:
        """Validate a client join token the way livekit-server does on ``/rtc`` connect.

        Returns the claims; raises `JoinTokenError` (with the HTTP status the server would
        answer) otherwise. `room`, when given, must equal the token's ``video.room``."""
        try:
            unverified = _unverified_claims(token)
        except _TokenError as exc:
            raise JoinTokenError("invalid authorization token", 401) from exc
        if unverified.get("iss") != self.api_key:
            raise JoinTokenError(f"invalid API key: {unverified.get('iss')}", 401)
        try:
            claims = _verify_hs256(token, api_key=self.api_key, api_secret=self.api_secret)
        except _TokenError as exc:
            raise JoinTokenError(f"invalid token: {exc}", 401) from exc
        video = claims.get("video")
        if not isinstance(video, dict) or not video.get("roomJoin"):
            raise JoinTokenError("permissions denied", 401)
        if not claims.get("sub"):
            raise JoinTokenError("identity cannot be empty", 400)
        token_room = video.get("room") or ""
        if not token_room:
            raise JoinTokenError("no room name", 400)
        if room is not None and token_room != room:
            raise JoinTokenError(f"token is for room {token_room!r}, not {room!r}", 401)
        return claims

    # --- webhooks -------------------------------------------------------------------------

    def make_event(
        self,
        event: str,
        *,
        room: str | None = None,
        identity: str | None = None,
        egress_id: str | None = None,
        track: proto_models.TrackInfo | None = None,
    ) -> proto_webhook.WebhookEvent:
        """Build a WebhookEvent ("room_started", "participant_joined", "egress_ended", ...)
        filled with the double's current room / participant / egress state."""
        ev = proto_webhook.WebhookEvent(event=event, id=_new_id("EV_"), created_at=int(time.time()))
        with self._lock:
            if room is not None:
                stored = self._rooms.get(room)
                ev.room.CopyFrom(stored if stored is not None else proto_models.Room(name=room))
                if identity is not None:
                    p = self._participants.get(room, {}).get(identity)
                    if p is not None:
                        ev.participant.CopyFrom(p)
                    else:
                        ev.participant.CopyFrom(proto_models.ParticipantInfo(identity=identity))
            if egress_id is not None:
                ev.egress_info.CopyFrom(self._egresses[egress_id])
        if track is not None:
            ev.track.CopyFrom(track)
        return ev

    def send_webhook(
        self,
        target_url: str,
        event: proto_webhook.WebhookEvent | Mapping[str, Any],
        *,
        timeout: float = 5.0,
    ) -> int:
        """POST `event` to `target_url` the way livekit-server delivers webhooks; returns the
        HTTP status (connection failures raise `urllib.error.URLError`)."""
        if isinstance(event, Message):
            ev = _clone(event)
        else:
            ev = json_format.ParseDict(dict(event), proto_webhook.WebhookEvent())
        if not ev.id:
            ev.id = _new_id("EV_")
        if not ev.created_at:
            ev.created_at = int(time.time())
        body = json_format.MessageToJson(ev)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        auth = (
            AccessToken(self.api_key, self.api_secret)
            .with_ttl(WEBHOOK_TOKEN_TTL)
            .with_sha256(digest)
            .to_jwt()
        )
        request = urllib.request.Request(
            target_url,
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/webhook+json", "Authorization": auth},
        )
        # No proxies: the target is a local test server.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
        with self._lock:
            self.webhooks.append(SentWebhook(target_url, ev, body, auth, status))
        return status

    # --- HTTP handling --------------------------------------------------------------------

    async def _handle_health(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _handle_rtc_validate(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[len("Bearer ") :]
        try:
            self.verify_join_token(token)
        except JoinTokenError as exc:
            return web.Response(status=exc.status, text=exc.reason)
        return web.Response(text="success")

    async def _handle_twirp(self, request: web.Request) -> web.Response:
        service_full = request.match_info["service"]
        method_name = request.match_info["method"]
        service = service_full.removeprefix("livekit.")
        methods = _SERVICES.get(service_full)
        spec = methods.get(method_name) if methods is not None else None
        body = await request.read()
        content_type = request.content_type
        is_json = content_type == "application/json"

        # Best-effort decoding up front, so that every recorded call carries its request.
        message: Message | None = None
        decode_error = ""
        if spec is not None:
            try:
                message = _decode(spec.request_cls, body, is_json)
            except (
                DecodeError,
                json_format.ParseError,
                ValueError,
                UnicodeDecodeError,
            ) as exc:
                decode_error = str(exc)

        with self._lock:
            latency = self._latency
            injected = None
            if self._fail is not None:
                injected = self._fail
                if self._fail_times is not None:
                    self._fail_times -= 1
                    if self._fail_times <= 0:
                        self._fail, self._fail_times = None, None
        if latency:
            await asyncio.sleep(latency)

        claims: dict[str, Any] = {}
        try:
            if injected is not None:
                # Record who was calling even though the outage answers first.
                try:
                    claims = self._authenticate(request)
                except _AuthRejected:
                    claims = {}
                _status, code, msg = injected
                if not code:  # e.g. a proxy's non-Twirp error page
                    raise _AuthRejected(msg)
                raise _TwirpError(code, msg)
            claims = self._authenticate(request)
            if request.method != "POST":
                raise _TwirpError(
                    "bad_route",
                    f"unsupported method {request.method} (only POST is allowed)",
                )
            if spec is None:
                if service in _NOT_SIMULATED and method_name in _NOT_SIMULATED[service]:
                    raise _TwirpError(
                        "unimplemented",
                        f"LiveKitDouble does not simulate {method_name}",
                    )
                raise _TwirpError("bad_route", f'no handler for path "{request.path}"')
            if content_type not in ("application/json", "application/protobuf"):
                raise _TwirpError("bad_route", f'unexpected Content-Type: "{content_type}"')
            if message is None:
                raise _TwirpError("malformed", f"the request could not be decoded: {decode_error}")
            self._check_grant(spec, message, claims)
            with self._lock:
                result: Message = getattr(self, spec.handler)(message)
                payload = _encode(result, is_json)
        except _AuthRejected as exc:
            status = injected[0] if injected is not None else 401
            self._record(service, method_name, message, claims, status, None)
            return web.Response(status=status, text=exc.msg)
        except _TwirpError as exc:
            status = injected[0] if injected is not None else TWIRP_STATUS.get(exc.code, 500)
            self._record(service, method_name, message, claims, status, exc.code)
            return web.json_response({"code": exc.code, "msg": exc.msg}, status=status)
        except Exception as exc:  # noqa: BLE001 -- a bug in the double: answer like Twirp
            self._record(service, method_name, message, claims, 500, "internal")
            return web.json_response({"code": "internal", "msg": repr(exc)}, status=500)

        self._record(service, method_name, message, claims, 200, None)
        return web.Response(
            body=payload,
            status=200,
            content_type="application/json" if is_json else "application/protobuf",
        )

    def _record(
        self,
        service: str,
        method: str,
        message: Message | None,
        claims: dict[str, Any],
        status: int,
        error_code: str | None,
    ) -> None:
        with self._lock:
            self.calls.append(Call(service, method, message, claims, status, error_code))

    def _authenticate(self, request: web.Request) -> dict[str, Any]:
        """livekit-server's APIKeyAuthMiddleware: claims of a valid token, {} when there is no
        token at all; `_AuthRejected` (plain-text 401) for a bad one."""
        header = request.headers.get("Authorization", "")
        if header:
            if not header.startswith("Bearer "):
                raise _AuthRejected("invalid authorization header. Must start with Bearer ")
            token = header[len("Bearer ") :]
        else:
            token = request.query.get("access_token", "")
        if not token:
            return {}
        try:
            unverified = _unverified_claims(token)
        except _TokenError as exc:
            raise _AuthRejected("invalid authorization token") from exc
        if unverified.get("iss") != self.api_key:
            raise _AuthRejected(f"invalid API key: {unverified.get('iss') or ''}")
        try:
            return _verify_hs256(token, api_key=self.api_key, api_secret=self.api_secret)
        except _TokenError as exc:
            raise _AuthRejected(f"invalid token: {token}, error: {exc}") from exc

    @staticmethod
    def _check_grant(spec: _Method, message: Message, claims: Mapping[str, Any]) -> None:
        video = _video(claims)
        if spec.grant == _ADMIN:
            room = getattr(message, spec.room_field or "room")
            allowed = bool(video.get("roomAdmin")) and (video.get("room") or "") == room
        else:
            allowed = bool(video.get(spec.grant))
        if not claims or not allowed:
            # livekit-server: twirpAuthError(ErrPermissionDenied)
            raise _TwirpError("unauthenticated", "permissions denied")

    # --- state helpers (call with the lock held) ------------------------------------------

    def _get_or_create_room(self, req: proto_room.CreateRoomRequest) -> proto_models.Room:
        room = self._rooms.get(req.name)
        if room is None:
            now = time.time()
            room = proto_models.Room(
                sid=_new_id("RM_"),
                name=req.name,
                empty_timeout=DEFAULT_EMPTY_TIMEOUT,
                departure_timeout=DEFAULT_DEPARTURE_TIMEOUT,
                creation_time=int(now),
                creation_time_ms=int(now * 1000),
                turn_password=secrets.token_urlsafe(16),
            )
            self._rooms[req.name] = room
            self._participants.setdefault(req.name, {})
        # StandardRoomAllocator.CreateRoom: only non-zero request fields overwrite.
        if req.empty_timeout > 0:
            room.empty_timeout = req.empty_timeout
        if req.departure_timeout > 0:
            room.departure_timeout = req.departure_timeout
        if req.max_participants > 0:
            room.max_participants = req.max_participants
        if req.metadata:
            room.metadata = req.metadata
        return room

    def _require_room(self, name: str) -> proto_models.Room:
        room = self._rooms.get(name)
        if room is None:
            raise _TwirpError("not_found", "requested room does not exist")
        return room

    def _require_participant(
        self, room: str, identity: str, msg: str = "participant does not exist"
    ) -> proto_models.ParticipantInfo:
        p = self._participants.get(room, {}).get(identity)
        if p is None:
            raise _TwirpError("not_found", msg)
        return p

    def _sync_room_counts(self, name: str) -> None:
        room = self._rooms.get(name)
        if room is None:
            return
        people = self._participants.get(name, {}).values()
        room.num_participants = len(people)
        room.num_publishers = sum(1 for p in people if p.is_publisher)

    def _sync_active_recording(self, name: str) -> None:
        room = self._rooms.get(name)
        if room is not None:
            room.active_recording = any(
                e.room_name == name and e.status in _LIVE_EGRESS for e in self._egresses.values()
            )

    # --- RoomService ----------------------------------------------------------------------

    def _create_room(self, req: proto_room.CreateRoomRequest) -> proto_models.Room:
        if not req.name:
            raise _TwirpError("invalid_argument", "no room name")
        return self._get_or_create_room(req)

    def _list_rooms(self, req: proto_room.ListRoomsRequest) -> proto_room.ListRoomsResponse:
        names = set(req.names)
        return proto_room.ListRoomsResponse(
            rooms=[r for n, r in self._rooms.items() if not names or n in names]
        )

    def _delete_room(self, req: proto_room.DeleteRoomRequest) -> proto_room.DeleteRoomResponse:
        self._require_room(req.room)
        del self._rooms[req.room]
        self._participants.pop(req.room, None)
        # Egress of a room ends when the room closes.
        now = _now_ns()
        for info in self._egresses.values():
            if info.room_name == req.room and info.status in _LIVE_EGRESS:
                info.status = proto_egress.EGRESS_COMPLETE
                info.ended_at = info.updated_at = now
        return proto_room.DeleteRoomResponse()

    def _list_participants(
        self, req: proto_room.ListParticipantsRequest
    ) -> proto_room.ListParticipantsResponse:
        return proto_room.ListParticipantsResponse(
            participants=list(self._participants.get(req.room, {}).values())
        )

    def _get_participant(
        self, req: proto_room.RoomParticipantIdentity
    ) -> proto_models.ParticipantInfo:
        return self._require_participant(req.room, req.identity)

    def _remove_participant(
        self, req: proto_room.RoomParticipantIdentity
    ) -> proto_room.RemoveParticipantResponse:
        self._require_participant(req.room, req.identity, "participant not found")
        del self._participants[req.room][req.identity]
        self._sync_room_counts(req.room)
        return proto_room.RemoveParticipantResponse()

    def _mute_published_track(
        self, req: proto_room.MuteRoomTrackRequest
    ) -> proto_room.MuteRoomTrackResponse:
        p = self._participants.get(req.room, {}).get(req.identity)
        if p is None:
            # livekit-server routes this call to the participant's node over psrpc without
            # looking in the room store first: nobody answers for a participant who is not
            # there (psrpc.ErrNoResponse).
            raise _TwirpError("unavailable", NO_RESPONSE)
        if not req.muted and not self.enable_remote_unmute:
            raise _TwirpError("failed_precondition", "remote unmute not enabled")
        for track in p.tracks:
            if track.sid == req.track_sid:
                track.muted = req.muted
                return proto_room.MuteRoomTrackResponse(track=track)
        return proto_room.MuteRoomTrackResponse()

    def _update_participant(
        self, req: proto_room.UpdateParticipantRequest
    ) -> proto_models.ParticipantInfo:
        p = self._require_participant(req.room, req.identity)
        if req.name:
            p.name = req.name
        if req.metadata:
            p.metadata = req.metadata
        for key, value in req.attributes.items():
            if value:
                p.attributes[key] = value
            else:
                p.attributes.pop(key, None)
        if req.HasField("permission"):
            p.permission.CopyFrom(req.permission)
            _unpublish_disallowed(p)
        p.version += 1
        self._sync_room_counts(req.room)
        return p

    def _update_subscriptions(
        self, req: proto_room.UpdateSubscriptionsRequest
    ) -> proto_room.UpdateSubscriptionsResponse:
        self._require_participant(req.room, req.identity)
        return proto_room.UpdateSubscriptionsResponse()

    def _send_data(self, req: proto_room.SendDataRequest) -> proto_room.SendDataResponse:
        if req.nonce and len(req.nonce) != 16:
            raise _TwirpError(
                "invalid_argument",
                f"nonce should be 16-bytes or not present, got: {len(req.nonce)} bytes",
            )
        self._require_room(req.room)
        self.sent_data.append(
            SentData(
                room=req.room,
                payload=bytes(req.data),
                kind=int(req.kind),
                destination_identities=list(req.destination_identities),
                destination_sids=list(req.destination_sids),
                topic=req.topic,
            )
        )
        return proto_room.SendDataResponse()

    def _update_room_metadata(self, req: proto_room.UpdateRoomMetadataRequest) -> proto_models.Room:
        room = self._require_room(req.room)
        room.metadata = req.metadata
        return room

    # --- Egress ---------------------------------------------------------------------------

    def _start_egress(
        self,
        room_name: str,
        field_name: str,
        req: Message,
        source_type: int,
    ) -> proto_egress.EgressInfo:
        room_id = ""
        if room_name:
            room_id = self._require_room(room_name).sid
        now = _now_ns()
        info = proto_egress.EgressInfo(
            egress_id=_new_id("EG_"),
            room_id=room_id,
            room_name=room_name,
            source_type=source_type,  # type: ignore[arg-type]
            status=proto_egress.EGRESS_ACTIVE,
            started_at=now,
            updated_at=now,
        )
        getattr(info, field_name).CopyFrom(req)
        self._egresses[info.egress_id] = info
        if room_name:
            self._sync_active_recording(room_name)
        return info

    def _start_room_composite_egress(
        self, req: proto_egress.RoomCompositeEgressRequest
    ) -> proto_egress.EgressInfo:
        return self._start_egress(
            req.room_name, "room_composite", req, proto_egress.EGRESS_SOURCE_TYPE_WEB
        )

    def _start_web_egress(self, req: proto_egress.WebEgressRequest) -> proto_egress.EgressInfo:
        return self._start_egress("", "web", req, proto_egress.EGRESS_SOURCE_TYPE_WEB)

    def _start_participant_egress(
        self, req: proto_egress.ParticipantEgressRequest
    ) -> proto_egress.EgressInfo:
        return self._start_egress(
            req.room_name, "participant", req, proto_egress.EGRESS_SOURCE_TYPE_SDK
        )

    def _start_track_composite_egress(
        self, req: proto_egress.TrackCompositeEgressRequest
    ) -> proto_egress.EgressInfo:
        return self._start_egress(
            req.room_name, "track_composite", req, proto_egress.EGRESS_SOURCE_TYPE_SDK
        )

    def _start_track_egress(self, req: proto_egress.TrackEgressRequest) -> proto_egress.EgressInfo:
        return self._start_egress(req.room_name, "track", req, proto_egress.EGRESS_SOURCE_TYPE_SDK)

    def _require_egress(self, egress_id: str) -> proto_egress.EgressInfo:
        info = self._egresses.get(egress_id)
        if info is None:
            raise _TwirpError("not_found", "egress does not exist")
        return info

    def _update_layout(self, req: proto_egress.UpdateLayoutRequest) -> proto_egress.EgressInfo:
        info = self._require_egress(req.egress_id)
        if info.HasField("room_composite"):
            info.room_composite.layout = req.layout
        info.updated_at = _now_ns()
        return info

    def _update_stream(self, req: proto_egress.UpdateStreamRequest) -> proto_egress.EgressInfo:
        info = self._require_egress(req.egress_id)
        if info.status not in _ACTIVE_EGRESS:
            raise _TwirpError(
                "failed_precondition",
                f"egress with status {proto_egress.EgressStatus.Name(info.status)} "
                "cannot be updated",
            )
        info.updated_at = _now_ns()
        return info

    def _list_egress(self, req: proto_egress.ListEgressRequest) -> proto_egress.ListEgressResponse:
        items = [
            e
            for e in self._egresses.values()
            if (not req.room_name or e.room_name == req.room_name)
            and (not req.egress_id or e.egress_id == req.egress_id)
            and (not req.active or e.status in _LIVE_EGRESS)
        ]
        return proto_egress.ListEgressResponse(items=items)

    def _stop_egress(self, req: proto_egress.StopEgressRequest) -> proto_egress.EgressInfo:
        info = self._require_egress(req.egress_id)
        if info.status not in _ACTIVE_EGRESS:
            raise _TwirpError(
                "failed_precondition",
                f"egress with status {proto_egress.EgressStatus.Name(info.status)} "
                "cannot be stopped",
            )
        now = _now_ns()
        info.status = proto_egress.EGRESS_COMPLETE
        info.ended_at = info.updated_at = now
        _fill_results(info)
        self._sync_active_recording(info.room_name)
        return info


# --- small helpers ------------------------------------------------------------------------


# What a finished egress reports about its outputs (size is made up: no media here).
FAKE_FILE_SIZE = 1_048_576


def _fill_results(info: proto_egress.EgressInfo) -> None:
    """The file_results / segment_results livekit egress reports once an egress completes."""
    if info.file_results or info.segment_results or not info.HasField("room_composite"):
        return
    request = info.room_composite
    duration = max(0, info.ended_at - info.started_at)
    for output in request.file_outputs:
        location = output.filepath
        if output.HasField("s3"):
            location = f"s3://{output.s3.bucket}/{output.filepath}"
        info.file_results.append(
            proto_egress.FileInfo(
                filename=output.filepath,
                location=location,
                size=FAKE_FILE_SIZE,
                duration=duration,
                started_at=info.started_at,
                ended_at=info.ended_at,
            )
        )
    for output in request.segment_outputs:
        folder = output.filename_prefix.rpartition("/")[0]
        info.segment_results.append(
            proto_egress.SegmentsInfo(
                playlist_name=f"{folder}/{output.playlist_name}",
                live_playlist_name=f"{folder}/{output.live_playlist_name}",
                playlist_location=f"{folder}/{output.playlist_name}",
                live_playlist_location=f"{folder}/{output.live_playlist_name}",
                size=FAKE_FILE_SIZE,
                duration=duration,
                segment_count=max(1, duration // 4_000_000_000),
                started_at=info.started_at,
                ended_at=info.ended_at,
            )
        )


def _clone(message: _M) -> _M:
    return copy.deepcopy(message)


def _decode(cls: type[Message], body: bytes, is_json: bool) -> Message:
    message = cls()
    if is_json:
        # Twirp's Go servers discard unknown JSON fields.
        json_format.Parse(body.decode() or "{}", message, ignore_unknown_fields=True)
    else:
        message.ParseFromString(body)
    return message


def _encode(message: Message, is_json: bool) -> bytes:
    if not is_json:
        return message.SerializeToString()
    # Twirp's Go JSON defaults: proto field names, unpopulated fields emitted.
    return json_format.MessageToJson(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        indent=None,
    ).encode()


def _unpublish_disallowed(p: proto_models.ParticipantInfo) -> None:
    """Revoking publish rights unpublishes the tracks they no longer cover."""
    perm = p.permission
    if perm.can_publish and not perm.can_publish_sources:
        return
    sources = set(perm.can_publish_sources) if perm.can_publish else set()
    keep = [t for t in p.tracks if t.source in sources]
    if len(keep) != len(p.tracks):
        del p.tracks[:]
        p.tracks.extend(keep)
        p.is_publisher = bool(keep)
