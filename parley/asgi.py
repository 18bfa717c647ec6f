"""ASGI pieces around Django's handler that keep requests on the event loop.

* `StaticFiles`: static files served before Django, with WhiteNoise's own file table and
  headers (configured from settings exactly as WhiteNoiseMiddleware is). WhiteNoise's Django
  middleware is sync-only: inside MIDDLEWARE it made every request hop loop -> thread ->
  loop -> thread. Here it costs a prefix comparison, and file reads run in a thread.
* `LeanRoutes`: the join-token routes (settings.LEAN_PATHS) go to `LeanHandler`, Django's
  handler run synchronously on a fixed thread pool with settings.LEAN_MIDDLEWARE: no
  session, CSRF, auth, messages or allauth (these routes authenticate with an API key,
  never a cookie). Same URLconf, same views, same error envelope. The v1 token route's
  successes are answered before Django by conferences.api.fasttokens, which calls the
  same functions as its view and hands every other case to Django.
"""

from __future__ import annotations

import asyncio
import io
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIRequest, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.db import connection
from django.http import HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, Headers, bytes]  # status, headers, body
CHUNK = 64 * 1024


class StaticFiles:
    def __init__(self, app: Any) -> None:
        from whitenoise.middleware import WhiteNoiseMiddleware

        self.app = app
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)
        self.prefix = "/" + settings.STATIC_URL.strip("/") + "/"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            static_file = await self._find(scope["path"])
            if static_file is not None:
                await self._serve(static_file, scope, send)
                return
        await self.app(scope, receive, send)

    async def _find(self, path: str) -> Any:
        if self.whitenoise.autorefresh:  # development: look on disk, in a thread
            return await asyncio.to_thread(self.whitenoise.find_file, path)
        return self.whitenoise.files.get(path)

    async def _serve(self, static_file: Any, scope: Scope, send: Any) -> None:
        environ = {
            "HTTP_" + name.decode("latin-1").upper().replace("-", "_"): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        response = await asyncio.to_thread(static_file.get_response, scope["method"], environ)
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        headers.append((b"x-content-type-options", b"nosniff"))
        await send(
            {"type": "http.response.start", "status": int(response.status), "headers": headers}
        )
        if response.file is None:
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            while True:
                chunk = await asyncio.to_thread(response.file.read, CHUNK)
                await send({"type": "http.response.body", "body": chunk, "more_body": bool(chunk)})
                if not chunk:
                    break
        finally:
            response.file.close()


def keep_sqlite_connection() -> None:
    """On SQLite, this (pool) thread keeps its connection past request_finished: there are
    LEAN_THREADS of them per process, a bounded number, and closing one checkpoints the WAL,
    which cost more than the whole token. PostgreSQL's connection goes back to its pool."""
    if connection.connection is not None and connection.vendor == "sqlite":
        connection.close_at = None


class LeanHandler(BaseHandler):
    """Django's request handling for the join-token routes, synchronously, on a fixed pool
    of threads: settings.LEAN_MIDDLEWARE (sync mode), the same URLconf, views, signals and
    error handling, with one hand-off from the event loop per request. Django's own ASGI
    handler hands off three times (request_started, the view, response.close), each to a
    thread created for the request."""

    def __init__(
        self,
        *,
        middleware: list[str] | None = None,
        threads: int | None = None,
        thread_name: str = "lean",
        fast_tokens: bool = True,
    ) -> None:
        super().__init__()
        # BaseHandler.load_middleware reads settings.MIDDLEWARE; swap the list in for the
        # duration (this runs once, when the application is built at import).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = list(settings.LEAN_MIDDLEWARE if middleware is None else middleware)
        try:
            self.load_middleware(is_async=False)
        finally:
            settings.MIDDLEWARE = full
        self.executor = ThreadPoolExecutor(
            max_workers=threads or settings.LEAN_THREADS, thread_name_prefix=thread_name
        )
        from conferences.api.fasttokens import FastTokens

        self.fast = FastTokens() if fast_tokens else None
        # Fast-path requests waiting for the thread that answers them in batches.
        self._waiting: list[tuple[Scope, bytes, asyncio.Future[Any]]] = []  # future: its loop
        self._waiting_lock = threading.Lock()
        self._batching = False
        self.batches = 0  # batches run (tests)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        loop = asyncio.get_running_loop()
        answer: Answer | None = None
        if self.fast is not None and self.fast.handles(scope):
            answer = await self._fast(loop, scope, bytes(body))
        if answer is None:
            answer = await loop.run_in_executor(self.executor, self.respond, scope, bytes(body))
        status, headers, content = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _fast(
        self, loop: asyncio.AbstractEventLoop, scope: Scope, body: bytes
    ) -> Answer | None:
        """The fast path's answer (None: Django must answer). Requests that arrive while a
        batch is running wait for the next one: under load, one thread hand-off, one
        request_started/finished and one Redis round trip serve many tokens."""
        future: asyncio.Future[Any] = loop.create_future()
        with self._waiting_lock:
            self._waiting.append((scope, body, future))
            start = not self._batching
            self._batching = True
        if start:
            self.executor.submit(self._run_batches)
        return await future

    def _run_batches(self) -> None:
        while True:
            with self._waiting_lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._batching = False
                    return
            try:
                assert self.fast is not None
                answers = self.fast.respond_many([(scope, body) for scope, body, _ in batch])
            except Exception:
                answers = [None] * len(batch)
            self.batches += 1
            # One wake-up per event loop (a server has one per process).
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
            for (_, _, future), answer in zip(batch, answers, strict=True):
                by_loop.setdefault(future.get_loop(), []).append((future, answer))
            for loop, results in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_deliver, results)
                except RuntimeError:  # that loop has closed: nobody waits for its answers
                    pass

    def respond(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, headers and body of the request, computed by Django on this (pool)
        thread; a join token's 200 teaches the fast path its headers."""
        status, headers, content = self.respond_fully(scope, body)
        if self.fast is not None and self.fast.handles(scope):
            self.fast.learn(scope, status, headers)
        return status, headers, content

    def respond_fully(
        self, scope: Scope, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        try:
            request = ASGIRequest(scope, io.BytesIO(body))
        except UnicodeDecodeError:
            response: HttpResponseBase = HttpResponseBadRequest()
        else:
            response = self.get_response(request)
        keep_sqlite_connection()
        try:
            headers = [
                (k.encode("ascii"), v.encode("latin-1") if isinstance(v, str) else bytes(v))
                for k, v in response.items()
            ]
            headers += [
                (b"Set-Cookie", c.output(header="").encode("ascii").strip())
                for c in response.cookies.values()
            ]
            content = b"".join(response) if response.streaming else response.content  # type: ignore[attr-defined]
            if not response.has_header("Content-Length"):
                headers.append((b"Content-Length", str(len(content)).encode("ascii")))
            return response.status_code, headers, content
        finally:
            response.close()  # request_finished: the database connection goes back


def _deliver(results: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, answer in results:
        if not future.done():  # the client may have gone (task cancelled)
            future.set_result(answer)


class LeanRoutes:
    def __init__(self, app: Any, lean: Any | None = None) -> None:
        self.app = app
        self.lean = lean or LeanHandler()
        self.paths = re.compile("|".join(f"(?:{p})" for p in settings.LEAN_PATHS))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.paths.fullmatch(scope["path"]):
            await self.lean(scope, receive, send)
        else:
            await self.app(scope, receive, send)
