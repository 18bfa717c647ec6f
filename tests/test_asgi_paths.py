"""The ASGI application as servers run it (dashboard.asgi.application): static files before
Django, the join-token routes through the lean middleware chain, everything else as before."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from dashboard.asgi import application
from tests.conftest import Api

ROOT = Path(__file__).resolve().parent.parent


def call(method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.request(method, path, **kwargs)

    return asyncio.run(go())


@pytest.fixture
def room(transactional_db, owner, livekit):
    response = Api(owner.api_key).post("/api/v1/rooms", {"name": "ASGI"})
    assert response.status_code == 201
    return response.json()


def test_token_route_runs_without_session_or_csrf(room, owner, livekit):
    response = call(
        "POST",
        f"/api/v1/rooms/{room['room_id']}/tokens",
        json={"name": "Ann", "identity": "ann"},
        headers={"X-API-Key": owner.api_key},
    )
    assert response.status_code == 200, response.text
    assert livekit.verify_join_token(response.json()["token"])["sub"] == "ann"
    assert response.headers["X-Request-ID"].startswith("req_")
    assert "set-cookie" not in response.headers and "Cookie" not in response.headers.get("Vary", "")
    assert response.headers.get("X-RateLimit-Limit") == "100"


def test_token_route_errors_keep_the_envelope(room, owner):
    missing = call(
        "POST",
        "/api/v1/rooms/nope/tokens",
        json={"name": "A"},
        headers={"X-API-Key": owner.api_key},
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert missing.json()["error"]["request_id"] == missing.headers["X-Request-ID"]
    no_key = call("POST", f"/api/v1/rooms/{room['room_id']}/tokens", json={"name": "A"})
    assert no_key.status_code == 401 and "error" in no_key.json()


def test_interactive_show_join_through_the_lean_chain(transactional_db, owner, livekit):
    response = call(
        "POST",
        "/api/rooms/join",
        json={"roomName": "Evening show", "participantName": "viewer-1"},
        headers={"X-API-Key": owner.api_key},
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "viewer" and "set-cookie" not in response.headers


def test_other_routes_keep_the_full_chain(transactional_db):
    page = call("GET", "/accounts/login/")
    assert page.status_code == 200
    assert "csrftoken" in page.headers.get("set-cookie", "")  # CSRF middleware ran
    assert page.headers["X-Frame-Options"] == "DENY"


def test_static_files_are_served_before_django(transactional_db):
    expected = (ROOT / "static" / "css" / "parley.css").read_bytes()
    response = call("GET", f"/{settings.STATIC_URL.strip('/')}/css/parley.css")
    assert response.status_code == 200 and response.content == expected
    assert response.headers["content-type"].startswith("text/css")
    head = call("HEAD", f"/{settings.STATIC_URL.strip('/')}/css/parley.css")
    assert head.status_code == 200 and head.content == b""
    assert call("GET", "/static/css/missing.css").status_code == 404
