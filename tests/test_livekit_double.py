"""The LiveKit double, driven by the official SDK (`livekit.api.LiveKitAPI`).

No Django and no database: these only prove the double behaves like livekit-server at the
HTTP boundary, so that tests of Parley built on it mean something.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import aiohttp
import pytest
from livekit import api
from livekit.protocol import egress as proto_egress
from livekit.protocol import models as proto_models
from livekit.protocol import room as proto_room

from tests.livekit_double import JoinTokenError, LiveKitDouble

# livekit-api signs with PyJWT, which warns about the short dev secret "secret".
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

T = TypeVar("T")


@pytest.fixture
def lk() -> Iterator[LiveKitDouble]:
    with LiveKitDouble() as double:
        yield double


def call(
    lk: LiveKitDouble,
    fn: Callable[[api.LiveKitAPI], Awaitable[T]],
    *,
    secret: str = "secret",
    token: str | None = None,
) -> T:
    """Run one coroutine against the double with a fresh official client."""

    async def main() -> T:
        if token is not None:
            client = api.LiveKitAPI.with_token(token, lk.url)
        else:
            client = api.LiveKitAPI(lk.url, "devkey", secret)
        try:
            return await fn(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def server_error(
    lk: LiveKitDouble, fn: Callable[[api.LiveKitAPI], Awaitable[Any]], **kw: Any
) -> api.TwirpError:
    with pytest.raises(api.TwirpError) as info:
        call(lk, fn, **kw)
    return info.value


def join_token(
    *,
    identity: str = "alice",
    room: str = "standup",
    secret: str = "secret",
    ttl: datetime.timedelta = datetime.timedelta(minutes=5),
    **grants: Any,
) -> str:
    video = api.VideoGrants(room_join=True, room=room, **grants)
    return (
        api.AccessToken("devkey", secret)
        .with_identity(identity)
        .with_name(identity.title())
        .with_grants(video)
        .with_ttl(ttl)
        .to_jwt()
    )


# --- rooms ----------------------------------------------------------------------------------


def test_create_list_delete_rooms(lk: LiveKitDouble) -> None:
    async def scenario(c: api.LiveKitAPI) -> None:
        a = await c.room.create_room(
            proto_room.CreateRoomRequest(name="a", empty_timeout=60, max_participants=5)
        )
        await c.room.create_room(proto_room.CreateRoomRequest(name="b"))
        assert a.sid.startswith("RM_")
        assert (a.name, a.empty_timeout, a.max_participants) == ("a", 60, 5)
        assert a.creation_time > 0

        listed = await c.room.list_rooms(proto_room.ListRoomsRequest())
        assert sorted(r.name for r in listed.rooms) == ["a", "b"]
        only_b = await c.room.list_rooms(proto_room.ListRoomsRequest(names=["b", "zz"]))
        assert [r.name for r in only_b.rooms] == ["b"]

        await c.room.delete_room(proto_room.DeleteRoomRequest(room="a"))
        listed = await c.room.list_rooms(proto_room.ListRoomsRequest())
        assert [r.name for r in listed.rooms] == ["b"]

    call(lk, scenario)

    assert lk.room_names() == ["b"]
    create = lk.calls_to("CreateRoom")[0]
    assert create.service == "RoomService"
    assert create.status == 200
    assert create.request.name == "a"
    assert create.claims["iss"] == "devkey"
    assert create.claims["video"]["roomCreate"] is True
    assert lk.calls_to("ListRooms")[0].claims["video"]["roomList"] is True


def test_create_room_is_get_or_create(lk: LiveKitDouble) -> None:
    async def scenario(c: api.LiveKitAPI) -> list[proto_models.Room]:
        req = proto_room.CreateRoomRequest
        return [
            await c.room.create_room(req(name="r", metadata="m1", empty_timeout=60)),
            await c.room.create_room(req(name="r")),
            await c.room.create_room(req(name="r", metadata="m2")),
        ]

    first, again, updated = call(lk, scenario)
    assert again.sid == first.sid
    assert (again.metadata, again.empty_timeout) == ("m1", 60)  # zero fields reset nothing
    assert (updated.sid, updated.metadata, updated.empty_timeout) == (first.sid, "m2", 60)


def test_delete_unknown_room_is_not_found(lk: LiveKitDouble) -> None:
    err = server_error(lk, lambda c: c.room.delete_room(proto_room.DeleteRoomRequest(room="nope")))
    assert (err.status, err.code) == (404, "not_found")
    assert err.message == "requested room does not exist"
    assert lk.calls_to("DeleteRoom")[0].status == 404


# --- participants ---------------------------------------------------------------------------


def test_participant_update_replaces_permission_and_merges_attributes(
    lk: LiveKitDouble,
) -> None:
    lk.create_room_local("standup")
    joined = lk.add_participant(
        "standup",
        "alice",
        name="Alice",
        attributes={"role": "participant", "hand": "up"},
        permission=proto_models.ParticipantPermission(
            can_subscribe=True,
            can_publish=True,
            can_publish_data=True,
            can_publish_sources=[
                proto_models.TrackSource.CAMERA,
                proto_models.TrackSource.MICROPHONE,
            ],
        ),
    )
    assert joined.sid.startswith("PA_")
    assert joined.state == proto_models.ParticipantInfo.ACTIVE
    assert lk.get_room("standup").num_participants == 1  # type: ignore[union-attr]
    new_permission = proto_models.ParticipantPermission(can_subscribe=True)

    async def scenario(c: api.LiveKitAPI) -> Any:
        listed = await c.room.list_participants(proto_room.ListParticipantsRequest(room="standup"))
        updated = await c.room.update_participant(
            proto_room.UpdateParticipantRequest(
                room="standup",
                identity="alice",
                permission=new_permission,
                attributes={"role": "speaker", "hand": ""},
            )
        )
        fetched = await c.room.get_participant(
            proto_room.RoomParticipantIdentity(room="standup", identity="alice")
        )
        return listed, updated, fetched

    listed, updated, fetched = call(lk, scenario)
    assert [p.identity for p in listed.participants] == ["alice"]
    # The whole permission message is replaced: sources and publish rights are gone.
    assert updated.permission == new_permission
    assert dict(updated.attributes) == {"role": "speaker"}
    assert updated.name == "Alice"  # empty name in the request leaves it alone
    assert fetched == updated
    sent = lk.calls_to("UpdateParticipant")[0]
    assert sent.request.HasField("permission")
    assert sent.claims["video"]["roomAdmin"] is True
    assert sent.claims["video"]["room"] == "standup"


def test_update_without_permission_keeps_it(lk: LiveKitDouble) -> None:
    before = lk.add_participant("r", "bob")  # auto-creates the room
    updated = call(
        lk,
        lambda c: c.room.update_participant(
            proto_room.UpdateParticipantRequest(room="r", identity="bob", metadata="x")
        ),
    )
    assert updated.permission == before.permission
    assert updated.metadata == "x"


def test_revoking_publish_unpublishes_tracks(lk: LiveKitDouble) -> None:
    lk.add_participant("r", "bob")
    lk.publish_track("r", "bob", source=proto_models.TrackSource.CAMERA)
    call(
        lk,
        lambda c: c.room.update_participant(
            proto_room.UpdateParticipantRequest(
                room="r",
                identity="bob",
                permission=proto_models.ParticipantPermission(can_subscribe=True),
            )
        ),
    )
    bob = lk.get_participant("r", "bob")
    assert bob is not None
    assert list(bob.tracks) == []
    assert not bob.is_publisher


def test_unknown_participants(lk: LiveKitDouble) -> None:
    lk.create_room_local("r")
    for fn in (
        lambda c: c.room.get_participant(
            proto_room.RoomParticipantIdentity(room="r", identity="ghost")
        ),
        lambda c: c.room.remove_participant(
            proto_room.RoomParticipantIdentity(room="r", identity="ghost")
        ),
        lambda c: c.room.update_participant(
            proto_room.UpdateParticipantRequest(room="r", identity="ghost", name="x")
        ),
    ):
        err = server_error(lk, fn)
        assert (err.status, err.code) == (404, "not_found")
    # livekit-server's room store lists an unknown room as empty, not as an error.
    empty = call(
        lk,
        lambda c: c.room.list_participants(proto_room.ListParticipantsRequest(room="nope")),
    )
    assert list(empty.participants) == []


def test_remove_participant_and_send_data(lk: LiveKitDouble) -> None:
    lk.add_participant("r", "alice")
    lk.add_participant("r", "bob")

    async def scenario(c: api.LiveKitAPI) -> None:
        await c.room.send_data(
            proto_room.SendDataRequest(
                room="r", data=b'{"type":"hand"}', destination_identities=["bob"], topic="t"
            )
        )
        await c.room.remove_participant(
            proto_room.RoomParticipantIdentity(room="r", identity="alice")
        )

    call(lk, scenario)
    assert [p.identity for p in lk.participants("r")] == ["bob"]
    assert lk.get_room("r").num_participants == 1  # type: ignore[union-attr]
    (sent,) = lk.sent_data
    assert (sent.room, sent.payload, sent.destination_identities, sent.topic) == (
        "r",
        b'{"type":"hand"}',
        ["bob"],
        "t",
    )
    assert sent.kind == proto_models.DataPacket.RELIABLE


def test_remote_unmute_is_refused_by_default(lk: LiveKitDouble) -> None:
    lk.add_participant("r", "bob")
    track = lk.publish_track("r", "bob", source=proto_models.TrackSource.MICROPHONE)

    def mute(muted: bool) -> Callable[[api.LiveKitAPI], Awaitable[Any]]:
        return lambda c: c.room.mute_published_track(
            proto_room.MuteRoomTrackRequest(
                room="r", identity="bob", track_sid=track.sid, muted=muted
            )
        )

    assert call(lk, mute(True)).track.muted
    err = server_error(lk, mute(False))
    assert (err.status, err.code) == (412, "failed_precondition")


# --- auth -----------------------------------------------------------------------------------


def test_wrong_secret_is_401(lk: LiveKitDouble) -> None:
    err = server_error(
        lk, lambda c: c.room.list_rooms(proto_room.ListRoomsRequest()), secret="wrong"
    )
    # The real auth middleware answers 401 with a plain-text body, which the SDK reports as
    # code "unknown"; the status is what identifies it.
    assert err.status == 401
    (recorded,) = lk.calls
    assert (recorded.method, recorded.status, recorded.claims) == ("ListRooms", 401, {})


def test_token_without_room_admin_is_refused(lk: LiveKitDouble) -> None:
    lk.add_participant("r", "alice")
    token = (
        api.AccessToken("devkey", "secret").with_grants(api.VideoGrants(room_list=True)).to_jwt()
    )
    rooms = call(lk, lambda c: c.room.list_rooms(proto_room.ListRoomsRequest()), token=token)
    assert [r.name for r in rooms.rooms] == ["r"]

    err = server_error(
        lk,
        lambda c: c.room.list_participants(proto_room.ListParticipantsRequest(room="r")),
        token=token,
    )
    # livekit-server: twirpAuthError(ErrPermissionDenied) -> unauthenticated, HTTP 401.
    assert (err.status, err.code, err.message) == (
        401,
        "unauthenticated",
        "permissions denied",
    )
    refused = lk.calls_to("ListParticipants")[0]
    assert "roomAdmin" not in refused.claims["video"]


def test_room_admin_for_another_room_is_refused(lk: LiveKitDouble) -> None:
    lk.add_participant("r", "alice")
    token = (
        api.AccessToken("devkey", "secret")
        .with_grants(api.VideoGrants(room_admin=True, room="other"))
        .to_jwt()
    )
    err = server_error(
        lk,
        lambda c: c.room.list_participants(proto_room.ListParticipantsRequest(room="r")),
        token=token,
    )
    assert (err.status, err.code) == (401, "unauthenticated")


def test_missing_authorization_header_fails_the_grant_check(lk: LiveKitDouble) -> None:
    request = urllib.request.Request(
        f"{lk.url}/twirp/livekit.RoomService/ListRooms",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 401
    assert json.loads(info.value.read()) == {
        "code": "unauthenticated",
        "msg": "permissions denied",
    }


def test_json_bodies_get_json_replies(lk: LiveKitDouble) -> None:
    lk.create_room_local("r", metadata="hello")
    token = (
        api.AccessToken("devkey", "secret").with_grants(api.VideoGrants(room_list=True)).to_jwt()
    )
    request = urllib.request.Request(
        f"{lk.url}/twirp/livekit.RoomService/ListRooms",
        data=json.dumps({"names": ["r"]}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        body = json.loads(response.read())
    assert [(r["name"], r["metadata"]) for r in body["rooms"]] == [("r", "hello")]


# --- egress ---------------------------------------------------------------------------------


def test_egress_lifecycle(lk: LiveKitDouble) -> None:
    lk.create_room_local("r")

    async def scenario(c: api.LiveKitAPI) -> Any:
        started = await c.egress.start_room_composite_egress(
            proto_egress.RoomCompositeEgressRequest(room_name="r", layout="grid")
        )
        listed = await c.egress.list_egress(proto_egress.ListEgressRequest(room_name="r"))
        stopped = await c.egress.stop_egress(
            proto_egress.StopEgressRequest(egress_id=started.egress_id)
        )
        return started, listed, stopped

    started, listed, stopped = call(lk, scenario)
    assert started.egress_id.startswith("EG_")
    assert (started.room_name, started.status) == ("r", proto_egress.EGRESS_ACTIVE)
    assert started.room_composite.layout == "grid"
    assert [e.egress_id for e in listed.items] == [started.egress_id]
    assert stopped.status == proto_egress.EGRESS_COMPLETE
    assert lk.calls_to("StartRoomCompositeEgress")[0].claims["video"]["roomRecord"]

    again = server_error(
        lk,
        lambda c: c.egress.stop_egress(proto_egress.StopEgressRequest(egress_id=started.egress_id)),
    )
    assert (again.status, again.code) == (412, "failed_precondition")
    no_room = server_error(
        lk,
        lambda c: c.egress.start_room_composite_egress(
            proto_egress.RoomCompositeEgressRequest(room_name="nope")
        ),
    )
    assert (no_room.status, no_room.code) == (404, "not_found")


# --- failures -------------------------------------------------------------------------------


def test_down_refuses_connections_and_up_restores_same_port(lk: LiveKitDouble) -> None:
    lk.create_room_local("r")
    port = lk.port
    lk.down()
    with pytest.raises(aiohttp.ClientConnectorError):
        call(lk, lambda c: c.room.list_rooms(proto_room.ListRoomsRequest()))
    lk.up()
    assert lk.port == port
    rooms = call(lk, lambda c: c.room.list_rooms(proto_room.ListRoomsRequest()))
    assert [r.name for r in rooms.rooms] == ["r"]  # state survives an outage


def test_fail_with_fails_exactly_n_calls(lk: LiveKitDouble) -> None:
    lk.fail_with(503, times=1)
    err = server_error(lk, lambda c: c.room.list_rooms(proto_room.ListRoomsRequest()))
    assert (err.status, err.code) == (503, "unavailable")
    call(lk, lambda c: c.room.list_rooms(proto_room.ListRoomsRequest()))
    assert [c.status for c in lk.calls] == [503, 200]
    assert lk.calls[0].claims["video"]["roomList"] is True


def test_reset_forgets_everything(lk: LiveKitDouble) -> None:
    lk.add_participant("r", "alice")
    lk.fail_with(500, code="internal")
    lk.down()
    lk.reset()
    assert lk.is_up
    rooms = call(lk, lambda c: c.room.list_rooms(proto_room.ListRoomsRequest()))
    assert list(rooms.rooms) == []
    assert [c.method for c in lk.calls] == ["ListRooms"]


# --- join tokens ----------------------------------------------------------------------------


def test_verify_join_token(lk: LiveKitDouble) -> None:
    claims = lk.verify_join_token(join_token(), room="standup")
    assert claims["sub"] == "alice"
    assert claims["video"]["room"] == "standup"

    with pytest.raises(JoinTokenError, match="invalid token"):
        lk.verify_join_token(join_token(secret="not-the-secret"))
    with pytest.raises(JoinTokenError, match="permissions denied"):
        no_join = (
            api.AccessToken("devkey", "secret")
            .with_identity("alice")
            .with_grants(api.VideoGrants(room="standup"))
            .to_jwt()
        )
        lk.verify_join_token(no_join)
    with pytest.raises(JoinTokenError, match="not 'other'"):
        lk.verify_join_token(join_token(), room="other")
    with pytest.raises(JoinTokenError, match="expired") as expired:
        lk.verify_join_token(join_token(ttl=datetime.timedelta(minutes=-5)))
    assert expired.value.status == 401


def test_join_derives_permission_from_grants(lk: LiveKitDouble) -> None:
    token = join_token(
        can_publish=True,
        can_publish_data=False,
        can_subscribe=True,
        can_publish_sources=["camera", "microphone"],
    )
    info = lk.join(token)
    assert info.identity == "alice"
    assert info.name == "Alice"
    assert info.permission == proto_models.ParticipantPermission(
        can_publish=True,
        can_publish_data=False,
        can_subscribe=True,
        can_publish_sources=[
            proto_models.TrackSource.CAMERA,
            proto_models.TrackSource.MICROPHONE,
        ],
    )
    assert lk.get_room("standup") is not None  # auto-created


# --- webhooks -------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length).decode()
        self.received.append((body, self.headers["Authorization"], self.headers["Content-Type"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def test_send_webhook_verifies_with_the_sdk_receiver(lk: LiveKitDouble) -> None:
    lk.add_participant("standup", "alice")
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/livekit"
        status = lk.send_webhook(
            url, lk.make_event("participant_joined", room="standup", identity="alice")
        )
        status_from_dict = lk.send_webhook(
            url, {"event": "room_finished", "room": {"name": "standup"}}
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (status, status_from_dict) == (200, 200)

    receiver = api.WebhookReceiver(api.TokenVerifier("devkey", "secret"))
    (body, auth, content_type), (body2, auth2, _) = _Receiver.received
    assert content_type == "application/webhook+json"
    assert not auth.startswith("Bearer ")
    event = receiver.receive(body, auth)
    assert event.event == "participant_joined"
    assert (event.room.name, event.participant.identity) == ("standup", "alice")
    assert event.id.startswith("EV_")
    assert receiver.receive(body2, auth2).room.name == "standup"
    with pytest.raises(Exception, match="hash mismatch"):
        receiver.receive(body2, auth)
