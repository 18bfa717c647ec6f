"""One operation, one outcome, whatever the route (issue 9).

Every operation a host can take is reached from several interfaces: v1 (X-API-Key), the host
API (X-Host-Secret), the dashboard (a member's session), the host socket (a host page's
session) and the Interactive Show facade (X-API-Key). Each row of the table below runs one
operation through one route on the same scene and asserts the same stored outcome, the same
domain events and the same LiveKit calls (on the double, room name normalised), so the
routes cannot drift apart again. A route an interface does not offer is simply not a row:

| operation        | v1 | host API | dashboard | socket | Interactive Show |
|------------------|----|----------|-----------|--------|------------------|
| remove           | x  | x        | x         | x      | x                |
| end              | x  | x        | x         | x      | x                |
| mute all         |    | x        | x         | x      |                  |
| disable video    |    | x        | x         | x      |                  |
| invite           | x  | x        |           | x      |                  |
| promote          | x  | x        | x         | x      | x (invite)       |
| demote           | x  | x        | x         | x      | x                |
| lower all hands  | x  | x        |           | x      |                  |
| raise hand       | x  |          |           |        | x                |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from google.protobuf.json_format import MessageToDict
from livekit.protocol import models as proto

from conferences import events
from conferences.models import Participant, Room, WaitingEntry
from conferences.services import rooms as room_services
from conferences.services import stage
from tests.conftest import Api, Member
from tests.event_tap import EventTap
from tests.join_helpers import Browser
from tests.livekit_double import LiveKitDouble

pytestmark = pytest.mark.django_db(transaction=True)

MIC, CAM = proto.TrackSource.MICROPHONE, proto.TrackSource.CAMERA


@dataclass
class Scene:
    room: Room
    owner: Member
    livekit: LiveKitDouble
    host: Browser  # a browser holding the host link (its session is the room's host)

    @property
    def rid(self) -> str:
        return self.room.room_id


@pytest.fixture
def scene(owner, livekit) -> Scene:
    """A live webinar room with a waiting room: a host, a speaker (bob), two viewers (ann
    with her hand raised, cat), each connected with a token Parley issued; one guest
    waiting in the lobby; microphones and cameras published."""
    room = room_services.create_room(
        tenant=owner.tenant,
        data={"name": "Table show", "allow_webinar_mode": True, "waiting_room_enabled": True},
    )
    room_services.start_room(room=room)
    for identity, role in (("host-1", "host"), ("ann", "viewer"), ("bob", "viewer"),
                           ("cat", "viewer")):  # fmt: skip
        issued = room_services.issue_token(room=room, name=identity, identity=identity, role=role)
        livekit.join(issued.token)
    stage.promote(room=room, identity="bob")
    stage.set_hand(room=room, identity="ann", raised=True)
    for identity in ("host-1", "bob"):
        livekit.publish_track(room.livekit_name, identity, source=MIC)
        livekit.publish_track(room.livekit_name, identity, source=CAM)
    WaitingEntry.objects.create(room=room, identity="participant-w", name="Wai", role="participant")
    host = Browser(room)
    host.host_page()
    room.refresh_from_db()
    livekit.calls.clear()
    livekit.sent_data.clear()
    return Scene(room=room, owner=owner, livekit=livekit, host=host)


# --- the routes -------------------------------------------------------------------------------


def v1(scene: Scene, method: str, path: str, body: Any = None):
    return Api(scene.owner.api_key).request(method, f"/api/v1/rooms/{scene.rid}{path}", body)


def host_api(scene: Scene, path: str, body: Any = None):
    return Client().post(
        f"/api/v1/rooms/{scene.rid}/host{path}",
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        headers={"X-Host-Secret": scene.room.host_secret},
    )


def dashboard(scene: Scene, path: str, data: dict[str, str] | None = None):
    client = Client()
    client.force_login(scene.owner.user)
    return client.post(f"/dashboard/rooms/{scene.rid}{path}", {"confirm": "yes", **(data or {})})


def show(scene: Scene, method: str, path: str, body: Any = None):
    return Api(scene.owner.api_key).request(method, f"/api/rooms/{scene.room.name}{path}", body)


def socket(scene: Scene, action: str, **fields: Any) -> dict[str, Any]:
    """Send one action over the host socket of the host-link browser; its answer."""
    from dashboard.asgi import application

    session = scene.host.client.cookies["sessionid"].value
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver"),
               (b"cookie", f"sessionid={session}".encode())]  # fmt: skip

    async def run() -> dict[str, Any]:
        ws = WebsocketCommunicator(application, f"/ws/rooms/{scene.rid}/host", headers=headers)
        connected, _ = await ws.connect()
        assert connected
        await ws.send_json_to({"type": "action", "action": action, "ref": "r1", **fields})
        while True:
            message = await ws.receive_json_from(timeout=5)
            if message["type"] in ("done", "error"):
                await ws.disconnect()
                return message

    return async_to_sync(run)()


def ok(response) -> None:
    """An HTTP route succeeded (the dashboard answers with a redirect to the room page)."""
    if isinstance(response, dict):
        assert response["type"] == "done", response
        return
    assert response.status_code in (200, 302), (response.status_code, response.content)
    if response.status_code == 302:  # the dashboard: no error message was flashed
        assert "error" not in response.cookies.get("messages", "").__str__().lower()


Route = Callable[[Scene], Any]

REMOVE: dict[str, Route] = {
    "v1": lambda s: v1(s, "DELETE", "/participants/cat"),
    "host": lambda s: host_api(s, "/participants/cat/remove"),
    "host-stage": lambda s: host_api(s, "/stage/cat/remove"),
    "dashboard": lambda s: dashboard(s, "/participants/cat/remove/"),
    "socket": lambda s: socket(s, "remove", identity="cat"),
    "show": lambda s: show(s, "DELETE", "/participants/cat"),
}
END: dict[str, Route] = {
    "v1": lambda s: v1(s, "POST", "/stop"),
    "host": lambda s: host_api(s, "/end"),
    "dashboard": lambda s: dashboard(s, "/stop/"),
    "socket": lambda s: socket(s, "end"),
    "show": lambda s: show(s, "DELETE", ""),
}
MUTE_ALL: dict[str, Route] = {
    "host": lambda s: host_api(s, "/mute-all"),
    "dashboard": lambda s: dashboard(s, "/mute/", {"kind": "audio"}),
    "socket": lambda s: socket(s, "mute_all"),
}
DISABLE_VIDEO: dict[str, Route] = {
    "host": lambda s: host_api(s, "/disable-video"),
    "dashboard": lambda s: dashboard(s, "/mute/", {"kind": "video"}),
    "socket": lambda s: socket(s, "disable_video"),
}
INVITE: dict[str, Route] = {
    "v1": lambda s: v1(s, "POST", "/participants/cat/invite", {"mic_only": True}),
    "host": lambda s: host_api(s, "/stage/cat/invite", {"mic_only": True}),
    "socket": lambda s: socket(s, "invite", identity="cat", mic_only=True),
}
PROMOTE: dict[str, Route] = {
    "v1": lambda s: v1(s, "POST", "/participants/cat/promote"),
    "host": lambda s: host_api(s, "/stage/cat/promote"),
    "dashboard": lambda s: dashboard(s, "/participants/cat/stage/", {"action": "promote"}),
    "socket": lambda s: socket(s, "promote", identity="cat"),
    "show": lambda s: show(
        s, "POST", "/invite", {"viewerIdentity": "cat", "hostIdentity": "host-1"}
    ),
}
DEMOTE: dict[str, Route] = {
    "v1": lambda s: v1(s, "POST", "/participants/bob/demote"),
    "host": lambda s: host_api(s, "/stage/bob/demote"),
    "dashboard": lambda s: dashboard(s, "/participants/bob/stage/", {"action": "demote"}),
    "socket": lambda s: socket(s, "demote", identity="bob"),
    "show": lambda s: show(
        s, "POST", "/demote", {"guestIdentity": "bob", "hostIdentity": "host-1"}
    ),
}
LOWER_ALL: dict[str, Route] = {
    "v1": lambda s: v1(s, "POST", "/participants/hands/lower-all"),
    "host": lambda s: host_api(s, "/stage/hands/lower-all"),
    "socket": lambda s: socket(s, "lower_all_hands"),
}
RAISE_HAND: dict[str, Route] = {
    "v1": lambda s: v1(s, "POST", "/participants/cat/hand", {"raised": True}),
    "show": lambda s: show(
        s, "POST", "/hand-raise", {"participantIdentity": "cat", "raised": True}
    ),
}


# --- what every route must leave behind ---------------------------------------------------------


def livekit_calls(scene: Scene) -> list[tuple[str, dict[str, Any]]]:
    """The RoomService calls made, room name normalised, in order (reads left out: they do
    not change anything and some routes read for their own answer)."""
    calls = []
    for call in scene.livekit.calls:
        if call.method in ("ListParticipants", "ListRooms"):
            continue
        body = MessageToDict(call.request, preserving_proto_field_name=True)
        if body.get("room") == scene.room.livekit_name:
            body["room"] = "ROOM"
        if "track_sid" in body:
            body["track_sid"] = "TRACK"
        if call.method == "SendData":
            payload = json.loads(body.pop("data") and call.request.data)
            payload.pop("timestamp", None)
            body["data"] = payload
            body.pop("nonce", None)
        calls.append((call.method, body))
    return sorted(calls, key=lambda c: json.dumps(c, sort_keys=True))


def run(scene: Scene, routes: dict[str, Route], route: str):
    if routes is PROMOTE:
        # The show allows one guest at a time: bob steps down before anyone is promoted,
        # whatever the route (not part of the operation).
        stage.demote(room=scene.room, identity="bob")
        scene.livekit.calls.clear()
    tap = EventTap(events.room_group(scene.rid))
    response = routes[route](scene)
    ok(response)
    scene.room.refresh_from_db()
    return tap.names(), livekit_calls(scene)


def person(scene: Scene, identity: str) -> Participant:
    return Participant.objects.get(room=scene.room, identity=identity)


def _check_remove(s: Scene) -> None:
    cat = person(s, "cat")
    assert cat.left_at is not None and cat.hand_raised_at is None and cat.invited_at is None
    assert s.livekit.get_participant(s.room.livekit_name, "cat") is None


def _check_end(s: Scene) -> None:
    assert s.room.status == Room.Status.COMPLETED and s.room.live_since is None
    assert s.room.livekit_name not in s.livekit.room_names()
    # Whatever the route, the waiting room is closed with the room.
    assert WaitingEntry.objects.get(room=s.room).status == WaitingEntry.Status.LEFT


def _check_muted(source: int) -> Callable[[Scene], None]:
    def check(s: Scene) -> None:
        bob = s.livekit.get_participant(s.room.livekit_name, "bob")
        host = s.livekit.get_participant(s.room.livekit_name, "host-1")
        assert all(t.muted for t in bob.tracks if t.source == source)
        assert not any(t.muted for t in host.tracks)  # hosts are left alone

    return check


def _check_invited(s: Scene) -> None:
    cat = person(s, "cat")
    assert cat.invited_at is not None and cat.invite_mic_only and cat.role == "viewer"


def _check_promoted(s: Scene) -> None:
    assert person(s, "cat").role == "speaker"
    assert s.livekit.get_participant(s.room.livekit_name, "cat").permission.can_publish


def _check_demoted(s: Scene) -> None:
    assert person(s, "bob").role == "viewer"
    assert not s.livekit.get_participant(s.room.livekit_name, "bob").permission.can_publish


def _check_lowered(s: Scene) -> None:
    assert person(s, "ann").hand_raised_at is None


def _check_raised(s: Scene) -> None:
    assert person(s, "cat").hand_raised_at is not None


OPERATIONS = {
    "remove": (REMOVE, _check_remove),
    "end": (END, _check_end),
    "mute_all": (MUTE_ALL, _check_muted(MIC)),
    "disable_video": (DISABLE_VIDEO, _check_muted(CAM)),
    "invite": (INVITE, _check_invited),
    "promote": (PROMOTE, _check_promoted),
    "demote": (DEMOTE, _check_demoted),
    "lower_all_hands": (LOWER_ALL, _check_lowered),
    "raise_hand": (RAISE_HAND, _check_raised),
}
TABLE = [(op, route) for op, (routes, _) in OPERATIONS.items() for route in routes]


@pytest.mark.parametrize("op, route", TABLE, ids=[f"{op}-{route}" for op, route in TABLE])
def test_operation_has_one_outcome_whatever_the_route(scene, op, route):
    routes, check = OPERATIONS[op]
    names, calls = run(scene, routes, route)
    check(scene)
    expected_names, expected_calls = EXPECTED[op]
    assert names == expected_names, (op, route)
    assert calls == expected_calls, (op, route)


def _data(**payload: Any) -> dict[str, Any]:
    return {"room": "ROOM", "data": payload}


def _update(identity: str, attributes: dict[str, str], **permission: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"room": "ROOM", "identity": identity}
    if permission:
        body["permission"] = permission
    body["attributes"] = attributes
    return body


_PUBLISH = ["CAMERA", "MICROPHONE", "SCREEN_SHARE", "SCREEN_SHARE_AUDIO"]
_MUTE_BOB = ("MutePublishedTrack", {"room": "ROOM", "identity": "bob", "track_sid": "TRACK",
                                    "muted": True})  # fmt: skip

# What each operation leaves behind, the same through every route: domain events on the
# room's group and LiveKit calls (sorted; room and track ids normalised; data messages
# without their timestamp).
EXPECTED: dict[str, tuple[list[str], list[tuple[str, dict[str, Any]]]]] = {
    "remove": (
        ["participant.removed"],
        [("RemoveParticipant", {"room": "ROOM", "identity": "cat"})],
    ),
    "end": (["room.ended"], [("DeleteRoom", {"room": "ROOM"})]),
    "mute_all": ([], [_MUTE_BOB]),
    "disable_video": ([], [_MUTE_BOB]),
    "invite": (
        ["participant.invited"],
        [
            (
                "SendData",
                {
                    "room": "ROOM",
                    "destination_identities": ["cat"],
                    "data": {
                        "type": "guest_invite",
                        "senderId": "parley",
                        "senderName": "Host",
                        "targetParticipantId": "cat",
                        "targetParticipantName": "cat",
                        "micOnly": True,
                    },  # fmt: skip
                },
            )
        ],
    ),
    "promote": (
        ["participant.promoted"],
        [
            (
                "SendData",
                _data(
                    type="guest_promoted",
                    senderId="parley",
                    senderName="Parley",
                    participantId="cat",
                    participantName="cat",
                    micOnly=False,
                ),
            ),
            (
                "UpdateParticipant",
                _update(
                    "cat",
                    {"role": "speaker", "hand": ""},
                    can_subscribe=True,
                    can_publish=True,
                    can_publish_data=True,
                    can_publish_sources=_PUBLISH,
                ),
            ),
        ],  # fmt: skip
    ),
    "demote": (
        ["participant.demoted"],
        [
            (
                "SendData",
                _data(
                    type="guest_demoted",
                    senderId="parley",
                    senderName="Parley",
                    participantId="bob",
                    participantName="bob",
                ),
            ),
            (
                "UpdateParticipant",
                _update(
                    "bob", {"role": "viewer", "hand": ""}, can_subscribe=True, can_publish_data=True
                ),
            ),
        ],  # fmt: skip
    ),
    "lower_all_hands": (
        ["participant.hand_lowered"],
        [
            ("SendData", _data(type="hand_lower", senderId="ann", senderName="ann")),
            ("UpdateParticipant", _update("ann", {"role": "viewer", "hand": ""})),
        ],
    ),
    "raise_hand": (
        ["participant.hand_raised"],
        [
            ("SendData", _data(type="hand_raise", senderId="cat", senderName="cat")),
            ("UpdateParticipant", _update("cat", {"role": "viewer", "hand": "raised"})),
        ],
    ),
}


# --- the kick switch: hosts are bound by it, the tenant's API key is not ---------------------


@pytest.mark.parametrize("route", ["host", "host-stage", "dashboard", "socket"])
def test_hosts_cannot_remove_when_kicking_is_off(scene, route):
    room_services.update_room(room=scene.room, data={"host_controls": {"kick_participants": False}})
    scene.room.refresh_from_db()
    response = REMOVE[route](scene)
    if isinstance(response, dict):
        assert response["type"] == "error" and response["code"] == "HOST_CONTROL_DISABLED"
    elif route == "dashboard":
        assert response.status_code == 302
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "HOST_CONTROL_DISABLED"
    assert person(scene, "cat").left_at is None
    assert not scene.livekit.calls_to("RemoveParticipant")


@pytest.mark.parametrize("route", ["v1", "show"])
def test_the_tenant_removes_whatever_the_switch(scene, route):
    room_services.update_room(room=scene.room, data={"host_controls": {"kick_participants": False}})
    scene.room.refresh_from_db()
    ok(REMOVE[route](scene))
    _check_remove(scene)
    assert len(scene.livekit.calls_to("RemoveParticipant")) == 1
