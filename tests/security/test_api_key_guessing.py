"""Item 8 as an attacker tries it: a stream of wrong API keys from one address. After
AUTH_FAILURES_ALLOWED failures every surface answers 429 in its own error shape, for any
key (a good one too, or guessing would go on unslowed), until the window ends; another
address is not affected."""

from __future__ import annotations

import pytest
from django.test import Client

from conferences.api import auth

ATTACKER, BYSTANDER = "192.0.2.66", "198.51.100.67"


def _v1(client: Client, key: str):
    return client.get("/api/v1/rooms", headers={"X-API-Key": key})


def _callaba(client: Client, key: str):
    return client.post(
        "/api/conferences/getCount", "{}", content_type="application/json",
        headers={"x-access-token": key},
    )  # fmt: skip


def _videosdk(client: Client, key: str):
    return client.get("/v2/rooms", headers={"Authorization": key})


def _show(client: Client, key: str):
    return client.get("/api/rooms", headers={"X-API-Key": key})


def _v1_shape(body):
    assert (
        body["error"]["code"] == "TOO_MANY_FAILED_AUTHENTICATIONS" and body["error"]["request_id"]
    )


def _callaba_shape(body):
    assert body["success"] is False and "failed authentications" in body["message"]


def _videosdk_shape(body):
    assert body["statusCode"] == 429 and body["error"] == "Too Many Requests"


def _show_shape(body):
    assert "failed authentications" in body["error"]


SURFACES = [
    (_v1, _v1_shape),
    (_callaba, _callaba_shape),
    (_videosdk, _videosdk_shape),
    (_show, _show_shape),
]


@pytest.mark.parametrize("call, shape", SURFACES, ids=["v1", "callaba", "videosdk", "show"])
def test_wrong_keys_are_throttled_per_address(owner, call, shape):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for n in range(auth.AUTH_FAILURES_ALLOWED):
        wrong = call(attacker, f"pk_000000000000_{n:043d}")
        assert wrong.status_code == 401, (n, wrong.content)
    throttled = call(attacker, "pk_000000000000_" + "x" * 43)
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= auth.AUTH_FAILURE_WINDOW
    shape(throttled.json())
    # Even the right key waits: a guess that hits would otherwise be told so at once.
    assert call(attacker, owner.api_key).status_code == 429
    # Another address is not affected.
    assert call(Client(REMOTE_ADDR=BYSTANDER), owner.api_key).status_code == 200


def test_failures_on_one_surface_count_on_all(owner):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for n in range(auth.AUTH_FAILURES_ALLOWED):
        (_v1, _videosdk)[n % 2](attacker, f"pk_000000000000_{n:043d}")
    assert _callaba(attacker, owner.api_key).status_code == 429


def test_good_keys_are_never_counted(owner):
    client = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(auth.AUTH_FAILURES_ALLOWED + 5):
        assert _v1(client, owner.api_key).status_code == 200
