"""Bad input on every endpoint of the join experience: a clear JSON error or page, never a
500 or a traceback, and user strings escaped wherever they are shown."""

from __future__ import annotations

import pytest
from django.test import Client

from conferences.services import rooms as room_services
from tests.conftest import assert_error
from tests.join_helpers import Browser, make_room

ENDPOINTS = ["password", "email", "code", "join"]


@pytest.fixture
def rooms(owner, livekit):
    return {
        "password": make_room(owner, access_type="password", password="hunter22"),
        "email": make_room(owner, access_type="whitelist", whitelist_emails=["a@example.com"]),
        "code": make_room(owner, access_type="whitelist", whitelist_emails=["a@example.com"]),
        "join": make_room(owner),
    }


@pytest.mark.parametrize("action", ENDPOINTS)
@pytest.mark.parametrize(
    "raw, content_type, status, code",
    [
        (b"{not json", "application/json", 400, "INVALID_JSON"),
        (b"[1, 2]", "application/json", 400, "INVALID_JSON"),
        (b'"text"', "application/json", 400, "INVALID_JSON"),
        (b"\xff\xfe", "application/json", 400, "INVALID_JSON"),
        (b"[" * 15000, "application/json", 400, "INVALID_JSON"),
        (b"name=x", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"name": "' + b"x" * 20000 + b'"}', "application/json", 413, "PAYLOAD_TOO_LARGE"),
    ],
)
def test_malformed_bodies(rooms, action, raw, content_type, status, code):
    response = Browser(rooms[action]).post(action, raw=raw, content_type=content_type)
    assert_error(response, status, code)


@pytest.mark.parametrize("action", ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"password": {"$ne": 1}, "email": {"a": 1}, "code": [1], "name": ["x"]},
        {"password": "x" * 3000, "email": "x" * 3000, "code": "1" * 3000, "name": "x" * 3000},
        {"password": "\x00", "email": "\x00@x.y", "code": "\x00", "name": "\x00"},
    ],
)
def test_wrong_types_and_sizes_are_400s(rooms, action, body):
    response = Browser(rooms[action]).post(action, body)
    assert response.status_code in (400, 403), response.content
    assert_error(response, response.status_code)


@pytest.mark.parametrize("action", ENDPOINTS + ["lobby/we_x/leave", "state"])
def test_unknown_room_is_a_json_404(db, action):
    client = Client()
    method = client.get if action == "state" else client.post
    kwargs = {} if action == "state" else {"data": "{}", "content_type": "application/json"}
    assert_error(method(f"/room/nosuchroom99/{action}", **kwargs), 404, "NOT_FOUND")


@pytest.mark.parametrize("action", ENDPOINTS)
def test_wrong_method_is_405(rooms, action):
    response = Client().get(f"/room/{rooms[action].room_id}/{action}")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "POST"


def test_state_is_get_only(rooms):
    response = Client().post(f"/room/{rooms['join'].room_id}/state")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(
    "path",
    [
        "/room/" + "x" * 300,
        "/room/%3Cscript%3E",
        "/room/abc/host/" + "y" * 300,
        "/room/abc%00def",
        "/room/%F0%9F%98%80",
    ],
)
def test_odd_room_paths_are_404_pages(db, path):
    response = Client().get(path)
    assert response.status_code == 404
    assert b"<script>" not in response.content and b"Traceback" not in response.content


@pytest.mark.parametrize(
    "path",
    [
        "host/participants/%3Cscript%3E/remove",
        "host/participants/" + "z" * 300 + "/remove",
        "host/waiting/%00/admit",
        "host/waiting/" + "w" * 300 + "/reject",
    ],
)
def test_odd_host_paths_are_404s(owner, livekit, path):
    room = make_room(owner)
    room_services.start_room(room=room)
    response = Client().post(
        f"/api/v1/rooms/{room.room_id}/{path}", headers={"X-Host-Secret": room.host_secret}
    )
    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "pk_abc\x00defghijk_" + "x" * 40},
        {"X-Host-Secret": "bad\x00secret"},
        {"X-API-Key": "pk_" + "é" * 50},
    ],
)
def test_odd_credentials_are_401_or_404(owner, livekit, headers):
    room = make_room(owner)
    response = Client().post(f"/api/v1/rooms/{room.room_id}/host/mute-all", headers=headers)
    assert response.status_code in (401, 404), response.content
    assert_error(response, response.status_code)


def test_host_endpoints_ignore_bodies(owner, livekit):
    room = make_room(owner)
    for body, content_type in (("{bad", "application/json"), ("<xml/>", "text/xml")):
        response = Client().post(
            f"/api/v1/rooms/{room.room_id}/host/mute-all",
            data=body,
            content_type=content_type,
            headers={"X-Host-Secret": room.host_secret},
        )
        assert response.status_code == 200, response.content


def test_names_shown_to_hosts_are_escaped_in_json_and_pages(owner, livekit):
    room = make_room(owner, waiting_room_enabled=True)
    name = 'Robert\'); DROP TABLE "rooms"; -- & co'
    assert Browser(room).join(name).status_code == 202
    response = Client().get(
        f"/api/v1/rooms/{room.room_id}/host/waiting", headers={"X-Host-Secret": room.host_secret}
    )
    assert response.json()["entries"][0]["name"] == name
