"""Shared test fixtures: the cast (two tenants and their keys), an API client, LiveKit double.

Outside services are replaced only at their boundary: LiveKit by `LiveKitDouble` over real
HTTP. Nothing of Parley's own is mocked.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from accounts import services as account_services
from accounts.models import Plan, Tenant, User
from tests.livekit_double import LiveKitDouble

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _end_stray_connections(connection) -> None:
    """Before a transactional test's flush (TRUNCATE) on PostgreSQL, end the connections the
    test's subprocesses (Celery workers, servers) left on the test database: one idle in a
    transaction would make the flush wait for a lock forever. The suite's own connections
    carry its application_name (dashboard/settings_test.py) and are left alone."""
    if connection.vendor != "postgresql":
        return
    mine = connection.settings_dict.get("OPTIONS", {}).get("application_name", "")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, state, left(query, 120) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name <> %s",
            [mine],
        )
        stray = cursor.fetchall()
        for pid, name, state, query in stray:
            if state and state.startswith("idle in transaction") or state == "active":
                print(f"\n[tests] ending a stray connection {pid} ({name!r}, {state}): {query}")
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def _patch_flush() -> None:
    from django.db import connections
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self):  # type: ignore[no-untyped-def]
        for alias in self._databases_names(include_mirrors=False):
            _end_stray_connections(connections[alias])
        return original(self)

    TransactionTestCase._fixture_teardown = _fixture_teardown  # type: ignore[method-assign]


_patch_flush()


@pytest.fixture(autouse=True)
def _fresh_cache():
    from parley import hotcache

    cache.clear()
    hotcache.clear()
    yield
    cache.clear()
    hotcache.clear()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets its own channel layer instance: on Redis a layer remembers the event
    loop of a pending receive, and a consumer left over from one test's loop must not make
    the next test's consumers fail ("Two event loops are trying to receive()")."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@dataclass
class Member:
    tenant: Tenant
    user: User
    api_key: str


def ensure_plans() -> None:
    """The plans come from a data migration; transactional tests flush them, so re-seed."""
    from django.apps import apps

    if not Plan.objects.exists():
        importlib.import_module("accounts.migrations.0002_seed_plans").seed(apps, None)
        importlib.import_module("accounts.migrations.0004_recordings").seed(apps, None)


def make_member(name: str, plan: str = "free") -> Member:
    ensure_plans()
    created = account_services.create_tenant_with_admin(
        name=name, plan_code=plan, admin_email=f"admin@{name.lower().replace(' ', '-')}.test"
    )
    assert created.key is not None
    return Member(tenant=created.tenant, user=created.user, api_key=created.key.secret)


@pytest.fixture
def owner(db) -> Member:
    """A Free-plan tenant, its owner and an API key."""
    return make_member("Acme")


@pytest.fixture
def outsider(db) -> Member:
    """Another tenant: must never see or touch the first one's objects."""
    return make_member("Other Corp")


@pytest.fixture
def pro(db) -> Member:
    return make_member("Pro Co", plan="pro")


class Api:
    """A JSON client for /api/v1/ that sends an X-API-Key."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.key = key

    def _headers(self, key: str | None) -> dict[str, str]:
        key = self.key if key is None else key
        return {"X-API-Key": key} if key else {}

    def request(
        self, method: str, path: str, body: Any = None, *, key: str | None = None, raw=None
    ):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs: dict[str, Any] = {"headers": self._headers(key)}
        if data is None and method.upper() in {"POST", "PATCH", "PUT"}:
            data = ""  # no body at all, as `curl -X POST` sends
        if data is not None:
            kwargs.update(data=data, content_type="application/json")
        return getattr(self.client, method.lower())(path, **kwargs)

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture
def api(owner) -> Api:
    return Api(owner.api_key)


@pytest.fixture(scope="session")
def _livekit_server():
    with LiveKitDouble(
        api_key="devkey", api_secret="test-livekit-secret-with-at-least-32-bytes"
    ) as double:
        yield double


@pytest.fixture
def livekit(_livekit_server, settings) -> LiveKitDouble:
    """The LiveKit double, reset, with Parley's settings pointed at it."""
    _livekit_server.reset()
    if not _livekit_server.is_up:
        _livekit_server.up()
    settings.LIVEKIT_URL = _livekit_server.ws_url
    settings.LIVEKIT_PUBLIC_URL = _livekit_server.ws_url
    settings.LIVEKIT_API_KEY = _livekit_server.api_key
    settings.LIVEKIT_API_SECRET = _livekit_server.api_secret
    settings.LIVEKIT_TIMEOUT = 2
    yield _livekit_server
    if not _livekit_server.is_up:
        _livekit_server.up()


def assert_error(response, status: int, code: str | None = None, field: str | None = None):
    """The response is the v1 error envelope with this status (and code/field if given)."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "field", "request_id"}, error
    assert error["message"]
    assert error["request_id"] and response["X-Request-ID"] == error["request_id"]
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
    return error


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """A SQLite test database in a file rather than in memory: the browser tests serve the
    app from uvicorn threads, which then share the data safely (WAL, busy timeout) instead
    of tripping over an in-memory database's table locks."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        folder = tmp_path_factory.mktemp("sqlite")
        database.setdefault("TEST", {})["NAME"] = str(folder / "test.sqlite3")


# The dashboard's cast (owner, admin, member, viewer and an outsider): tests/dashboard_cast.py
from tests.dashboard_cast import cast  # noqa: E402, F401
