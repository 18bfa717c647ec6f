"""Production settings, the services this run was given, and the room pages."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client

from conferences.services import rooms as room_services
from tests.conftest import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    clean.update({"DJANGO_SETTINGS_MODULE": "dashboard.settings", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "LIVEKIT_API_SECRET": "production-livekit-secret-0123456789",
    "ALLOWED_HOSTS": "parley.example.com",
}


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "LIVEKIT_API_SECRET"])
def test_production_refuses_development_secrets(missing):
    env = dict(PRODUCTION)
    env[missing] = ""
    result = manage("check", **env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_database_is_the_one_configured():
    wanted = os.environ.get("DATABASE_URL", "")
    if wanted.startswith("postgres"):
        assert connection.vendor == "postgresql"
        assert connection.Database.__name__ == "psycopg"  # psycopg 3
    elif REQUIRE_SERVICES:
        pytest.fail("REQUIRE_SERVICES=1 but DATABASE_URL does not name PostgreSQL")
    else:
        assert connection.vendor == "sqlite"


def test_cache_and_channel_layer_use_redis_when_configured():
    if not settings.REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 but REDIS_URL is not set")
        pytest.skip("REDIS_URL not set: embedded in-memory cache and channel layer")
    assert "redis" in settings.CACHES["default"]["BACKEND"].lower()
    cache.set("parley-probe", 1, 10)
    assert cache.incr("parley-probe") == 2  # rate limiting relies on atomic INCR
    assert "redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"].lower()
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_join_page_escapes_the_room_name(owner):
    room = room_services.create_room(
        tenant=owner.tenant, data={"name": "<script>alert('x')</script>"}
    )
    response = Client().get(f"/room/{room.room_id}")
    assert response.status_code == 200
    assert b"<script>alert" not in response.content
    assert b"&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in response.content


def test_host_link_needs_the_right_secret(owner):
    room = room_services.create_room(tenant=owner.tenant, data={"name": "Hosted"})
    client = Client()
    assert client.get(f"/room/{room.room_id}/host/{room.host_secret}").status_code == 200
    assert client.get(f"/room/{room.room_id}/host/wrong-secret").status_code == 404
    assert client.get("/room/unknownroom1").status_code == 404


def test_health_endpoint(db):
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_redis_channel_layer_survives_an_idle_wait():
    """A consumer waiting more than 5 s for a message (an idle websocket) must not crash:
    redis-py's default read timeout was shorter than channels-redis's blocking wait."""
    if not settings.REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 but REDIS_URL is not set")
        pytest.skip("REDIS_URL not set")
    import asyncio

    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    async def scenario() -> dict:
        # A layer of its own: the shared one is bound to the test client's event loops.
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        channel = await layer.new_channel()

        async def later() -> None:
            await asyncio.sleep(6.5)
            await layer.send(channel, {"type": "ping"})

        sender = asyncio.create_task(later())
        message = await asyncio.wait_for(layer.receive(channel), timeout=15)
        await sender
        await layer.close_pools()
        return message

    assert asyncio.run(scenario())["type"] == "ping"
