"""parley.cache: one redis-py client per connection pool, and reads fetched ahead."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.core.cache import cache

from parley import cache as shared


def test_prefetched_reads_come_from_one_fetch_and_only_inside_the_block():
    cache.set("pf:a", 1)
    cache.delete("pf:b")
    with shared.prefetched(["pf:a", "pf:b"]):
        cache.set("pf:a", 2)  # changed after the fetch: the block keeps what it read
        assert shared.get("pf:a") == 1
        assert shared.get("pf:b") is None and shared.get("pf:b", 7) == 7
        cache.set("pf:c", 3)
        assert shared.get("pf:c") == 3  # not prefetched: read as usual
    assert shared.get("pf:a") == 2


def test_redis_cache_builds_one_client_per_pool():
    if not settings.REDIS_URL:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but REDIS_URL is not set")
        pytest.skip("REDIS_URL not set")
    from django.core.cache import caches

    assert isinstance(caches["default"], shared.RedisCache)
    backend = caches["default"]._cache
    first = backend.get_client(write=True)
    assert backend.get_client(write=True) is first and backend.get_client() is first
    cache.set("pf:redis", {"n": 1})
    assert cache.get("pf:redis") == {"n": 1}
    cache.set("pf:i", 0)
    assert cache.incr("pf:i") == 1 and cache.get_many(["pf:i", "pf:redis"])["pf:i"] == 1


def test_new_redis_connections_do_not_read_package_metadata_each(monkeypatch):
    from importlib import metadata

    import redis.asyncio

    reads = []
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: reads.append(name) or real(name))
    for _ in range(3):
        redis.asyncio.Connection(host="127.0.0.1", port=6379)  # not connected: no traffic
    assert reads.count("redis") <= 1  # once for the process, not once per connection


def test_every_cache_backend_of_the_process_shares_one_redis_client():
    """Django builds a backend per thread and per async context (each websocket's): they
    all share one pool, so a storm of sockets does not open a Redis connection each."""
    if not settings.REDIS_URL:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but REDIS_URL is not set")
        pytest.skip("REDIS_URL not set")
    import asyncio

    from asgiref.sync import sync_to_async
    from django.core.cache import caches

    def client_of_this_context():
        return caches["default"]._cache.get_client()

    async def sockets():
        return await asyncio.gather(
            *(asyncio.create_task(sync_to_async(client_of_this_context)()) for _ in range(5))
        )

    clients = asyncio.run(sockets())
    assert {id(c) for c in clients} == {id(caches["default"]._cache.get_client())}
    backends = [caches.create_connection("default")._cache for _ in range(3)]
    assert len({id(b) for b in backends}) == 3  # separate backends, one client
    assert {id(b.get_client()) for b in backends} == {id(clients[0])}
