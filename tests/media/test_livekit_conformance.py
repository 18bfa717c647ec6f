"""Double conformance: the RoomService calls Parley makes, run against the LiveKit double
(tests/livekit_double.py, what the fast tests use) and against the real livekit-server, with
the same expectations. If the double drifts from the real thing, one of the two fails here.

Participants join the real server from headless Chromium pages (livekit-client with a join
token, fake microphone, loopback only) and the double through `LiveKitDouble.join`; both
backends are driven through the official SDK (`livekit.api.LiveKitAPI`), as Parley drives
LiveKit. The real server applies some changes a moment later (its room head counts refresh
every 5 s, removals and unpublishing finish asynchronously), so expectations on state after
a change are polled for a few seconds on both backends.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from livekit import api
from livekit.protocol import models as proto

from tests.browser.conftest import off_loop
from tests.livekit_double import LiveKitDouble
from tests.media.conftest import API_KEY, API_SECRET, MEDIA_WARNINGS

pytestmark = [pytest.mark.browser, pytest.mark.media, MEDIA_WARNINGS]

MIC = proto.TrackSource.MICROPHONE
LIVEKIT_CLIENT = "/static/vendor/livekit-client/livekit-client.umd.js"

CONNECT = """async ([url, token, mic]) => {
    const room = new LivekitClient.Room();
    window.__room = room;
    window.__data = [];
    room.on(LivekitClient.RoomEvent.DataReceived, (payload, participant, kind, topic) => {
        window.__data.push({ text: new TextDecoder().decode(payload), topic: topic || "" });
    });
    await room.connect(url, token);
    if (mic) await room.localParticipant.setMicrophoneEnabled(true);
    return room.localParticipant.sid;
}"""


class Backend:
    """One LiveKit server (double or real) behind the same small interface."""

    name: str
    url: str

    def call(self, method: str, request: Any) -> Any:
        """RoomService.<method>(request) through the SDK; raises api.TwirpError."""

        async def run() -> Any:
            lk = api.LiveKitAPI(self.url, API_KEY, API_SECRET)
            try:
                return await getattr(lk.room, method)(request)
            finally:
                await lk.aclose()

        return off_loop(lambda: asyncio.run(run()))

    def token(self, room: str, identity: str, name: str, **grants: Any) -> str:
        video = api.VideoGrants(room_join=True, room=room, **grants)
        return (
            api.AccessToken(API_KEY, API_SECRET)
            .with_identity(identity)
            .with_name(name)
            .with_grants(video)
            .to_jwt()
        )

    def join(self, room: str, identity: str, name: str, *, mic: bool = False) -> None:
        raise NotImplementedError

    def received(self, identity: str) -> list[dict[str, str]]:
        """Data messages that reached `identity` (real) or were accepted for it (double)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class DoubleBackend(Backend):
    name = "double"

    def __init__(self) -> None:
        self.double = LiveKitDouble(api_key=API_KEY, api_secret=API_SECRET).start()
        self.url = self.double.url

    def join(self, room: str, identity: str, name: str, *, mic: bool = False) -> None:
        self.double.join(self.token(room, identity, name))
        if mic:
            self.double.publish_track(room, identity, source=MIC)

    def received(self, identity: str) -> list[dict[str, str]]:
        return [
            {"text": d.payload.decode(), "topic": d.topic}
            for d in self.double.sent_data
            if not d.destination_identities or identity in d.destination_identities
        ]

    def close(self) -> None:
        self.double.stop()


class RealBackend(Backend):
    name = "real"

    def __init__(self, server: Any, browser: Any, live: Any) -> None:
        self.server = server
        self.url = server.http_url
        self.browser = browser
        self.live = live
        self.pages: dict[str, Any] = {}
        self.contexts: list[Any] = []

    def join(self, room: str, identity: str, name: str, *, mic: bool = False) -> None:
        context = self.browser.new_context(base_url=self.live.url)
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        # The page hosting livekit-client is a harness, not one of Parley's pages (whose CSP
        # and Permissions-Policy keep LiveKit and the microphone to the join pages): a static
        # file of the app's own origin, which the test server serves without those headers.
        page.goto(LIVEKIT_CLIENT)
        page.add_script_tag(url=LIVEKIT_CLIENT)
        page.evaluate(CONNECT, [self.server.ws_url, self.token(room, identity, name), mic])
        self.pages[identity] = page

    def received(self, identity: str) -> list[dict[str, str]]:
        return self.pages[identity].evaluate("window.__data")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture(params=["double", "real"])
def backend(request) -> Iterator[Backend]:
    if request.param == "double":
        chosen: Backend = DoubleBackend()
    else:
        chosen = RealBackend(
            request.getfixturevalue("real_livekit"),
            request.getfixturevalue("media_browser"),
            request.getfixturevalue("media_live_server"),
        )
    try:
        yield chosen
    finally:
        for room in chosen.call("list_rooms", api.ListRoomsRequest()).rooms:
            try:
                chosen.call("delete_room", api.DeleteRoomRequest(room=room.name))
            except api.TwirpError:
                pass
        chosen.close()


def eventually(check: Callable[[], Any], timeout: float = 8.0) -> Any:
    """`check()` once it stops failing its asserts (the real server applies some changes
    asynchronously); its last AssertionError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def twirp_error(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(api.TwirpError) as raised:
        call()
    return raised.value.code, raised.value.status, raised.value.message


def new_room_name() -> str:
    return "conf-" + secrets.token_hex(4)


# --- rooms ----------------------------------------------------------------------------------


def test_create_list_update_metadata_and_delete_rooms(backend):
    name = new_room_name()
    created = backend.call(
        "create_room",
        api.CreateRoomRequest(
            name=name, empty_timeout=60, departure_timeout=5, max_participants=7, metadata="v1"
        ),
    )
    assert created.name == name and created.sid.startswith("RM_")
    assert (created.empty_timeout, created.departure_timeout) == (60, 5)
    assert (created.max_participants, created.metadata) == (7, "v1")
    # CreateRoom of an existing room keeps it (same sid): Parley's start is idempotent.
    again = backend.call("create_room", api.CreateRoomRequest(name=name, max_participants=7))
    assert again.sid == created.sid

    listed = backend.call("list_rooms", api.ListRoomsRequest(names=[name])).rooms
    assert [(r.name, r.sid, r.max_participants) for r in listed] == [(name, created.sid, 7)]
    assert backend.call("list_rooms", api.ListRoomsRequest(names=["no-such-room"])).rooms == []

    updated = backend.call(
        "update_room_metadata", api.UpdateRoomMetadataRequest(room=name, metadata="v2")
    )
    assert (updated.name, updated.metadata) == (name, "v2")
    eventually(
        lambda: _assert_eq(
            [
                r.metadata
                for r in backend.call("list_rooms", api.ListRoomsRequest(names=[name])).rooms
            ],
            ["v2"],
        )
    )

    backend.call("delete_room", api.DeleteRoomRequest(room=name))
    assert backend.call("list_rooms", api.ListRoomsRequest(names=[name])).rooms == []


def _assert_eq(actual: Any, expected: Any) -> None:
    assert actual == expected, (actual, expected)


def test_calls_on_unknown_rooms_and_participants(backend):
    code, status, _ = twirp_error(
        lambda: backend.call("delete_room", api.DeleteRoomRequest(room="no-such-room"))
    )
    assert (code, status) == ("not_found", 404)
    people = backend.call("list_participants", api.ListParticipantsRequest(room="no-such-room"))
    assert list(people.participants) == []

    name = new_room_name()
    backend.call("create_room", api.CreateRoomRequest(name=name))
    for method, request in [
        ("get_participant", api.RoomParticipantIdentity(room=name, identity="nobody")),
        ("remove_participant", api.RoomParticipantIdentity(room=name, identity="nobody")),
        ("update_participant", api.UpdateParticipantRequest(room=name, identity="nobody")),
    ]:
        code, status, _ = twirp_error(lambda m=method, r=request: backend.call(m, r))
        assert (code, status) == ("not_found", 404), method
    # MutePublishedTrack goes straight to the participant's node: nobody answers.
    code, status, message = twirp_error(
        lambda: backend.call(
            "mute_published_track",
            api.MuteRoomTrackRequest(room=name, identity="nobody", track_sid="TR_x", muted=True),
        )
    )
    assert (code, status) == ("unavailable", 503)
    assert message == "twirp error unknown: no response from servers"


# --- participants ---------------------------------------------------------------------------


def test_participants_list_get_update_mute_send_data_and_remove(backend):
    name = new_room_name()
    backend.call("create_room", api.CreateRoomRequest(name=name))
    backend.join(name, "ada", "Ada", mic=True)
    backend.join(name, "bob", "Bob")

    def both_listed() -> dict[str, Any]:
        people = backend.call("list_participants", api.ListParticipantsRequest(room=name))
        by_id = {p.identity: p for p in people.participants}
        assert set(by_id) == {"ada", "bob"}
        assert [t.source for t in by_id["ada"].tracks] == [MIC]
        return by_id

    people = eventually(both_listed)
    assert (people["ada"].name, people["bob"].name) == ("Ada", "Bob")
    assert people["ada"].is_publisher and not people["bob"].is_publisher
    assert people["ada"].state == proto.ParticipantInfo.ACTIVE
    # A token without explicit grants publishes, subscribes and sends data.
    perm = people["bob"].permission
    assert (perm.can_publish, perm.can_subscribe, perm.can_publish_data) == (True, True, True)

    # ListRooms' head counts (Parley's usage meter reads them): the real server refreshes
    # them every 5 s.
    eventually(
        lambda: _assert_eq(
            [
                (r.num_participants, r.num_publishers)
                for r in backend.call("list_rooms", api.ListRoomsRequest(names=[name])).rooms
            ],
            [(2, 1)],
        ),
        timeout=12,
    )

    ada = backend.call("get_participant", api.RoomParticipantIdentity(room=name, identity="ada"))
    assert ada.sid == people["ada"].sid and ada.tracks[0].type == proto.TrackType.AUDIO
    track_sid = ada.tracks[0].sid

    # UpdateParticipant: metadata replaced, attributes merged, an empty value deletes.
    updated = backend.call(
        "update_participant",
        api.UpdateParticipantRequest(
            room=name, identity="bob", metadata='{"m":1}', attributes={"role": "speaker", "x": "1"}
        ),
    )
    assert updated.metadata == '{"m":1}' and dict(updated.attributes) == {
        "role": "speaker",
        "x": "1",
    }
    updated = backend.call(
        "update_participant",
        api.UpdateParticipantRequest(room=name, identity="bob", attributes={"x": ""}),
    )
    assert dict(updated.attributes) == {"role": "speaker"} and updated.metadata == '{"m":1}'

    # MutePublishedTrack: the server mutes; remote unmute is off by default.
    muted = backend.call(
        "mute_published_track",
        api.MuteRoomTrackRequest(room=name, identity="ada", track_sid=track_sid, muted=True),
    )
    assert muted.track.sid == track_sid and muted.track.muted
    assert (
        backend.call("get_participant", api.RoomParticipantIdentity(room=name, identity="ada"))
        .tracks[0]
        .muted
    )
    code, status, _ = twirp_error(
        lambda: backend.call(
            "mute_published_track",
            api.MuteRoomTrackRequest(room=name, identity="ada", track_sid=track_sid, muted=False),
        )
    )
    assert (code, status) == ("failed_precondition", 412)

    # SendData: accepted, and it reaches the addressee.
    backend.call(
        "send_data",
        api.SendDataRequest(
            room=name,
            data=json.dumps({"type": "hello"}).encode(),
            kind=api.DataPacket.Kind.RELIABLE,
            destination_identities=["bob"],
            topic="parley",
        ),
    )
    eventually(
        lambda: _assert_eq(
            [(json.loads(m["text"]), m["topic"]) for m in backend.received("bob")],
            [({"type": "hello"}, "parley")],
        )
    )

    # RemoveParticipant: gone from the list; a second removal is not_found.
    backend.call("remove_participant", api.RoomParticipantIdentity(room=name, identity="bob"))
    eventually(
        lambda: _assert_eq(
            [
                p.identity
                for p in backend.call(
                    "list_participants", api.ListParticipantsRequest(room=name)
                ).participants
            ],
            ["ada"],
        )
    )
    code, status, _ = twirp_error(
        lambda: backend.call(
            "remove_participant", api.RoomParticipantIdentity(room=name, identity="bob")
        )
    )
    assert (code, status) == ("not_found", 404)


def test_update_participant_replaces_the_whole_permission(backend):
    """Sending only can_publish=False also clears subscribe and data (proto3 sends no false
    fields: the server sees a permission with everything off), and unpublishes the tracks."""
    name = new_room_name()
    backend.call("create_room", api.CreateRoomRequest(name=name))
    backend.join(name, "ada", "Ada", mic=True)
    eventually(
        lambda: _assert_eq(
            [
                t.source
                for t in backend.call(
                    "get_participant", api.RoomParticipantIdentity(room=name, identity="ada")
                ).tracks
            ],
            [MIC],
        )
    )
    request = api.UpdateParticipantRequest(room=name, identity="ada")
    request.permission.CopyFrom(proto.ParticipantPermission(can_publish=False))
    answered = backend.call("update_participant", request)
    perm = answered.permission
    assert (perm.can_publish, perm.can_subscribe, perm.can_publish_data) == (False, False, False)

    def unpublished() -> None:
        ada = backend.call(
            "get_participant", api.RoomParticipantIdentity(room=name, identity="ada")
        )
        assert not ada.permission.can_subscribe and not ada.permission.can_publish_data
        assert list(ada.tracks) == []

    eventually(unpublished)

    # A whole permission with sources: exactly those are allowed afterwards.
    request = api.UpdateParticipantRequest(room=name, identity="ada")
    request.permission.CopyFrom(
        proto.ParticipantPermission(
            can_publish=True, can_subscribe=True, can_publish_data=True, can_publish_sources=[MIC]
        )
    )
    perm = backend.call("update_participant", request).permission
    assert (perm.can_publish, perm.can_subscribe, perm.can_publish_data) == (True, True, True)
    assert list(perm.can_publish_sources) == [MIC]
