"""The one base of Parley's JSON websocket consumers (join page, host, stage, dashboard).

Channels' `AsyncJsonWebsocketConsumer` raises on a binary frame, on text that is not JSON
and (through the decoder's recursion) on deep nesting: the socket closed abnormally and a
traceback was logged. Here every frame is read by `parley.jsontext.loads`; what it refuses,
or a JSON value that is not an object, is answered with an error frame
`{"type": "error", "code": "INVALID_FRAME", "message", "field": null}` and the socket stays
open. `receive_json` only ever sees a dict.

Channels' `AsyncConsumer.dispatch` first runs `close_old_connections` in a thread (the one
thread every thread-sensitive `sync_to_async` shares) before every message: a connect, each
frame, each group event, the disconnect. Under a webinar's join storm those hops queued on
that thread behind each other. These consumers touch the database only through
`database_sync_to_async`, which closes old connections itself before and after, on the
thread that uses them; so `dispatch` here calls the handler directly.

`run_db` runs a socket's database read on a fixed pool of settings.SOCKET_THREADS threads
per process, as the join page's requests run (parley.pages): `database_sync_to_async` runs
every consumer's calls on one thread per process, and there, with CONN_MAX_AGE=0, each call
opened a new database connection and closed it (on SQLite closing checkpoints the WAL): a
thousand stage sockets authenticating within seconds queued for seconds behind each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import close_old_connections

from parley import jsontext
from parley.asgi import keep_sqlite_connection

T = TypeVar("T")
_executor: ThreadPoolExecutor | None = None


def _db_call(func: Callable[..., T], args: tuple[Any, ...]) -> T:
    close_old_connections()  # as database_sync_to_async: no broken or expired connection
    try:
        return func(*args)
    finally:
        # This (pool) thread keeps its SQLite connection, a bounded number of them; a
        # PostgreSQL connection goes back to its pool.
        keep_sqlite_connection()
        close_old_connections()


async def run_db(func: Callable[..., T], *args: Any) -> T:
    """`func(*args)`, which reads or writes the database, on one of SOCKET_THREADS threads."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=settings.SOCKET_THREADS, thread_name_prefix="socket-db"
        )
    return await asyncio.get_running_loop().run_in_executor(_executor, _db_call, func, args)


MAX_FRAME_CHARS = 64 * 1024  # no frame of ours is more than a few hundred bytes
INVALID_FRAME = "INVALID_FRAME"


class JsonSocket(AsyncJsonWebsocketConsumer):
    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if text_data is None:
            await self.frame_error("Send JSON text frames, not binary ones")
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.frame_error("Frame too large")
            return
        try:
            content = jsontext.loads(text_data)
        except jsontext.InvalidJSON as exc:
            await self.frame_error(str(exc))
            return
        if not isinstance(content, dict):
            await self.frame_error("A frame is a JSON object")
            return
        await self.receive_json(content, **kwargs)

    async def frame_error(self, message: str) -> None:
        await self.send_json(
            {"type": "error", "code": INVALID_FRAME, "message": message, "field": None}
        )
