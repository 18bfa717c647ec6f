"""The join page's own routes (settings.PAGE_PATHS: the page, its join and state calls) on
a fixed pool of threads, with the full middleware chain run synchronously.

Why: under Django's ASGI handler a sync view gets a thread created for its request, and
every `MiddlewareMixin` middleware (security, session, common, CSRF, auth, messages,
clickjacking) runs its request and response halves through `sync_to_async`: some fifteen
loop <-> thread hand-offs per page. When a webinar starts and a thousand viewers open the
page within seconds, that is a thousand threads at once, each waiting for one of the
process's pooled database connections (psycopg's pool raised "couldn't get a connection
after 10 sec" and the pages answered 500). Here a request is handed off once, to one of
settings.PAGE_THREADS threads (keep it below DATABASE_POOL_MAX_SIZE): the rest queue on the
event loop, which costs nothing, and every request finds a connection.

Same middleware (settings.MIDDLEWARE: sessions, CSRF, CSP nonce, custom domains), URLconf,
views, signals and error handling as every other page; only the way the handler is driven
differs (parley.asgi.LeanHandler's, with the full chain instead of the lean one).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from parley.asgi import LeanHandler, LeanRoutes


class PageHandler(LeanHandler):
    """`LeanHandler` (one hand-off to a fixed pool, synchronous Django) with the full
    settings.MIDDLEWARE chain."""

    def __init__(self) -> None:
        super().__init__(
            middleware=list(settings.MIDDLEWARE),
            threads=settings.PAGE_THREADS,
            thread_name="page",
            fast_tokens=False,
        )


class PageRoutes(LeanRoutes):
    """settings.PAGE_PATHS (HTTP) to `PageHandler`; everything else to `app`."""

    def __init__(self, app: Any, pages: Any | None = None) -> None:
        super().__init__(app, pages or PageHandler())
        self.paths = re.compile("|".join(f"(?:{p})" for p in settings.PAGE_PATHS))
