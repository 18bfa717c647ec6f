"""Django's Redis cache backend, with each connection pool's client object built once; and
reads fetched ahead in one round trip (`prefetched`, `get`).

Django's RedisCacheClient builds a new `redis.Redis(connection_pool=pool)` for every cache
operation, and redis-py's constructor fills a table of ~170 response callbacks each time:
about 0.4 ms of CPU per operation, more than the Redis round trip itself and a third of a
join token's CPU before this. A redis.Redis client is thread-safe over its pool, so one per
pool is enough. Everything else (pools, serialisation, timeouts) is Django's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._client(connection_pool=pool)  # type: ignore[attr-defined]
            self._clients[id(pool)] = client
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


# --- reads fetched ahead in one round trip ---------------------------------------------------

_prefetched = threading.local()


@contextmanager
def prefetched(keys: list[str]) -> Iterator[None]:
    """Within the block, `get` answers these keys from one `get_many` (one MGET on Redis)
    made on entry, on this thread only. For a request that reads several counters and
    generations it would otherwise fetch one by one; keep the block to one request."""
    values = cache.get_many(keys) if keys else {}
    _prefetched.values = {key: values.get(key) for key in keys}
    try:
        yield
    finally:
        _prefetched.values = None


def get(key: str, default: Any = None) -> Any:
    """cache.get(key, default), from the enclosing `prefetched` block when it read `key`."""
    memo = getattr(_prefetched, "values", None)
    if memo is not None and key in memo:
        value = memo[key]
        return default if value is None else value
    return cache.get(key, default)
