"""POST /api/v1/rooms: every parameter of videochatapi-v1.txt, valid and invalid."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import check_password

from conferences.models import Room
from tests.conftest import assert_error

REFERENCE_EXAMPLE = {
    "name": "Sales Team Meeting",
    "room_type": "scheduled",
    "max_participants": 50,
    "access_type": "password",
    "password": "secure123",
    "start_time": "2025-07-03T14:00:00Z",
    "end_time": "2025-07-03T15:00:00Z",
    "recording_enabled": True,
    "waiting_room_enabled": True,
    "video_quality": "hd",
    "host_controls": {"mute_all": True, "disable_video": True, "kick_participants": True},
}
EXAMPLE_RESPONSE_FIELDS = {
    "id",
    "room_id",
    "name",
    "room_type",
    "media_type",
    "max_participants",
    "access_type",
    "status",
    "start_time",
    "end_time",
    "recording_enabled",
    "screen_sharing_enabled",
    "chat_enabled",
    "waiting_room_enabled",
    "video_quality",
    "join_url",
    "host_url",
    "created_at",
}


def test_reference_example_request_creates_the_room(pro, api):
    api.key = pro.api_key  # Pro allows 50 participants per room, as the example asks
    response = api.post("/api/v1/rooms", REFERENCE_EXAMPLE)
    assert response.status_code == 201, response.content
    body = response.json()
    assert EXAMPLE_RESPONSE_FIELDS <= set(body)
    assert "password" not in body and "password_hash" not in body
    assert body["name"] == "Sales Team Meeting"
    assert body["room_type"] == "scheduled" and body["status"] == "scheduled"
    assert body["media_type"] == "both"
    assert body["max_participants"] == 50
    assert body["access_type"] == "password"
    assert body["start_time"] == "2025-07-03T14:00:00Z"
    assert body["end_time"] == "2025-07-03T15:00:00Z"
    assert body["recording_enabled"] is True and body["waiting_room_enabled"] is True
    assert body["screen_sharing_enabled"] is True and body["chat_enabled"] is True
    assert body["video_quality"] == "hd"
    assert body["host_controls"] == REFERENCE_EXAMPLE["host_controls"]
    assert isinstance(body["id"], int) and body["id"] == 1
    assert len(body["room_id"]) == 12 and body["room_id"].isalnum()
    assert body["join_url"] == f"http://testserver/room/{body['room_id']}"
    assert body["created_at"].endswith("Z")

    room = Room.objects.get(room_id=body["room_id"])
    assert room.tenant == pro.tenant
    assert room.password_hash != "secure123" and check_password("secure123", room.password_hash)


def test_host_url_carries_an_unguessable_secret(api):
    first = api.post("/api/v1/rooms", {"name": "Standup"}).json()
    second = api.post("/api/v1/rooms", {"name": "Standup"}).json()
    for body in (first, second):
        assert "host=true" not in body["host_url"]
        prefix = f"http://testserver/room/{body['room_id']}/host/"
        assert body["host_url"].startswith(prefix)
        secret = body["host_url"][len(prefix) :]
        assert len(secret) >= 22  # >= 128 bits of URL-safe base64
    assert first["host_url"].rsplit("/", 1)[1] != second["host_url"].rsplit("/", 1)[1]


def test_defaults(owner, api):
    body = api.post("/api/v1/rooms", {"name": "Defaults"}).json()
    assert body["room_type"] == "temporary"
    assert body["media_type"] == "both"
    assert body["access_type"] == "public"
    assert body["video_quality"] == "high"
    assert body["max_participants"] == 10  # the Free plan's participants per room
    assert body["status"] == "active"
    assert body["recurring"] is False and body["recording_enabled"] is False
    assert body["screen_sharing_enabled"] is True and body["chat_enabled"] is True
    assert body["waiting_room_enabled"] is False and body["audio_only_mode"] is False
    assert body["host_controls"] == {
        "mute_all": True,
        "disable_video": True,
        "kick_participants": True,
    }
    assert body["start_time"] is None and body["end_time"] is None
    assert body["custom_logo_url"] is None


def test_room_ids_and_numbers(owner, api):
    ids = [api.post("/api/v1/rooms", {"name": f"Room {i}"}).json() for i in range(3)]
    assert [b["id"] for b in ids] == [1, 2, 3]
    assert len({b["room_id"] for b in ids}) == 3


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", "abc"),
        ("name", "x" * 100),
        ("room_type", "temporary"),
        ("room_type", "permanent"),
        ("media_type", "audio"),
        ("media_type", "video"),
        ("media_type", "both"),
        ("max_participants", 2),
        ("max_participants", 10),
        ("access_type", "public"),
        ("access_type", "authenticated"),
        ("recording_enabled", True),
        ("screen_sharing_enabled", False),
        ("chat_enabled", False),
        ("waiting_room_enabled", True),
        ("video_quality", "low"),
        ("video_quality", "medium"),
        ("video_quality", "high"),
        ("video_quality", "hd"),
        ("audio_only_mode", True),
        ("host_controls", {"mute_all": False}),
        ("custom_logo_url", "https://cdn.example.com/logo.png"),
        ("custom_logo_url", "http://example.com/l.svg"),
        ("end_time", "2030-01-01T10:00:00+02:00"),
    ],
)
def test_valid_values_are_stored(api, field, value):
    response = api.post("/api/v1/rooms", {"name": "Valid room", field: value})
    assert response.status_code == 201, response.content
    body = response.json()
    if field == "host_controls":
        assert body[field] == {"mute_all": False, "disable_video": True, "kick_participants": True}
    elif field == "end_time":
        assert body[field] == "2030-01-01T08:00:00Z"
    else:
        assert body[field] == value


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": "ab"}, "name"),
        ({"name": "   ab   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 12345}, "name"),
        ({"name": None}, "name"),
        ({"name": "Room", "room_type": "forever"}, "room_type"),
        ({"name": "Room", "room_type": 1}, "room_type"),
        ({"name": "Room", "media_type": "smell"}, "media_type"),
        ({"name": "Room", "max_participants": 1}, "max_participants"),
        ({"name": "Room", "max_participants": 1001}, "max_participants"),
        ({"name": "Room", "max_participants": "5"}, "max_participants"),
        ({"name": "Room", "max_participants": 5.5}, "max_participants"),
        ({"name": "Room", "max_participants": True}, "max_participants"),
        ({"name": "Room", "access_type": "secret"}, "access_type"),
        ({"name": "Room", "access_type": "password"}, "password"),
        ({"name": "Room", "access_type": "password", "password": "abc"}, "password"),
        ({"name": "Room", "access_type": "password", "password": 1234}, "password"),
        ({"name": "Room", "password": "secure123"}, "password"),
        ({"name": "Room", "access_type": "whitelist"}, "whitelist_emails"),
        ({"name": "Room", "access_type": "whitelist", "whitelist_emails": []}, "whitelist_emails"),
        (
            {"name": "Room", "access_type": "whitelist", "whitelist_emails": ["not-an-email"]},
            "whitelist_emails",
        ),
        (
            {"name": "Room", "access_type": "whitelist", "whitelist_emails": "a@b.com"},
            "whitelist_emails",
        ),
        ({"name": "Room", "whitelist_emails": ["a@b.com"]}, "whitelist_emails"),
        ({"name": "Room", "room_type": "scheduled"}, "start_time"),
        ({"name": "Room", "start_time": "tomorrow"}, "start_time"),
        ({"name": "Room", "start_time": "2030-01-01T10:00:00"}, "start_time"),
        ({"name": "Room", "start_time": 1700000000}, "start_time"),
        (
            {
                "name": "Room",
                "start_time": "2030-01-01T10:00:00Z",
                "end_time": "2030-01-01T09:00:00Z",
            },
            "end_time",
        ),
        (
            {
                "name": "Room",
                "start_time": "2030-01-01T10:00:00Z",
                "end_time": "2030-01-01T10:00:00Z",
            },
            "end_time",
        ),
        ({"name": "Room", "recurring": "yes"}, "recurring"),
        ({"name": "Room", "recurring": True}, "start_time"),
        ({"name": "Room", "recurring": True, "room_type": "permanent"}, "room_type"),
        ({"name": "Room", "recording_enabled": 1}, "recording_enabled"),
        ({"name": "Room", "screen_sharing_enabled": "false"}, "screen_sharing_enabled"),
        ({"name": "Room", "chat_enabled": None}, "chat_enabled"),
        ({"name": "Room", "waiting_room_enabled": 0}, "waiting_room_enabled"),
        ({"name": "Room", "video_quality": "4k"}, "video_quality"),
        ({"name": "Room", "audio_only_mode": "true"}, "audio_only_mode"),
        ({"name": "Room", "host_controls": True}, "host_controls"),
        ({"name": "Room", "host_controls": {"mute_all": "yes"}}, "host_controls"),
        ({"name": "Room", "host_controls": {"launch_rockets": True}}, "host_controls"),
        ({"name": "Room", "custom_logo_url": "javascript:alert(1)"}, "custom_logo_url"),
        ({"name": "Room", "custom_logo_url": "ftp://example.com/logo.png"}, "custom_logo_url"),
        ({"name": "Room", "custom_logo_url": "not a url"}, "custom_logo_url"),
        ({"name": "Room", "custom_logo_url": 42}, "custom_logo_url"),
        ({"name": "Room", "colour": "blue"}, "colour"),
        ({"name": "Room", "id": 7}, "id"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(owner, api, body, field):
    response = api.post("/api/v1/rooms", body)
    error = assert_error(response, 400, "INVALID_PARAMETER", field)
    assert field.split(".")[0] in error["message"] or "field" in error["message"]
    assert Room.objects.count() == 0  # nothing half-written


def test_max_participants_message_matches_the_reference(api):
    response = api.post("/api/v1/rooms", {"name": "Room", "max_participants": 5000})
    error = assert_error(response, 400, "INVALID_PARAMETER", "max_participants")
    assert error["message"] == "The 'max_participants' must be between 2 and 1000"


def test_max_participants_cannot_exceed_the_plan(api):
    response = api.post("/api/v1/rooms", {"name": "Room", "max_participants": 11})
    error = assert_error(response, 400, "INVALID_PARAMETER", "max_participants")
    assert "10" in error["message"]


def test_enterprise_allows_a_thousand(db):
    from tests.conftest import Api, make_member

    big = make_member("Big Corp", plan="enterprise")
    response = Api(big.api_key).post(
        "/api/v1/rooms", {"name": "Town hall", "max_participants": 1000}
    )
    assert response.status_code == 201
    assert response.json()["max_participants"] == 1000


def test_whitelist_is_lowercased_and_deduplicated(api):
    response = api.post(
        "/api/v1/rooms",
        {
            "name": "Board",
            "access_type": "whitelist",
            "whitelist_emails": ["Ann@Example.com", "ann@example.com ", "bob@example.com"],
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["whitelist_emails"] == ["ann@example.com", "bob@example.com"]


def test_start_time_with_offset_is_stored_as_utc(api):
    response = api.post(
        "/api/v1/rooms",
        {
            "name": "Berlin call",
            "room_type": "scheduled",
            "start_time": "2030-03-01T09:00:00+01:00",
        },
    )
    assert response.status_code == 201
    assert response.json()["start_time"] == "2030-03-01T08:00:00Z"


@pytest.mark.parametrize(
    "raw",
    ['{"name": "Room",', "not json at all", '{"name": "Room"} trailing', "\xff\xfe"],
)
def test_malformed_json_is_a_400(api, raw):
    response = api.request("POST", "/api/v1/rooms", raw=raw)
    assert_error(response, 400, "INVALID_JSON")


@pytest.mark.parametrize("raw", ["[]", '"Room"', "42", "null"])
def test_body_must_be_an_object(api, raw):
    response = api.request("POST", "/api/v1/rooms", raw=raw)
    assert_error(response, 400, "INVALID_PARAMETER")


def test_form_encoded_body_is_415(api, owner):
    response = api.client.post(
        "/api/v1/rooms", {"name": "Room"}, headers={"X-API-Key": owner.api_key}
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_names_are_stored_verbatim_and_returned_as_json(api):
    name = "<script>alert('x')</script>"
    body = api.post("/api/v1/rooms", {"name": name}).json()
    assert body["name"] == name  # JSON is not HTML; pages escape it (see test_pages)
