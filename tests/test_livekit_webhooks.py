"""LiveKit webhooks, signed by the double as livekit-server signs them, posted over HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from conferences.models import Participant, Room, RoomSession


@pytest.fixture
def live_room(api, livekit):
    room = api.post("/api/v1/rooms", {"name": "Hooked", "allow_webinar_mode": True}).json()
    token = api.post(
        f"/api/v1/rooms/{room['room_id']}/tokens", {"name": "Ann", "identity": "ann"}
    ).json()
    livekit.join(token["token"])
    return room


def test_participant_left_then_joined(live_server, api, live_room, livekit):
    url = f"{live_server.url}/livekit/webhook"
    room_id = live_room["room_id"]
    api.post(f"/api/v1/rooms/{room_id}/participants/ann/hand", {"raised": True})
    livekit.remove_participant_local(room_id, "ann")
    event = livekit.make_event("participant_left", room=room_id, identity="ann")
    assert livekit.send_webhook(url, event) == 200
    ann = Participant.objects.get(identity="ann")
    assert ann.left_at is not None and ann.hand_raised_at is None
    assert api.get(f"/api/v1/rooms/{room_id}/participants/hands").json() == {"hands": []}
    # Delivered twice: still fine.
    assert livekit.send_webhook(url, event) == 200
    event = livekit.make_event("participant_joined", room=room_id, identity="ann")
    assert livekit.send_webhook(url, event) == 200
    assert Participant.objects.get(identity="ann").left_at is None


def test_room_finished_by_livekit_ends_the_session(live_server, live_room, livekit):
    url = f"{live_server.url}/livekit/webhook"
    event = livekit.make_event("room_finished", room=live_room["room_id"])
    assert livekit.send_webhook(url, event) == 200
    room = Room.objects.get(room_id=live_room["room_id"])
    assert room.live_since is None and room.status == "completed"
    assert RoomSession.objects.get(room=room).ended_at is not None
    assert livekit.calls_to("DeleteRoom") == []  # LiveKit closed it itself


@pytest.mark.parametrize(
    "headers, body",
    [
        ({}, b"{}"),
        ({"Authorization": "not-a-jwt"}, b"{}"),
    ],
)
def test_unsigned_or_forged_webhooks_are_refused(live_server, live_room, headers, body):
    request = urllib.request.Request(
        f"{live_server.url}/livekit/webhook",
        data=body,
        method="POST",
        headers={"Content-Type": "application/webhook+json", **headers},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 401
    assert Room.objects.get(room_id=live_room["room_id"]).live_since is not None


def test_a_tampered_body_is_refused(live_server, live_room, livekit):
    from livekit import api as lk

    body = b'{"event": "room_finished", "room": {"name": "%s"}}' % live_room["room_id"].encode()
    token = (
        lk.AccessToken(livekit.api_key, livekit.api_secret)
        .with_sha256("AAAA" + "A" * 40)  # not the body's hash
        .to_jwt()
    )
    request = urllib.request.Request(
        f"{live_server.url}/livekit/webhook",
        data=body,
        method="POST",
        headers={"Content-Type": "application/webhook+json", "Authorization": token},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 401
