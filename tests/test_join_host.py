"""Host controls: who may act (host secret, API key, member session; outsiders 404), what each
action asks LiveKit (asserted on the double), and the room's host_controls switches."""

from __future__ import annotations

import pytest
from django.test import Client
from livekit.protocol import models as proto

from accounts.models import Membership
from conferences.services import rooms as room_services
from tests.conftest import assert_error
from tests.join_helpers import make_room

MIC, CAM = proto.TrackSource.MICROPHONE, proto.TrackSource.CAMERA


def call(room, action: str, *, method: str = "post", client: Client | None = None, **headers):
    client = client or Client()
    return getattr(client, method)(f"/api/v1/rooms/{room.room_id}/host/{action}", headers=headers)


def secret(room) -> dict[str, str]:
    return {"X-Host-Secret": room.host_secret}


@pytest.fixture
def live_room(owner, livekit):
    """A live room with a host (mic + camera), two guests (mic + camera each, one already
    muted), and a viewer who publishes nothing."""
    room = make_room(owner)
    room_services.start_room(room=room)
    name = room.room_id
    livekit.add_participant(name, "host-1", attributes={"role": "host"})
    livekit.add_participant(name, "guest-1", attributes={"role": "participant"})
    livekit.add_participant(name, "guest-2", attributes={"role": "participant"})
    livekit.add_participant(name, "viewer-1", attributes={"role": "viewer"})
    tracks = {}
    for identity in ("host-1", "guest-1", "guest-2"):
        tracks[identity, "mic"] = livekit.publish_track(name, identity, source=MIC).sid
        tracks[identity, "cam"] = livekit.publish_track(name, identity, source=CAM).sid
    livekit.publish_track(name, "guest-2", source=MIC, muted=True)
    room.tracks = tracks
    return room


def test_mute_all_mutes_every_guest_microphone(live_room, livekit):
    response = call(live_room, "mute-all", **secret(live_room))
    assert response.status_code == 200 and response.json() == {"muted": 2}
    calls = livekit.calls_to("MutePublishedTrack")
    assert {(c.request.identity, c.request.track_sid) for c in calls} == {
        ("guest-1", live_room.tracks["guest-1", "mic"]),
        ("guest-2", live_room.tracks["guest-2", "mic"]),
    }
    assert all(c.request.muted and c.request.room == live_room.room_id for c in calls)
    # Parley's server asked with a room-admin grant for this room only.
    assert all(c.claims["video"]["roomAdmin"] for c in calls)
    assert all(c.claims["video"]["room"] == live_room.room_id for c in calls)
    host = livekit.get_participant(live_room.room_id, "host-1")
    assert not any(t.muted for t in host.tracks)


def test_disable_video_turns_off_guest_cameras(live_room, livekit):
    response = call(live_room, "disable-video", **secret(live_room))
    assert response.json() == {"muted": 2}
    calls = livekit.calls_to("MutePublishedTrack")
    assert {c.request.track_sid for c in calls} == {
        live_room.tracks["guest-1", "cam"],
        live_room.tracks["guest-2", "cam"],
    }


def test_remove_participant(live_room, livekit):
    response = call(live_room, "participants/guest-1/remove", **secret(live_room))
    assert response.json() == {"removed": "guest-1"}
    [removal] = livekit.calls_to("RemoveParticipant")
    assert removal.request.identity == "guest-1" and removal.request.room == live_room.room_id
    assert livekit.get_participant(live_room.room_id, "guest-1") is None
    gone = call(live_room, "participants/guest-1/remove", **secret(live_room))
    assert_error(gone, 404, "NOT_FOUND")


def test_end_room_for_all(live_room, livekit):
    response = call(live_room, "end", **secret(live_room))
    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert livekit.calls_to("DeleteRoom") and live_room.room_id not in livekit.room_names()
    assert_error(call(live_room, "end", **secret(live_room)), 409, "ROOM_ALREADY_ENDED")


def test_start_room_early(owner, livekit):
    import datetime as dt

    from django.utils import timezone

    room = make_room(
        owner, room_type="scheduled", start_time=timezone.now() + dt.timedelta(hours=3)
    )
    response = call(room, "start", **secret(room))
    assert response.status_code == 200 and response.json()["status"] == "active"
    assert room.room_id in livekit.room_names()


@pytest.mark.parametrize(
    "control, action",
    [
        ("mute_all", "mute-all"),
        ("disable_video", "disable-video"),
        ("kick_participants", "participants/guest-1/remove"),
    ],
)
def test_host_controls_switch_actions_off(live_room, livekit, control, action):
    room_services.update_room(room=live_room, data={"host_controls": {control: False}})
    response = call(live_room, action, **secret(live_room))
    assert_error(response, 403, "HOST_CONTROL_DISABLED")
    assert not livekit.calls_to("MutePublishedTrack") and not livekit.calls_to("RemoveParticipant")


def test_api_key_may_act_too(live_room, owner, livekit):
    response = call(live_room, "mute-all", **{"X-API-Key": owner.api_key})
    assert response.json() == {"muted": 2}
    assert response["X-RateLimit-Limit"]  # counted against the plan like any API call


def test_member_session_needs_csrf_and_viewers_cannot_act(live_room, owner, outsider, livekit):
    member = Client(enforce_csrf_checks=True)
    member.force_login(owner.user)
    member.get(f"/room/{live_room.room_id}")  # sets the CSRF cookie
    refused = call(live_room, "mute-all", client=member)
    assert refused.status_code == 403
    token = member.cookies["csrftoken"].value
    ok = call(live_room, "mute-all", client=member, **{"X-CSRFToken": token})
    assert ok.status_code == 200
    Membership.objects.create(user=outsider.user, tenant=owner.tenant, role="viewer")
    viewer = Client()
    viewer.force_login(outsider.user)
    assert call(live_room, "waiting", method="get", client=viewer).status_code == 200
    assert_error(call(live_room, "mute-all", client=viewer), 403, "FORBIDDEN")


ACTIONS = [
    ("get", "waiting"),
    ("post", "waiting/admit-all"),
    ("post", "waiting/reject-all"),
    ("post", "waiting/we_nonexistent0000001/admit"),
    ("post", "waiting/we_nonexistent0000001/reject"),
    ("post", "mute-all"),
    ("post", "disable-video"),
    ("post", "participants/guest-1/remove"),
    ("post", "start"),
    ("post", "end"),
]


@pytest.mark.parametrize("method, action", ACTIONS)
def test_outsiders_get_404_on_every_host_endpoint(live_room, outsider, livekit, method, action):
    other_member = Client()
    other_member.force_login(outsider.user)
    for kwargs in (
        {"X-API-Key": outsider.api_key},
        {"X-Host-Secret": "a-wrong-secret-of-decent-length-000"},
        {"client": other_member},
    ):
        response = call(live_room, action, method=method, **kwargs)
        assert_error(response, 404, "NOT_FOUND")
    assert not livekit.calls_to("MutePublishedTrack") and not livekit.calls_to("DeleteRoom")


@pytest.mark.parametrize("method, action", ACTIONS)
def test_no_credentials_is_401(live_room, method, action):
    assert_error(call(live_room, action, method=method), 401, "UNAUTHORIZED")


def test_unknown_room_is_404(db):
    assert_error(
        Client().post("/api/v1/rooms/nosuchroom1/host/mute-all", headers={"X-Host-Secret": "x"}),
        404,
        "NOT_FOUND",
    )


def test_livekit_down_is_503(live_room, livekit):
    livekit.down()
    assert_error(call(live_room, "mute-all", **secret(live_room)), 503, "LIVEKIT_UNAVAILABLE")


def test_room_not_live_has_no_one_to_mute(owner, livekit):
    room = make_room(owner)
    assert call(room, "mute-all", **secret(room)).json() == {"muted": 0}
    assert_error(call(room, "participants/x/remove", **secret(room)), 404, "NOT_FOUND")
    assert not livekit.calls
