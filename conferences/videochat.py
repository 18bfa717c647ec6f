"""`/ws/videochat`: the direct-call handshake socket (reference videochat-handshake-ws.txt).

Every frame, both ways, is JSON `{"type", "data", "event": {"id", "date"}}`; answers carry
the request's `type` and `event.id` and the reference's error object (`{"status": false,
"code": 0, "message": ""}` when all is well). The socket authenticates with its first frame
`{"type": "auth", "data": {"token"}}` (or `?token=` on the URL) within
VIDEOCHAT_AUTH_SECONDS, else it is closed (4401). Bad frames get an error answer and the
socket stays open; a socket that floods is throttled (token bucket) and closed (4429) if it
keeps on. The consumer only translates: each message is one call of
`conferences.services.calls`, which holds all the state (database) and tells the other
sockets through the channel layer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from conferences.models import CallUser
from conferences.services import calls
from conferences.services.calls import CallError
from parley import jsontext

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024
MAX_DEPTH = 8
MAX_EVENT_ID = 128
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FLOOD = 4429
HEARTBEAT_SECONDS = 60

P = "videochat:"
REQUEST_DIRECT = P + "requestDirectVideochat"
INVITE = P + "invite"
ACCEPT = P + "acceptVideochatRequest"
DECLINE = P + "declineVideochatRequest"
MERGE = P + "mergeToVideochat"
DIRECT_ACCEPTED = P + "directVideochatRequestAccepted"
OK = {"status": False, "code": 0, "message": ""}


def now_ms() -> int:
    return int(time.time() * 1000)


def error(code: int, message: str) -> dict[str, Any]:
    return {"status": True, "code": code, "message": message}


class Bucket:
    """Per-socket token bucket: `rate` frames a second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# This process's authenticated sockets, refreshed in the database by one heartbeat task per
# event loop (a crashed process stops refreshing, and its sockets stop counting as present).
_live: set[str] = set()
_heartbeat: asyncio.Task[None] | None = None


async def _heartbeat_loop() -> None:
    while _live:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        await database_sync_to_async(calls.sockets_seen)(channel_names=sorted(_live))


def _keep_alive(channel_name: str) -> None:
    global _heartbeat
    _live.add(channel_name)
    loop = asyncio.get_running_loop()
    if _heartbeat is None or _heartbeat.done() or _heartbeat.get_loop() is not loop:
        _heartbeat = loop.create_task(_heartbeat_loop())


class VideochatConsumer(AsyncWebsocketConsumer):
    user: CallUser | None = None

    async def connect(self) -> None:
        self.user = None
        self.auth_sent = False
        self.group: str | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.bucket = Bucket(
            float(getattr(settings, "VIDEOCHAT_RATE_PER_SECOND", 10)),
            int(getattr(settings, "VIDEOCHAT_BURST", 30)),
        )
        self.refused = 0  # frames dropped by the rate limit in a row
        self.last_refusal = 0.0
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        token = (query.get("token") or [""])[0]
        user = await self._user_for(token) if token else None
        if token and user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.accept()
        if user is not None:
            await self._authenticated(user, "auth", None)
        else:
            self.tasks.append(asyncio.ensure_future(self._auth_deadline()))

    async def disconnect(self, code: int) -> None:
        for task in getattr(self, "tasks", []):
            task.cancel()
        if self.group:
            _live.discard(self.channel_name)
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await database_sync_to_async(calls.socket_closed)(channel_name=self.channel_name)

    # --- frames in --------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.bucket.take():
            await self._refuse_flood()
            return
        self.refused = 0
        if text_data is None:
            await self._answer("", None, {}, error(calls.INVALID_FRAME, "Send JSON text frames"))
            return
        if len(text_data) > MAX_FRAME_BYTES or len(text_data.encode()) > MAX_FRAME_BYTES:
            await self._answer("", None, {}, error(calls.INVALID_FRAME, "Frame too large"))
            return
        try:
            frame = jsontext.loads(text_data, limit=MAX_DEPTH)
        except jsontext.InvalidJSON as exc:
            await self._answer("", None, {}, error(calls.INVALID_FRAME, str(exc)))
            return
        if not isinstance(frame, dict):
            await self._answer("", None, {}, error(calls.INVALID_FRAME, "A frame is a JSON object"))
            return
        kind = frame.get("type")
        event = frame.get("event")
        event_id = event.get("id") if isinstance(event, dict) else None
        if not isinstance(event_id, (str, int)) or isinstance(event_id, bool):
            event_id = None
        elif isinstance(event_id, str) and len(event_id) > MAX_EVENT_ID:
            event_id = event_id[:MAX_EVENT_ID]
        if not isinstance(kind, str) or not kind or len(kind) > 64:
            await self._answer("", event_id, {}, error(calls.INVALID_FRAME, "Missing 'type'"))
            return
        data = frame.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            await self._answer(
                kind, event_id, {}, error(calls.INVALID_DATA, "'data' must be an object")
            )
            return
        if kind == "auth":
            await self._auth(data, event_id)
            return
        handler = HANDLERS.get(kind)
        if handler is None:
            await self._answer(
                kind, event_id, {}, error(calls.UNKNOWN_TYPE, f"Unknown type '{kind}'")
            )
            return
        if self.user is None:
            await self._answer(
                kind, event_id, {}, error(calls.NOT_AUTHENTICATED, "Authenticate first")
            )
            return
        try:
            result = await handler(self, data)
        except CallError as exc:
            await self._answer(kind, event_id, {}, error(exc.code, exc.message))
            return
        except Exception:  # e.g. a database error: logged; the socket stays up, nothing changed
            logger.exception("videochat %s failed", kind)
            await self._answer(
                kind, event_id, {}, error(calls.INTERNAL_ERROR, "Something went wrong; try again")
            )
            return
        await self._answer(kind, event_id, result, OK)

    async def _refuse_flood(self) -> None:
        self.refused += 1
        if self.refused > int(getattr(settings, "VIDEOCHAT_FLOOD_CLOSE_AFTER", 200)):
            await self.close(code=CLOSE_FLOOD)
            return
        now = time.monotonic()
        if now - self.last_refusal >= 1:  # at most one notice a second: no echo amplification
            self.last_refusal = now
            await self._answer(
                "", None, {}, error(calls.RATE_LIMITED, "Too many frames; slow down")
            )

    # --- auth -------------------------------------------------------------------------------

    @database_sync_to_async
    def _user_for(self, token: str) -> CallUser | None:
        return calls.user_for_token(token=token)

    async def _auth(self, data: dict[str, Any], event_id: Any) -> None:
        self.auth_sent = True  # in time: the deadline is for sockets that never present one
        if self.user is not None:
            await self._answer(
                "auth", event_id, {}, error(calls.INVALID_DATA, "Already authenticated")
            )
            return
        user = await self._user_for(data.get("token", ""))
        if user is None:
            await self._answer(
                "auth", event_id, {}, error(calls.INVALID_TOKEN, "Invalid or expired token")
            )
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self._authenticated(user, "auth", event_id)

    async def _authenticated(self, user: CallUser, kind: str, event_id: Any) -> None:
        self.user = user
        self.group = calls.user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await database_sync_to_async(calls.socket_opened)(
            user_pk=user.pk, channel_name=self.channel_name
        )
        _keep_alive(self.channel_name)
        await self._answer(kind, event_id, {"user": calls.simple(user)}, OK)

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(float(getattr(settings, "VIDEOCHAT_AUTH_SECONDS", 10)))
        if self.user is None and not self.auth_sent:
            await self.close(code=CLOSE_UNAUTHENTICATED)

    # --- messages ---------------------------------------------------------------------------

    @staticmethod
    def need(data: dict[str, Any], name: str) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise CallError(calls.INVALID_DATA, f"'{name}' is required (a string)")
        return value

    async def request_direct(self, data: dict[str, Any]) -> dict[str, Any]:
        request = await database_sync_to_async(calls.request_direct)(
            caller=self.user,
            target_id=self.need(data, "targetUser"),
            channel_name=self.channel_name,
        )
        return {"videochatRequestId": request.request_id}

    async def invite(self, data: dict[str, Any]) -> dict[str, Any]:
        request = await database_sync_to_async(calls.invite)(
            caller=self.user,
            target_id=self.need(data, "targetUser"),
            call_id=self.need(data, "videochatId"),
            channel_name=self.channel_name,
        )
        return {"videochatRequestId": request.request_id}

    async def accept_request(self, data: dict[str, Any]) -> dict[str, Any]:
        return await database_sync_to_async(calls.accept)(
            user=self.user,
            request_id=self.need(data, "videochatRequestId"),
            channel_name=self.channel_name,
        )

    async def decline_request(self, data: dict[str, Any]) -> dict[str, Any]:
        await database_sync_to_async(calls.decline)(
            user=self.user, request_id=self.need(data, "videochatRequestId")
        )
        return {}

    async def merge(self, data: dict[str, Any]) -> dict[str, Any]:
        await database_sync_to_async(calls.merge)(
            user=self.user,
            call_id=self.need(data, "videochatId"),
            request_id=self.need(data, "videochatRequestId"),
        )
        return {}

    # --- events from the channel layer ------------------------------------------------------

    async def videochat_event(self, message: dict[str, Any]) -> None:
        if message.get("except") == self.channel_name:
            return
        await self._send_frame(message["event"], None, message.get("data") or {}, OK)

    async def videochat_joined(self, message: dict[str, Any]) -> None:
        """The request this socket made was answered: mint this user's own payload here (a
        LiveKit token never travels through the channel layer)."""
        if self.user is None:
            return
        try:
            payload = await database_sync_to_async(calls.join_payload)(
                user=self.user, call_id=message["call_id"]
            )
        except CallError as exc:
            await self._send_frame(
                DIRECT_ACCEPTED, None, message.get("request_id") or {}, error(exc.code, exc.message)
            )
            return
        await self._send_frame(DIRECT_ACCEPTED, None, payload, OK)

    # --- frames out -------------------------------------------------------------------------

    async def _answer(self, kind: str, event_id: Any, data: dict[str, Any], err: dict) -> None:
        await self._send_frame(kind, event_id, data, err)

    async def _send_frame(self, kind: str, event_id: Any, data: dict[str, Any], err: dict) -> None:
        frame = {
            "type": kind,
            "data": data,
            "error": err,
            "event": {
                "id": event_id if event_id is not None else uuid.uuid4().hex,
                "date": now_ms(),
            },
        }
        await self.send(text_data=json.dumps(frame))


HANDLERS = {
    REQUEST_DIRECT: VideochatConsumer.request_direct,
    INVITE: VideochatConsumer.invite,
    ACCEPT: VideochatConsumer.accept_request,
    DECLINE: VideochatConsumer.decline_request,
    MERGE: VideochatConsumer.merge,
}
