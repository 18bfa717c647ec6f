"""Test helpers for the videochat handshake: vouch for end users, and a socket that keeps the
frames it has not been asked for yet (events arrive interleaved with answers)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from channels.testing import WebsocketCommunicator

from tests.conftest import Api, Member

_ids = itertools.count(1)


def vouch(member: Member, user_id: str, **profile: Any) -> str:
    body = {"id": user_id, "firstName": user_id.title(), "lastName": "Tester", **profile}
    response = Api(member.api_key).post("/api/v1/call-tokens", body)
    assert response.status_code == 201, response.content
    return response.json()["token"]


def app():
    from dashboard.asgi import application

    return application


class Sock:
    """One /ws/videochat connection through the project's ASGI app."""

    def __init__(self, token: str | None = None, *, query: bool = False, application=None):
        self.token = token
        path = f"/ws/videochat?token={token}" if query and token else "/ws/videochat"
        self.ws = WebsocketCommunicator(
            application or app(),
            path,
            headers=[(b"origin", b"http://testserver"), (b"host", b"testserver")],
        )
        self.query = query
        self.pending: list[dict[str, Any]] = []

    async def open(self) -> dict[str, Any]:
        connected, code = await self.ws.connect()
        assert connected, code
        if self.query:
            return await self.next("auth")
        return await self.call("auth", {"token": self.token})

    async def send_raw(self, text: str | None = None, binary: bytes | None = None) -> None:
        if binary is not None:
            await self.ws.send_to(bytes_data=binary)
        else:
            await self.ws.send_to(text_data=text)

    async def send(self, kind: str, data: Any) -> str:
        event_id = f"ev-{next(_ids)}"
        await self.ws.send_to(
            text_data=json.dumps(
                {"type": kind, "data": data, "event": {"id": event_id, "date": 1700000000000}}
            )
        )
        return event_id

    async def call(self, kind: str, data: Any, timeout: float = 5) -> dict[str, Any]:
        """Send a message and wait for its answer (same type and event id)."""
        event_id = await self.send(kind, data)
        return await self.take(
            lambda f: f["type"] == kind and f["event"]["id"] == event_id, timeout
        )

    async def next(self, kind: str, timeout: float = 5) -> dict[str, Any]:
        return await self.take(lambda f: f["type"] == kind, timeout)

    async def take(self, predicate, timeout: float = 5) -> dict[str, Any]:
        for i, frame in enumerate(self.pending):
            if predicate(frame):
                return self.pending.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no matching frame; pending: {self.pending}")
            # receive_nothing polls without cancelling the app (a receive timeout would).
            if await self.ws.receive_nothing(timeout=left, interval=0.005):
                raise AssertionError(f"no matching frame; pending: {self.pending}")
            frame = json.loads(await self.ws.receive_from(timeout=1))
            assert set(frame) == {"type", "data", "error", "event"}, frame
            assert set(frame["event"]) == {"id", "date"}, frame
            if predicate(frame):
                return frame
            self.pending.append(frame)

    async def nothing(self, kind: str, wait: float = 0.3) -> bool:
        """No frame of `kind` arrives within `wait` seconds."""
        try:
            frame = await self.next(kind, timeout=wait)
        except AssertionError:
            return True
        raise AssertionError(f"unexpected {frame}")

    async def close(self) -> None:
        await self.ws.disconnect()


OK = {"status": False, "code": 0, "message": ""}


def ok(frame: dict[str, Any]) -> dict[str, Any]:
    assert frame["error"] == OK, frame
    return frame["data"]


def err(frame: dict[str, Any], code: int) -> dict[str, Any]:
    assert frame["error"]["status"] is True and frame["error"]["code"] == code, frame
    assert frame["error"]["message"]
    return frame["error"]
