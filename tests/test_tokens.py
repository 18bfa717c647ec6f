"""POST /api/v1/rooms/{room_id}/tokens: grants from role and room policy, as LiveKit checks."""

from __future__ import annotations

import datetime as dt

import pytest

from conferences.models import Room
from tests.conftest import assert_error
from tests.livekit_double import JoinTokenError


def make_room(api, **settings):
    response = api.post("/api/v1/rooms", {"name": "Token room", **settings})
    assert response.status_code == 201, response.content
    return response.json()


def mint(api, room, **body):
    return api.post(f"/api/v1/rooms/{room['room_id']}/tokens", {"name": "Ann", **body})


def test_token_response_and_claims(api, livekit):
    room = make_room(api)
    response = mint(api, room, identity="ann-1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= {"token", "ws_url", "room_name", "identity", "role", "expires_at"}
    assert body["room_name"] == room["room_id"] and body["identity"] == "ann-1"
    assert body["role"] == "participant" and body["ws_url"] == livekit.ws_url
    claims = livekit.verify_join_token(body["token"], room=room["room_id"])
    assert claims["sub"] == "ann-1" and claims["name"] == "Ann"
    assert claims["attributes"] == {"role": "participant"}
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert claims["exp"] == pytest.approx(expires.timestamp(), abs=2)
    lifetime = claims["exp"] - claims["nbf"]
    assert 0 < lifetime <= 15 * 60  # short-lived


def test_first_token_makes_the_room_live(api, livekit):
    room = make_room(api, max_participants=4)
    mint(api, room)
    mint(api, room)
    [create] = livekit.calls_to("CreateRoom")
    assert create.request.name == room["room_id"] and create.request.max_participants == 4
    assert Room.objects.get(room_id=room["room_id"]).live_since is not None


def test_identity_is_generated_when_absent(api, livekit):
    room = make_room(api)
    a, b = mint(api, room).json(), mint(api, room).json()
    assert a["identity"] != b["identity"] and a["identity"].startswith("participant-")


def _video(api, livekit, room, role):
    body = mint(api, room, role=role).json()
    return livekit.verify_join_token(body["token"], room=room["room_id"])["video"]


@pytest.mark.parametrize(
    "media_type, screen, expected",
    [
        ("audio", False, ["microphone"]),
        ("video", False, ["camera"]),
        ("both", False, ["camera", "microphone"]),
        ("both", True, ["camera", "microphone", "screen_share", "screen_share_audio"]),
        ("video", True, ["camera", "screen_share"]),
        # Voice only (reference: "audio (voice only)"): the stored switch has no effect.
        ("audio", True, ["microphone"]),
    ],
)
def test_publish_sources_follow_media_type_and_screen_sharing(
    api, livekit, media_type, screen, expected
):
    room = make_room(api, media_type=media_type, screen_sharing_enabled=screen)
    video = _video(api, livekit, room, "participant")
    assert video["canPublish"] is True
    assert sorted(video["canPublishSources"]) == sorted(expected)


@pytest.mark.parametrize("chat", [True, False])
def test_data_follows_chat(api, livekit, chat):
    room = make_room(api, chat_enabled=chat)
    assert _video(api, livekit, room, "participant")["canPublishData"] is chat


@pytest.mark.parametrize("chat", [True, False])
@pytest.mark.parametrize("role", ["owner", "host", "speaker", "participant", "viewer"])
def test_webinar_data_follows_the_chat_switch_for_every_role(api, livekit, chat, role):
    """Item 6 of issue 17: a webinar's audience could send data with chat off. Hands go
    through Parley's server, so no role needs data messages when chat is off."""
    room = make_room(api, allow_webinar_mode=True, chat_enabled=chat)
    assert _video(api, livekit, room, role)["canPublishData"] is chat


def test_audio_room_keeps_the_stored_screen_switch_but_never_grants_it(api, livekit):
    room = make_room(api, media_type="audio", screen_sharing_enabled=True)
    assert room["screen_sharing_enabled"] is True  # stored as sent
    for role in ("owner", "host", "speaker", "participant"):
        assert _video(api, livekit, room, role)["canPublishSources"] == ["microphone"]


def test_viewer_subscribes_only(api, livekit):
    room = make_room(api)
    video = _video(api, livekit, room, "viewer")
    assert video["roomJoin"] is True and video["room"] == room["room_id"]
    assert video["canSubscribe"] is True
    assert video["canPublish"] is False
    assert video["canPublishData"] is False
    assert not video.get("canPublishSources")


@pytest.mark.parametrize("role", ["owner", "host", "speaker", "participant", "viewer"])
def test_no_role_gets_admin_grants(api, livekit, role):
    room = make_room(api)
    video = _video(api, livekit, room, role)
    for grant in ("roomAdmin", "roomCreate", "roomList", "roomRecord", "canUpdateOwnMetadata"):
        assert not video.get(grant), (role, grant)
    body = mint(api, room, role=role).json()
    assert livekit.verify_join_token(body["token"])["attributes"] == {"role": role}


def test_the_double_rejects_a_token_for_another_room(api, livekit):
    room = make_room(api)
    body = mint(api, room).json()
    with pytest.raises(JoinTokenError):
        livekit.verify_join_token(body["token"], room="another-room")


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "Ann", "role": "emperor"}, "role"),
        ({"name": "Ann", "identity": "has spaces"}, "identity"),
        ({"name": "Ann", "identity": 12}, "identity"),
        ({"name": "Ann", "ttl": 99999}, "ttl"),
    ],
)
def test_bad_token_requests(api, livekit, body, field):
    room = make_room(api)
    response = api.post(f"/api/v1/rooms/{room['room_id']}/tokens", body)
    assert_error(response, 400, "INVALID_PARAMETER", field)
    assert livekit.calls == []


def test_no_token_for_a_scheduled_room_before_it_starts(api, livekit):
    room = make_room(api, room_type="scheduled", start_time="2031-01-01T10:00:00Z")
    assert_error(mint(api, room), 409, "ROOM_NOT_STARTED")


def test_no_token_for_an_ended_room(api, livekit):
    room = make_room(api)
    api.post(f"/api/v1/rooms/{room['room_id']}/start")
    api.post(f"/api/v1/rooms/{room['room_id']}/stop")
    assert_error(mint(api, room), 409, "ROOM_ENDED")


def test_livekit_down_on_first_token_is_503(api, livekit):
    room = make_room(api)
    livekit.down()
    assert_error(mint(api, room), 503, "LIVEKIT_UNAVAILABLE")
    assert Room.objects.get(room_id=room["room_id"]).live_since is None
