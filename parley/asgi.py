"""ASGI pieces around Django's handler that keep requests on the event loop.

* `StaticFiles`: static files served before Django, with WhiteNoise's own file table and
  headers (configured from settings exactly as WhiteNoiseMiddleware is). WhiteNoise's Django
  middleware is sync-only: inside MIDDLEWARE it made every request hop loop -> thread ->
  loop -> thread. Here it costs a prefix comparison, and file reads run in a thread.
* `LeanRoutes`: the join-token routes (settings.LEAN_PATHS) go to a second Django handler
  whose middleware is settings.LEAN_MIDDLEWARE: no session, CSRF, auth, messages or allauth
  (these routes authenticate with an API key, never a cookie). Same URLconf, same views.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

Scope = dict[str, Any]
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


class LeanASGIHandler(ASGIHandler):
    """Django's ASGI handler built with settings.LEAN_MIDDLEWARE."""

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware reads settings.MIDDLEWARE; swap the list in for the
        # duration (this runs once, when the application is built at import).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = list(settings.LEAN_MIDDLEWARE)
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = full


class LeanRoutes:
    def __init__(self, app: Any, lean: Any | None = None) -> None:
        self.app = app
        self.lean = lean or LeanASGIHandler()
        self.paths = re.compile("|".join(f"(?:{p})" for p in settings.LEAN_PATHS))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.paths.fullmatch(scope["path"]):
            await self.lean(scope, receive, send)
        else:
            await self.app(scope, receive, send)
