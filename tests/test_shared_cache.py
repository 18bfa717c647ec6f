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
