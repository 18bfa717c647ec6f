"""Short-lived per-process copies of the rows every join token reads (the caller's API key
with its tenant and plan, the room), so the token path does not rebuild the same queries on
every request.

An entry is used only while both hold:
* it is younger than settings.HOT_CACHE_SECONDS (default 1 s), and
* its tenant's generation in the shared cache (Redis in production) has not moved since the
  entry was read from the database.

Services that change what an entry holds (revoke a key, change a room or a tenant) call
`invalidate_tenant` inside their transaction; on commit the generation moves and every
process, on every host, reloads on its next lookup. A change that bypasses the services
(Django admin, a shell) is seen within HOT_CACHE_SECONDS anyway. Values are model instances
kept in this process only (nothing is serialised into Redis; the generation is an integer).
Callers must treat them as read-only.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from parley import cache as shared

_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    value: Any
    tenant_id: int
    generation: int
    expires: float


_entries: dict[tuple[str, str], _Entry] = {}
_lock = threading.Lock()


def generation_key(tenant_id: int) -> str:
    """The shared cache key of the tenant's generation (to prefetch it: parley.cache)."""
    return f"hot:gen:{tenant_id}"


def generation(tenant_id: int) -> int:
    """The tenant's current generation (read it BEFORE loading what you will `put`)."""
    return int(shared.get(generation_key(tenant_id)) or 0)


def tenant_of(kind: str, key: str) -> int | None:
    """The tenant of what this process holds for (kind, key), valid or not; None if nothing."""
    entry = _entries.get((kind, key))
    return None if entry is None else entry.tenant_id


def get(kind: str, key: str) -> Any | None:
    """The cached value of (kind, key) while still valid; None otherwise."""
    entry = _entries.get((kind, key))
    if entry is None:
        return None
    if time.monotonic() >= entry.expires or generation(entry.tenant_id) != entry.generation:
        with _lock:
            if _entries.get((kind, key)) is entry:
                del _entries[(kind, key)]
        return None
    return entry.value


def put(kind: str, key: str, value: Any, *, tenant_id: int, generation: int) -> None:
    """Remember `value` for (kind, key), valid while the tenant stays at `generation`."""
    seconds = float(getattr(settings, "HOT_CACHE_SECONDS", 1.0))
    if seconds <= 0:
        return
    with _lock:
        if len(_entries) >= _MAX_ENTRIES:
            _entries.clear()
        _entries[(kind, key)] = _Entry(value, tenant_id, generation, time.monotonic() + seconds)


def invalidate_tenant(tenant_id: int) -> None:
    """Every process stops using what it holds for the tenant (keys, rooms): now, and again
    when the current transaction commits (a process that reloaded the row in between, before
    the commit, read the old values)."""

    def bump() -> None:
        key = generation_key(tenant_id)
        cache.add(key, 0, timeout=None)
        try:
            cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, int(time.time()), timeout=None)
        with _lock:
            for k in [k for k, e in _entries.items() if e.tenant_id == tenant_id]:
                _entries.pop(k, None)

    bump()
    transaction.on_commit(bump)


def clear() -> None:
    """Forget this process's entries (tests)."""
    with _lock:
        _entries.clear()
