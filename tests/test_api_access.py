"""API keys, tenant isolation (outsiders get 404), rate limits, the envelope and the schema."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from accounts.models import ApiKey
from conferences.models import Room
from tests.conftest import Api, assert_error, make_member

ROOM_ENDPOINTS = [
    ("GET", "/api/v1/rooms/{id}", None),
    ("PATCH", "/api/v1/rooms/{id}", {"name": "Taken over"}),
    ("DELETE", "/api/v1/rooms/{id}", None),
    ("POST", "/api/v1/rooms/{id}/start", None),
    ("POST", "/api/v1/rooms/{id}/stop", None),
    ("POST", "/api/v1/rooms/{id}/tokens", {"name": "Mallory"}),
    ("GET", "/api/v1/rooms/{id}/participants", None),
]


@pytest.mark.parametrize("method, path, body", ROOM_ENDPOINTS)
def test_outsider_gets_404_on_every_room_endpoint(
    owner, outsider, api, livekit, method, path, body
):
    room = api.post("/api/v1/rooms", {"name": "Private"}).json()
    api.post(f"/api/v1/rooms/{room['room_id']}/start")
    calls_before = len(livekit.calls)
    stranger = Api(outsider.api_key)
    response = stranger.request(method, path.format(id=room["room_id"]), body)
    error = assert_error(response, 404, "NOT_FOUND")
    assert room["room_id"] not in str(response.content) or error["message"] == "Room not found"
    assert len(livekit.calls) == calls_before  # nothing reached LiveKit
    stored = Room.objects.get(room_id=room["room_id"])
    assert stored.name == "Private" and stored.status == "active"


@pytest.mark.parametrize("method, path, body", ROOM_ENDPOINTS)
def test_unknown_room_is_404_like_a_foreign_one(api, method, path, body):
    assert_error(api.request(method, path.format(id="A1b2C3d4E5f6"), body), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": ""}, {"X-API-Key": "nope"}, {"X-API-Key": "pk_0123456789ab_" + "x" * 43}],
)
def test_missing_or_invalid_key_is_401(db, headers):
    response = Client().get("/api/v1/rooms", headers=headers)
    assert_error(response, 401, "UNAUTHORIZED")


def test_bearer_header_is_not_an_api_key(owner):
    response = Client().get("/api/v1/rooms", headers={"Authorization": f"Bearer {owner.api_key}"})
    assert_error(response, 401, "UNAUTHORIZED")


def test_a_tampered_key_with_a_valid_prefix_is_401(owner):
    tampered = owner.api_key[:-4] + ("aaaa" if not owner.api_key.endswith("aaaa") else "bbbb")
    assert_error(Api(tampered).get("/api/v1/rooms"), 401, "UNAUTHORIZED")


def test_revoked_key_is_401(owner, api):
    assert api.get("/api/v1/rooms").status_code == 200
    key = ApiKey.objects.get(tenant=owner.tenant)
    account_services.revoke_api_key(api_key=key)
    assert_error(api.get("/api/v1/rooms"), 401, "UNAUTHORIZED")


def test_keys_are_stored_hashed_and_last_use_recorded(owner, api):
    key = ApiKey.objects.get(tenant=owner.tenant)
    assert owner.api_key not in (key.key_hash, key.prefix)
    assert key.key_hash == account_services.hash_key(owner.api_key)
    assert key.last_used_at is None
    api.get("/api/v1/rooms")
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_at <= timezone.now()


def test_request_id_header_on_success_and_error(api):
    ok = api.get("/api/v1/rooms")
    assert ok["X-Request-ID"].startswith("req_")
    bad = api.get("/api/v1/rooms/nope")
    assert bad["X-Request-ID"] == bad.json()["error"]["request_id"] != ok["X-Request-ID"]


def test_unknown_api_path_and_method_use_the_envelope(api):
    assert_error(api.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    assert_error(api.request("PUT", "/api/v1/rooms", {"name": "x"}), 405, "METHOD_NOT_ALLOWED")


class TestRateLimits:
    def test_headers_on_every_response(self, api):
        response = api.get("/api/v1/rooms")
        assert response["X-RateLimit-Limit"] == "100"  # Free plan: 100 requests/hour
        assert response["X-RateLimit-Remaining"] == "99"
        reset = int(response["X-RateLimit-Reset"])
        assert time.time() < reset <= time.time() + 3600
        assert api.get("/api/v1/rooms")["X-RateLimit-Remaining"] == "98"
        error = api.get("/api/v1/rooms/nope")
        assert error.status_code == 404 and error["X-RateLimit-Remaining"] == "97"

    def test_429_past_the_plan_limit_with_retry_after(self, owner, api):
        for _ in range(100):
            assert api.get("/api/v1/rooms").status_code == 200
        response = api.post("/api/v1/rooms", {"name": "One too many"})
        assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
        assert response["X-RateLimit-Remaining"] == "0"
        assert 0 < int(response["Retry-After"]) <= 3600
        assert Room.objects.count() == 0  # the refused request wrote nothing

    def test_limits_are_per_tenant(self, owner, outsider, api):
        for _ in range(100):
            api.get("/api/v1/rooms")
        assert api.get("/api/v1/rooms").status_code == 429
        assert Api(outsider.api_key).get("/api/v1/rooms").status_code == 200

    def test_starter_plan_allows_1000(self, db):
        starter = make_member("Starter Co", plan="starter")
        assert Api(starter.api_key).get("/api/v1/rooms")["X-RateLimit-Limit"] == "1000"

    def test_enterprise_is_unlimited(self, db):
        big = make_member("Big Co", plan="enterprise")
        response = Api(big.api_key).get("/api/v1/rooms")
        assert response["X-RateLimit-Limit"] == "unlimited"

    def test_new_window_resets_the_count(self, owner):
        from conferences.api.auth import consume_request

        now = time.time()
        for _ in range(100):
            consume_request(owner.tenant, now=now)
        assert consume_request(owner.tenant, now=now)[0] is False
        allowed, state = consume_request(owner.tenant, now=now + 3600)
        assert allowed and state.remaining == 99


def test_openapi_schema_and_docs_are_served(db):
    client = Client()
    schema = client.get("/api/v1/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    spec = schema.json()
    paths = spec["paths"]
    assert "/api/v1/rooms" in paths and "post" in paths["/api/v1/rooms"]
    assert "/api/v1/rooms/{room_id}/tokens" in paths
    create = spec["components"]["schemas"]["RoomInput"]["properties"]
    assert {"name", "room_type", "host_controls", "whitelist_emails"} <= set(create)
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "X-API-Key"
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_a_crash_under_the_api_answers_500_with_the_envelope(db):
    from django.test import RequestFactory

    from conferences.middleware import ApiExceptionMiddleware, RequestIDMiddleware

    def crashing_view(request):
        raise RuntimeError("boom: secret internals")

    request = RequestFactory().get("/api/v1/rooms")
    middleware = RequestIDMiddleware(lambda r: ApiExceptionMiddleware(crashing_view)(r))
    try:
        middleware(request)
    except RuntimeError as exc:
        response = ApiExceptionMiddleware(crashing_view).process_exception(request, exc)
    assert response.status_code == 500
    import json

    body = json.loads(response.content)
    assert body["error"]["code"] == "INTERNAL_ERROR"
    assert body["error"]["request_id"] == request.request_id
    assert b"boom" not in response.content and b"Traceback" not in response.content


@pytest.mark.parametrize(
    "path",
    ["/api/v1/rooms/abc%00def", "/api/v1/rooms/abc%00def/tokens", "/api/rooms/my%00show"],
)
def test_nul_bytes_in_paths_are_404_not_500(api, path):
    response = api.get(path) if "tokens" not in path else api.post(path, {"name": "x"})
    assert response.status_code in (404, 405), response.content


def test_nul_byte_in_the_api_key_is_401(db):
    response = Client().get(
        "/api/v1/rooms", headers={"X-API-Key": "pk_0123456789a\x00_" + "x" * 40}
    )
    assert_error(response, 401, "UNAUTHORIZED")


def test_deeply_nested_json_is_400(api):
    raw = "[" * 100_000 + "]" * 100_000
    assert_error(api.request("POST", "/api/v1/rooms", raw=raw), 400, "INVALID_JSON")
