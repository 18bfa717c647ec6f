"""The one fixed-window counter (in the cache), used by the API's hourly allowance, the join
page's per-client limits and the usage page; and the shared slow-down (`Backoff`) of password
rooms, plus the failed-API-key and code-mail caps built on the same counter.

A window is `[start, start + seconds)`; its counter lives under `rl:<scope>:<subject>:<start>`.
`hit` is atomic on Redis (INCR) and on the local-memory cache (locked).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from parley import cache as shared


@dataclass(frozen=True)
class Window:
    key: str
    start: int  # unix time the window opened
    reset: int  # unix time it closes
    seconds: int


def window(scope: str, subject: object, *, seconds: int, now: float | None = None) -> Window:
    """The current window of `subject` (a tenant pk, a room and client, ...) for `scope`."""
    now = time.time() if now is None else now
    start = int(now // seconds) * seconds
    return Window(
        key=f"rl:{scope}:{subject}:{start}", start=start, reset=start + seconds, seconds=seconds
    )


def api_window(tenant_id: int, *, now: float | None = None) -> Window:
    """The tenant's current API allowance window (settings.API_RATE_LIMIT_WINDOW seconds)."""
    return window("v1", tenant_id, seconds=settings.API_RATE_LIMIT_WINDOW, now=now)


def hit(w: Window, uses: int = 1) -> int:
    """Count `uses` uses in `w` at once; returns the uses so far, these included."""
    timeout = w.seconds + 60
    cache.add(w.key, 0, timeout=timeout)
    try:
        return int(cache.incr(w.key, uses))
    except ValueError:  # evicted between add and incr
        cache.set(w.key, uses, timeout=timeout)
        return uses


def used(w: Window) -> int:
    """Uses counted in `w` so far (no change)."""
    return int(shared.get(w.key) or 0)


@dataclass(frozen=True)
class Backoff:
    """A slow-down shared by every client: the first `free` failures in a window of
    `seconds` cost nothing; each later one makes the next try wait 1, 2, 4 ... seconds, at
    most `cap`. A wait always ends, so the right answer is never refused for good."""

    scope: str
    subject: str
    free: int
    cap: int
    seconds: int

    @property
    def until_key(self) -> str:
        return f"rl:{self.scope}:{self.subject}:until"


def backoff_wait(b: Backoff, *, now: float | None = None) -> int:
    """Whole seconds until the next try counts; 0 when it may be made now."""
    now = time.time() if now is None else now
    until = cache.get(b.until_key)
    if until is None or float(until) <= now:
        return 0
    return max(1, math.ceil(float(until) - now))


def backoff_fail(b: Backoff, *, now: float | None = None) -> int:
    """Count one failure; returns the delay (seconds) it imposes on the next try (0: none)."""
    now = time.time() if now is None else now
    failures = hit(window(b.scope, b.subject, seconds=b.seconds, now=now))
    if failures <= b.free:
        return 0
    delay = min(b.cap, 2 ** min(failures - b.free - 1, 30))
    cache.set(b.until_key, now + delay, timeout=delay + 1)
    return int(delay)
