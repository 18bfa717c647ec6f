"""The webinar stage through the v1 API: what LiveKit is asked to do, exactly."""

from __future__ import annotations

import json

import pytest
from livekit.protocol import models as proto_models

from conferences.models import Participant
from tests.conftest import Api, assert_error

# Real commits, so on-commit data messages and events are sent as in production.
pytestmark = pytest.mark.django_db(transaction=True)

CAMERA = proto_models.TrackSource.CAMERA
MICROPHONE = proto_models.TrackSource.MICROPHONE
SCREEN = proto_models.TrackSource.SCREEN_SHARE
SCREEN_AUDIO = proto_models.TrackSource.SCREEN_SHARE_AUDIO


@pytest.fixture
def webinar(api, livekit):
    room = api.post(
        "/api/v1/rooms", {"name": "Town hall", "allow_webinar_mode": True, "max_speakers": 2}
    ).json()
    assert room["allow_webinar_mode"] is True and room["max_speakers"] == 2
    return room


def join(api, livekit, room, identity, name=None, role=None):
    """Mint a token through the API and connect it to the double (a real join)."""
    body = {"name": name or identity.title(), "identity": identity}
    if role:
        body["role"] = role
    response = api.post(f"/api/v1/rooms/{room['room_id']}/tokens", body)
    assert response.status_code == 200, response.content
    livekit.join(response.json()["token"], room=room["room_id"])
    return response.json()


def p(room, identity):
    return f"/api/v1/rooms/{room['room_id']}/participants/{identity}"


def test_webinar_guests_join_as_viewers_with_subscribe_and_data(api, livekit, webinar):
    token = join(api, livekit, webinar, "ann")
    assert token["role"] == "viewer"
    video = livekit.verify_join_token(token["token"])["video"]
    assert video["canSubscribe"] is True and video["canPublish"] is False
    assert video["canPublishData"] is True and not video.get("canPublishSources")
    assert livekit.get_participant(webinar["room_id"], "ann").permission.can_publish is False


def test_raise_hand_queue_and_attributes(api, livekit, webinar):
    for who in ("ann", "bob", "cat"):
        join(api, livekit, webinar, who)
    for who in ("bob", "ann"):
        response = api.post(p(webinar, who) + "/hand", {"raised": True})
        assert response.status_code == 200 and response.json()["hand_raised"] is True
    hands = api.get(f"/api/v1/rooms/{webinar['room_id']}/participants/hands").json()["hands"]
    assert [(h["identity"], h["position"]) for h in hands] == [("bob", 1), ("ann", 2)]
    assert all(h["waiting_seconds"] >= 0 for h in hands)
    [update, _] = livekit.calls_to("UpdateParticipant")
    assert update.request.identity == "bob"
    assert dict(update.request.attributes) == {"role": "viewer", "hand": "raised"}
    assert not update.request.HasField("permission")  # a hand never touches permissions
    assert livekit.get_participant(webinar["room_id"], "bob").attributes["hand"] == "raised"
    data = [json.loads(d.payload) for d in livekit.sent_data]
    assert [(d["type"], d["senderId"]) for d in data] == [
        ("hand_raise", "bob"),
        ("hand_raise", "ann"),
    ]
    # Lowering deletes the attribute (empty value) and the queue shrinks.
    api.post(p(webinar, "bob") + "/hand", {"raised": False})
    assert "hand" not in livekit.get_participant(webinar["room_id"], "bob").attributes
    assert [
        h["identity"]
        for h in api.get(f"/api/v1/rooms/{webinar['room_id']}/participants/hands").json()["hands"]
    ] == ["ann"]
    lowered = api.post(f"/api/v1/rooms/{webinar['room_id']}/participants/hands/lower-all")
    assert lowered.json() == {"lowered": 1}


def test_promote_with_camera_sends_the_whole_permission_set(api, livekit, webinar):
    join(api, livekit, webinar, "ann")
    api.post(p(webinar, "ann") + "/hand", {"raised": True})
    livekit.calls.clear()
    response = api.post(p(webinar, "ann") + "/promote")
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "speaker" and response.json()["hand_raised"] is False
    [update] = livekit.calls_to("UpdateParticipant")
    assert update.request.permission == proto_models.ParticipantPermission(
        can_subscribe=True,
        can_publish=True,
        can_publish_data=True,
        can_publish_sources=[CAMERA, MICROPHONE, SCREEN, SCREEN_AUDIO],
    )
    assert dict(update.request.attributes) == {"role": "speaker", "hand": ""}
    live = livekit.get_participant(webinar["room_id"], "ann")
    assert live.permission.can_publish and live.attributes["role"] == "speaker"
    # The identity's next token carries the stored role.
    again = join(api, livekit, webinar, "ann")
    assert again["role"] == "speaker"
    assert livekit.verify_join_token(again["token"])["video"]["canPublish"] is True


def test_promote_microphone_only(api, livekit, webinar):
    join(api, livekit, webinar, "ann")
    livekit.calls.clear()
    api.post(p(webinar, "ann") + "/promote", {"mic_only": True})
    [update] = livekit.calls_to("UpdateParticipant")
    assert update.request.permission == proto_models.ParticipantPermission(
        can_subscribe=True,
        can_publish=True,
        can_publish_data=True,
        can_publish_sources=[MICROPHONE],
    )


def test_demote_revokes_publishing_and_unpublishes(api, livekit, webinar):
    join(api, livekit, webinar, "ann")
    api.post(p(webinar, "ann") + "/promote")
    livekit.publish_track(webinar["room_id"], "ann", source=CAMERA)
    livekit.calls.clear()
    response = api.post(p(webinar, "ann") + "/demote")
    assert response.json()["role"] == "viewer"
    [update] = livekit.calls_to("UpdateParticipant")
    assert update.request.permission == proto_models.ParticipantPermission(
        can_subscribe=True, can_publish=False, can_publish_data=True
    )
    assert dict(update.request.attributes) == {"role": "viewer", "hand": ""}
    assert list(livekit.get_participant(webinar["room_id"], "ann").tracks) == []
    assert json.loads(livekit.sent_data[-1].payload)["type"] == "guest_demoted"


def test_remove_disconnects(api, livekit, webinar):
    join(api, livekit, webinar, "ann")
    response = api.delete(p(webinar, "ann"))
    assert response.status_code == 200 and response.json()["present"] is False
    [call] = livekit.calls_to("RemoveParticipant")
    assert call.request.identity == "ann" and call.request.room == webinar["room_id"]
    assert livekit.get_participant(webinar["room_id"], "ann") is None
    assert_error(api.post(p(webinar, "ann") + "/promote"), 404, "PARTICIPANT_NOT_FOUND")


def test_speaker_cap_is_409(api, livekit, webinar):
    for who in ("ann", "bob", "cat"):
        join(api, livekit, webinar, who)
    api.post(p(webinar, "ann") + "/promote")
    api.post(p(webinar, "bob") + "/promote")
    calls = len(livekit.calls_to("UpdateParticipant"))
    error = assert_error(api.post(p(webinar, "cat") + "/promote"), 409, "SPEAKER_LIMIT_REACHED")
    assert "2" in error["message"]
    assert len(livekit.calls_to("UpdateParticipant")) == calls
    assert Participant.objects.get(identity="cat").role == "viewer"
    api.post(p(webinar, "ann") + "/demote")
    assert api.post(p(webinar, "cat") + "/promote").status_code == 200


def test_invite_accept_round_trip(api, livekit, webinar):
    join(api, livekit, webinar, "ann")
    response = api.post(p(webinar, "ann") + "/invite")
    assert response.json()["invited"] is True
    invite = livekit.sent_data[-1]
    assert invite.destination_identities == ["ann"]
    assert json.loads(invite.payload)["type"] == "guest_invite"
    assert livekit.calls_to("UpdateParticipant") == []  # nothing changes before accepting
    accepted = api.post(p(webinar, "ann") + "/invite/accept")
    assert accepted.json()["role"] == "speaker" and accepted.json()["invited"] is False
    [update] = livekit.calls_to("UpdateParticipant")
    assert update.request.permission.can_publish is True
    types = [json.loads(d.payload)["type"] for d in livekit.sent_data]
    assert types[-2:] == ["guest_invite_response", "guest_promoted"]


def test_invite_decline_tells_the_host(api, livekit, webinar):
    join(api, livekit, webinar, "ann")
    api.post(p(webinar, "ann") + "/invite", {"mic_only": True})
    declined = api.post(p(webinar, "ann") + "/invite/decline")
    assert declined.json()["role"] == "viewer" and declined.json()["invited"] is False
    response = json.loads(livekit.sent_data[-1].payload)
    assert response["type"] == "guest_invite_response" and response["accepted"] is False
    assert livekit.calls_to("UpdateParticipant") == []
    assert_error(api.post(p(webinar, "ann") + "/invite/accept"), 409, "NO_INVITATION")


def test_owner_cannot_be_demoted_and_hosts_do_not_raise_hands(api, livekit, webinar):
    join(api, livekit, webinar, "olga", role="owner")
    assert_error(api.post(p(webinar, "olga") + "/demote"), 409, "CANNOT_DEMOTE_OWNER")
    assert_error(api.post(p(webinar, "olga") + "/hand", {"raised": True}), 409, "ALREADY_ON_STAGE")


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/hand", {}, "raised"),
        ("/hand", {"raised": "yes"}, "raised"),
        ("/promote", {"mic_only": 1}, "mic_only"),
        ("/invite", {"colour": 1}, "colour"),
    ],
)
def test_bad_stage_input(api, livekit, webinar, path, body, field):
    join(api, livekit, webinar, "ann")
    assert_error(api.post(p(webinar, "ann") + path, body), 400, "INVALID_PARAMETER", field)


def test_livekit_down_rolls_the_promotion_back(api, livekit, webinar):
    join(api, livekit, webinar, "ann")
    livekit.down()
    assert_error(api.post(p(webinar, "ann") + "/promote"), 503, "LIVEKIT_UNAVAILABLE")
    assert Participant.objects.get(identity="ann").role == "viewer"


@pytest.mark.parametrize(
    "method, suffix, body",
    [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/hand", {"raised": True}),
        ("POST", "/invite", None),
        ("POST", "/invite/accept", None),
        ("POST", "/invite/decline", None),
        ("POST", "/promote", None),
        ("POST", "/demote", None),
    ],
)
def test_outsiders_get_404(api, livekit, webinar, outsider, method, suffix, body):
    join(api, livekit, webinar, "ann")
    calls = len(livekit.calls)
    response = Api(outsider.api_key).request(method, p(webinar, "ann") + suffix, body)
    assert_error(response, 404, "NOT_FOUND")
    assert len(livekit.calls) == calls
    stranger = Api(outsider.api_key)
    assert_error(stranger.get(f"/api/v1/rooms/{webinar['room_id']}/participants/hands"), 404)
