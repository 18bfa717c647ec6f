"""The Interactive Show compatible API (reference/interactive-show-api.txt), as documented."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from conferences.models import Participant, Room
from tests.conftest import Api

pytestmark = pytest.mark.django_db(transaction=True)


def error(response, status: int, message: str) -> None:
    assert response.status_code == status, (response.status_code, response.content)
    assert response.json() == {"error": message}


@pytest.fixture
def show(api, livekit):
    """A show with a host (connected) and two viewers (connected)."""
    host = api.post(
        "/api/rooms/join", {"roomName": "my-show", "participantName": "host-456", "role": "host"}
    )
    assert host.status_code == 200, host.content
    for name in ("viewer-123", "viewer-789"):
        viewer = api.post(
            "/api/rooms/join", {"roomName": "my-show", "participantName": name, "role": "viewer"}
        )
        livekit.join(viewer.json()["token"])
    livekit.join(host.json()["token"])
    return Room.objects.get(name="my-show")


def test_join_as_host_returns_a_host_token(api, livekit):
    response = api.post(
        "/api/rooms/join", {"roomName": "my-show", "participantName": "john-doe", "role": "host"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "wsUrl", "roomName", "role"}
    assert body["roomName"] == "my-show" and body["role"] == "host"
    assert body["wsUrl"] == livekit.ws_url
    room = Room.objects.get(name="my-show")
    claims = livekit.verify_join_token(body["token"], room=room.room_id)
    assert claims["sub"] == "john-doe" and claims["video"]["canPublish"] is True
    assert json.loads(claims["metadata"]) == {"role": "host", "displayName": "john-doe"}


def test_viewer_token_subscribes_only(api, livekit):
    body = api.post(
        "/api/rooms/join", {"roomName": "my-show", "participantName": "v1", "role": "viewer"}
    ).json()
    video = livekit.verify_join_token(body["token"])["video"]
    assert video["canPublish"] is False and video["canSubscribe"] is True


def test_second_host_is_409(api, show):
    response = api.post(
        "/api/rooms/join", {"roomName": "my-show", "participantName": "other", "role": "host"}
    )
    error(response, 409, "Room already has a host")
    # The host itself may rejoin.
    again = api.post(
        "/api/rooms/join", {"roomName": "my-show", "participantName": "host-456", "role": "host"}
    )
    assert again.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"roomName": "my-show"},
        {"participantName": "x"},
        {"roomName": "", "participantName": "x"},
        {"roomName": 5, "participantName": "x"},
    ],
)
def test_join_missing_fields_is_400(api, body):
    error(api.post("/api/rooms/join", body), 400, "roomName and participantName are required")


def test_list_rooms(api, show, livekit):
    body = api.get("/api/rooms").json()
    [room] = body["rooms"]
    assert room["name"] == "my-show" and room["sid"].startswith("RM_")
    assert room["numParticipants"] == 3 and room["creationTime"].isdigit()


def test_get_room(api, show):
    body = api.get("/api/rooms/my-show").json()
    assert body["room"]["name"] == "my-show" and body["room"]["hasHost"] is True
    assert body["room"]["hasGuest"] is False and body["room"]["numParticipants"] == 3
    error(api.get("/api/rooms/nope"), 404, "Room not found")


def test_delete_room(api, show, livekit):
    assert api.delete("/api/rooms/my-show").json() == {"success": True}
    assert livekit.get_room(show.room_id) is None
    error(api.get("/api/rooms/my-show"), 404, "Room not found")


def test_participants_list_and_remove(api, show, livekit):
    people = api.get("/api/rooms/my-show/participants").json()["participants"]
    assert {p["identity"] for p in people} == {"host-456", "viewer-123", "viewer-789"}
    viewer = next(p for p in people if p["identity"] == "viewer-123")
    assert set(viewer) == {"sid", "identity", "name", "metadata", "joinedAt"}
    assert json.loads(viewer["metadata"]) == {"role": "viewer", "displayName": "viewer-123"}
    assert api.delete("/api/rooms/my-show/participants/viewer-123").json() == {"success": True}
    assert livekit.get_participant(show.room_id, "viewer-123") is None
    error(api.delete("/api/rooms/my-show/participants/ghost"), 404, "Participant not found")


def test_invite_promotes_live_and_returns_a_guest_token(api, show, livekit):
    response = api.post(
        "/api/rooms/my-show/invite", {"viewerIdentity": "viewer-123", "hostIdentity": "host-456"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True and body["message"] == "viewer-123 has been promoted to guest"
    assert body["wsUrl"] == livekit.ws_url
    assert livekit.verify_join_token(body["token"])["video"]["canPublish"] is True
    [update] = livekit.calls_to("UpdateParticipant")
    assert update.request.identity == "viewer-123" and update.request.permission.can_publish
    assert livekit.get_participant(show.room_id, "viewer-123").attributes["role"] == "speaker"
    assert "guest_promoted" in [json.loads(d.payload)["type"] for d in livekit.sent_data]
    assert api.get("/api/rooms/my-show").json()["room"]["hasGuest"] is True


def test_invite_errors(api, show):
    error(
        api.post("/api/rooms/my-show/invite", {"viewerIdentity": "viewer-123"}),
        400,
        "viewerIdentity and hostIdentity are required",
    )
    error(
        api.post(
            "/api/rooms/my-show/invite",
            {"viewerIdentity": "viewer-123", "hostIdentity": "viewer-789"},
        ),
        403,
        "Only the host can promote viewers to guest",
    )
    api.post(
        "/api/rooms/my-show/invite", {"viewerIdentity": "viewer-123", "hostIdentity": "host-456"}
    )
    error(
        api.post(
            "/api/rooms/my-show/invite",
            {"viewerIdentity": "viewer-789", "hostIdentity": "host-456"},
        ),
        403,
        "Room already has a guest",
    )
    error(
        api.post("/api/rooms/nope/invite", {"viewerIdentity": "a", "hostIdentity": "b"}),
        404,
        "Room not found",
    )


def test_demote_and_remove_guest(api, show, livekit):
    api.post(
        "/api/rooms/my-show/invite", {"viewerIdentity": "viewer-123", "hostIdentity": "host-456"}
    )
    demoted = api.post(
        "/api/rooms/my-show/demote", {"guestIdentity": "viewer-123", "hostIdentity": "host-456"}
    ).json()
    assert demoted["success"] is True
    assert demoted["message"] == "viewer-123 has been demoted to viewer"
    assert livekit.verify_join_token(demoted["token"])["video"]["canPublish"] is False
    assert livekit.get_participant(show.room_id, "viewer-123").permission.can_publish is False
    assert "guest_demoted" in [json.loads(d.payload)["type"] for d in livekit.sent_data]
    removed = api.post(
        "/api/rooms/my-show/remove-guest",
        {"guestIdentity": "viewer-123", "hostIdentity": "host-456"},
    ).json()
    assert removed == {"success": True, "message": "viewer-123 has been removed from the room"}
    assert livekit.get_participant(show.room_id, "viewer-123") is None
    error(
        api.post("/api/rooms/my-show/demote", {"guestIdentity": "x"}),
        400,
        "guestIdentity and hostIdentity are required",
    )
    error(
        api.post(
            "/api/rooms/my-show/remove-guest",
            {"guestIdentity": "viewer-789", "hostIdentity": "viewer-789"},
        ),
        403,
        "Only the host can remove guests",
    )


def test_hand_raise(api, show, livekit):
    response = api.post(
        "/api/rooms/my-show/hand-raise", {"participantIdentity": "viewer-123", "raised": True}
    )
    assert response.json() == {"success": True, "handRaised": True}
    assert Participant.objects.get(identity="viewer-123").hand_raised_at is not None
    message = json.loads(livekit.sent_data[-1].payload)
    assert message["type"] == "hand_raise" and message["senderId"] == "viewer-123"
    assert isinstance(message["timestamp"], int)
    lowered = api.post(
        "/api/rooms/my-show/hand-raise", {"participantIdentity": "viewer-123", "raised": False}
    )
    assert lowered.json() == {"success": True, "handRaised": False}
    assert json.loads(livekit.sent_data[-1].payload)["type"] == "hand_lower"
    error(
        api.post("/api/rooms/my-show/hand-raise", {"participantIdentity": "viewer-123"}),
        400,
        "participantIdentity and raised are required",
    )


def test_health_is_public(db):
    body = Client().get("/health").json()
    assert body["status"] == "ok" and body["timestamp"].endswith("Z")


def test_tenant_scoping_and_auth(api, show, outsider):
    stranger = Api(outsider.api_key)
    error(stranger.get("/api/rooms/my-show"), 404, "Room not found")
    assert stranger.get("/api/rooms").json() == {"rooms": []}
    error(
        stranger.post(
            "/api/rooms/my-show/hand-raise", {"participantIdentity": "viewer-123", "raised": True}
        ),
        404,
        "Room not found",
    )
    error(Api("").get("/api/rooms"), 401, "Missing or invalid API key")
    error(
        api.request("POST", "/api/rooms/join", raw="{oops"), 400, "Request body is not valid JSON"
    )
    error(api.get("/api/rooms/my-show/unknown/path"), 404, "Not found")
