"""Get, update, delete, start, stop and participants: what Parley stores and asks LiveKit."""

from __future__ import annotations

import json

import pytest

from conferences.models import Room, RoomSession
from tests.conftest import assert_error


@pytest.fixture
def room(api):
    response = api.post("/api/v1/rooms", {"name": "Weekly sync", "max_participants": 8})
    assert response.status_code == 201
    return response.json()


def test_get_returns_the_room(api, room):
    response = api.get(f"/api/v1/rooms/{room['room_id']}")
    assert response.status_code == 200
    assert response.json() == room


def test_unknown_room_is_404(api):
    assert_error(api.get("/api/v1/rooms/doesnotexist"), 404, "NOT_FOUND")


def test_patch_changes_only_what_is_sent(api, room):
    response = api.patch(
        f"/api/v1/rooms/{room['room_id']}",
        {"name": "Weekly sync (moved)", "video_quality": "low", "chat_enabled": False},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Weekly sync (moved)"
    assert body["video_quality"] == "low" and body["chat_enabled"] is False
    assert body["max_participants"] == 8 and body["room_id"] == room["room_id"]


def test_patch_to_password_requires_a_password_and_hashes_it(api, room):
    path = f"/api/v1/rooms/{room['room_id']}"
    assert_error(api.patch(path, {"access_type": "password"}), 400, "INVALID_PARAMETER", "password")
    response = api.patch(path, {"access_type": "password", "password": "hunter22"})
    assert response.status_code == 200
    stored = Room.objects.get(room_id=room["room_id"])
    assert stored.password_hash and "hunter22" not in stored.password_hash
    # Changing something else keeps the existing password.
    assert api.patch(path, {"name": "Still locked"}).status_code == 200
    assert Room.objects.get(room_id=room["room_id"]).password_hash == stored.password_hash
    # Going public drops the password for good.
    assert api.patch(path, {"access_type": "public"}).status_code == 200
    assert Room.objects.get(room_id=room["room_id"]).password_hash == ""


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x"}, "name"),
        ({"max_participants": 11}, "max_participants"),
        ({"room_type": "scheduled"}, "start_time"),
        ({"unknown": 1}, "unknown"),
        ({"end_time": "yesterday"}, "end_time"),
    ],
)
def test_patch_validates_like_create_and_writes_nothing(api, room, body, field):
    path = f"/api/v1/rooms/{room['room_id']}"
    assert_error(api.patch(path, body), 400, "INVALID_PARAMETER", field)
    assert api.get(path).json() == room


def test_patch_to_scheduled_waits_and_back_opens(api, room):
    path = f"/api/v1/rooms/{room['room_id']}"
    body = api.patch(path, {"room_type": "scheduled", "start_time": "2031-01-01T10:00:00Z"}).json()
    assert body["status"] == "scheduled"
    assert api.patch(path, {"room_type": "permanent"}).json()["status"] == "active"


def test_delete_removes_the_room(api, room, livekit):
    path = f"/api/v1/rooms/{room['room_id']}"
    response = api.delete(path)
    assert response.status_code == 200
    assert response.json() == {"deleted": True, "room_id": room["room_id"]}
    assert_error(api.get(path), 404)
    assert livekit.calls == []  # the room never went live, so LiveKit was not involved


def test_start_creates_the_livekit_room_with_our_settings(api, room, livekit):
    response = api.post(f"/api/v1/rooms/{room['room_id']}/start")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "active" and body["started_at"]
    [call] = livekit.calls_to("CreateRoom")
    assert call.status == 200
    assert call.request.name == room["room_id"]
    assert call.request.max_participants == 8
    assert call.request.empty_timeout > 0
    metadata = json.loads(call.request.metadata)
    assert metadata["media_type"] == "both" and metadata["chat_enabled"] is True
    assert call.claims["video"]["roomCreate"] is True
    assert livekit.get_room(room["room_id"]) is not None
    assert RoomSession.objects.filter(room__room_id=room["room_id"], ended_at=None).count() == 1
    # Starting a live room again changes nothing.
    assert api.post(f"/api/v1/rooms/{room['room_id']}/start").status_code == 200
    assert len(livekit.calls_to("CreateRoom")) == 1


def test_stop_deletes_the_livekit_room_and_completes(api, room, livekit):
    api.post(f"/api/v1/rooms/{room['room_id']}/start")
    response = api.post(f"/api/v1/rooms/{room['room_id']}/stop")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "completed" and body["ended_at"]
    [call] = livekit.calls_to("DeleteRoom")
    assert call.request.room == room["room_id"] and call.status == 200
    assert livekit.get_room(room["room_id"]) is None
    assert RoomSession.objects.get(room__room_id=room["room_id"]).ended_at is not None
    assert_error(api.post(f"/api/v1/rooms/{room['room_id']}/stop"), 409, "ROOM_ALREADY_ENDED")


def test_a_completed_room_can_be_started_again(api, room, livekit):
    api.post(f"/api/v1/rooms/{room['room_id']}/start")
    api.post(f"/api/v1/rooms/{room['room_id']}/stop")
    body = api.post(f"/api/v1/rooms/{room['room_id']}/start").json()
    assert body["status"] == "active" and body["ended_at"] is None
    assert len(livekit.calls_to("CreateRoom")) == 2
    assert RoomSession.objects.filter(room__room_id=room["room_id"]).count() == 2


def test_delete_of_a_live_room_closes_it_on_livekit(api, room, livekit):
    api.post(f"/api/v1/rooms/{room['room_id']}/start")
    assert api.delete(f"/api/v1/rooms/{room['room_id']}").status_code == 200
    assert [c.request.room for c in livekit.calls_to("DeleteRoom")] == [room["room_id"]]


def test_start_early_opens_a_scheduled_room(api, livekit):
    body = api.post(
        "/api/v1/rooms",
        {"name": "Later", "room_type": "scheduled", "start_time": "2031-01-01T10:00:00Z"},
    ).json()
    started = api.post(f"/api/v1/rooms/{body['room_id']}/start").json()
    assert started["status"] == "active"


def test_concurrent_room_limit_is_enforced_when_rooms_go_live(owner, api, livekit):
    rooms = [api.post("/api/v1/rooms", {"name": f"Room {i}"}).json() for i in range(6)]
    for room in rooms[:5]:  # the Free plan allows 5 concurrent rooms
        assert api.post(f"/api/v1/rooms/{room['room_id']}/start").status_code == 200
    error = assert_error(
        api.post(f"/api/v1/rooms/{rooms[5]['room_id']}/start"), 403, "PLAN_LIMIT_EXCEEDED"
    )
    assert "5" in error["message"]
    assert Room.objects.get(room_id=rooms[5]["room_id"]).live_since is None
    assert len(livekit.calls_to("CreateRoom")) == 5  # LiveKit never asked for the sixth
    # Stopping one frees a slot.
    api.post(f"/api/v1/rooms/{rooms[0]['room_id']}/stop")
    assert api.post(f"/api/v1/rooms/{rooms[5]['room_id']}/start").status_code == 200


def test_participants_lists_who_livekit_has(api, room, livekit):
    path = f"/api/v1/rooms/{room['room_id']}/participants"
    assert api.get(path).json() == {"participants": []}  # not live: LiveKit not asked
    assert livekit.calls == []
    api.post(f"/api/v1/rooms/{room['room_id']}/start")
    livekit.add_participant(room["room_id"], "ann", name="Ann", attributes={"role": "host"})
    body = api.get(path).json()
    [ann] = body["participants"]
    assert ann["identity"] == "ann" and ann["name"] == "Ann" and ann["role"] == "host"
    assert ann["joined_at"].endswith("Z")
    [call] = livekit.calls_to("ListParticipants")
    assert call.claims["video"]["roomAdmin"] is True
    assert call.claims["video"]["room"] == room["room_id"]


class TestLiveKitDown:
    """LiveKit unreachable: rooms are still stored; start/stop answer 503; nothing changes."""

    def test_create_list_get_patch_still_work(self, api, livekit):
        livekit.down()
        room = api.post("/api/v1/rooms", {"name": "Offline"})
        assert room.status_code == 201
        room_id = room.json()["room_id"]
        assert api.get("/api/v1/rooms").json()["total"] == 1
        assert api.patch(f"/api/v1/rooms/{room_id}", {"name": "Offline 2"}).status_code == 200

    def test_start_is_503_and_nothing_written(self, api, room, livekit):
        livekit.down()
        assert_error(api.post(f"/api/v1/rooms/{room['room_id']}/start"), 503, "LIVEKIT_UNAVAILABLE")
        stored = Room.objects.get(room_id=room["room_id"])
        assert stored.live_since is None and stored.started_at is None
        assert RoomSession.objects.count() == 0
        livekit.up()
        assert api.post(f"/api/v1/rooms/{room['room_id']}/start").status_code == 200

    def test_stop_is_503_and_the_room_stays_live(self, api, room, livekit):
        api.post(f"/api/v1/rooms/{room['room_id']}/start")
        livekit.down()
        assert_error(api.post(f"/api/v1/rooms/{room['room_id']}/stop"), 503, "LIVEKIT_UNAVAILABLE")
        stored = Room.objects.get(room_id=room["room_id"])
        assert stored.status == "active" and stored.live_since is not None
        assert RoomSession.objects.get().ended_at is None

    def test_delete_of_a_live_room_is_503_and_keeps_it(self, api, room, livekit):
        api.post(f"/api/v1/rooms/{room['room_id']}/start")
        livekit.down()
        assert_error(api.delete(f"/api/v1/rooms/{room['room_id']}"), 503, "LIVEKIT_UNAVAILABLE")
        assert Room.objects.filter(room_id=room["room_id"]).exists()

    def test_livekit_server_error_is_503(self, api, room, livekit):
        livekit.fail_with(status=500, code="internal", times=1)
        assert_error(api.post(f"/api/v1/rooms/{room['room_id']}/start"), 503, "LIVEKIT_UNAVAILABLE")
        assert Room.objects.get(room_id=room["room_id"]).live_since is None

    def test_participants_is_503(self, api, room, livekit):
        api.post(f"/api/v1/rooms/{room['room_id']}/start")
        livekit.down()
        path = f"/api/v1/rooms/{room['room_id']}/participants"
        assert_error(api.get(path), 503, "LIVEKIT_UNAVAILABLE")

    def test_slow_livekit_times_out_as_503(self, api, room, livekit, settings):
        settings.LIVEKIT_TIMEOUT = 0.3
        livekit.set_latency(1.0)
        assert_error(api.post(f"/api/v1/rooms/{room['room_id']}/start"), 503, "LIVEKIT_UNAVAILABLE")
        livekit.set_latency(0)
        assert Room.objects.get(room_id=room["room_id"]).live_since is None
