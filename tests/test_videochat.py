"""Direct calls: the videochat handshake websocket (reference videochat-handshake-ws.txt) and
`POST /api/v1/call-tokens`. Sockets go through the project's ASGI app; LiveKit is the double,
which verifies every token handed out."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from conferences import events
from conferences.models import Call, CallRequest, CallSocket, Room
from conferences.services import calls
from tests.conftest import Api, assert_error, make_member
from tests.videochat_helpers import Sock, err, ok, vouch

pytestmark = pytest.mark.django_db(transaction=True)

REQ = "videochat:requestDirectVideochat"
ACCEPT = "videochat:acceptVideochatRequest"
DECLINE = "videochat:declineVideochatRequest"
INVITE = "videochat:invite"
MERGE = "videochat:mergeToVideochat"
RINGING = "videochat:videochatRequested"
CALLER_ACCEPTED = "videochat:directVideochatRequestAccepted"
ACCEPTED = "videochat:videochatAccepted"
DECLINED = "videochat:videochatDeclined"

PAYLOAD_KEYS = {
    "videochatId", "videochatMode", "videochatEngine", "videochatAppId", "videochatUrl",
    "room", "identity", "uid", "token", "sharedSecret", "user", "permissions",
}  # fmt: skip


class Events:
    """Listens to a tenant's domain events (what the outbound webhooks get)."""

    def __init__(self, tenant_id: int) -> None:
        self.group = events.tenant_group(tenant_id)

    async def __aenter__(self) -> Events:
        self.layer = get_channel_layer()
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.layer.group_discard(self.group, self.channel)

    async def names(self, count: int) -> list[str]:
        """The next `count` call.* event names."""
        import asyncio

        got: list[str] = []
        while len(got) < count:  # call.* only (the call's room has its room.* events)
            message = await asyncio.wait_for(self.layer.receive(self.channel), 5)
            if message["event"].startswith("call."):
                got.append(message["event"])
        return got


@pytest.fixture
def acme(db):
    return make_member("Acme Calls", plan="pro")


def check_payload(payload, livekit, *, identity, role_owner: bool):
    assert set(payload) == PAYLOAD_KEYS, payload
    assert payload["videochatEngine"] == "livekit" and payload["videochatAppId"] == ""
    assert payload["videochatUrl"] == livekit.ws_url
    assert payload["identity"] == identity and payload["user"]["id"] == identity
    assert isinstance(payload["uid"], int) and payload["sharedSecret"]
    claims = livekit.verify_join_token(payload["token"], room=payload["room"])
    assert claims["sub"] == identity
    assert claims["video"]["canPublish"] is True and claims["video"]["canSubscribe"] is True
    assert claims["video"].get("roomAdmin") in (None, False)
    perms = payload["permissions"]
    assert perms["isOwner"] is role_owner and perms["isModerator"] is role_owner
    assert perms["isParticipant"] and perms["isPromoted"] and not perms["isListener"]
    return claims


# --- POST /api/v1/call-tokens -----------------------------------------------------------------


def test_call_tokens_vouch_for_a_tenants_user(acme, outsider):
    api = Api(acme.api_key)
    body = {
        "id": "u1", "firstName": "Ada", "lastName": "L", "privacyMode": 0, "avatar": "a.png",
        "avatar3D": {"assetId": "x", "assetSkins": {"hair": "red"}, "avatarUrl": "https://a/b.glb",
                     "avatarUserId": "rpm"},
        "companyName": "Acme", "companyTitle": "CTO", "expires_in": 600,
    }  # fmt: skip
    response = api.post("/api/v1/call-tokens", body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["user"] == {k: v for k, v in body.items() if k != "expires_in"}
    assert data["ws_path"] == "/ws/videochat"
    expires = dt.datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    assert 590 <= (expires - timezone.now()).total_seconds() <= 601
    user = calls.user_for_token(token=data["token"])
    assert user is not None and user.tenant_id == acme.tenant.pk and user.external_id == "u1"
    # Default lifetime: one hour; avatar3D left out when empty.
    data = api.post("/api/v1/call-tokens", {"id": "u2"}).json()
    expires = dt.datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    assert 3590 <= (expires - timezone.now()).total_seconds() <= 3601
    assert "avatar3D" not in data["user"] and data["user"]["privacyMode"] == 0
    # The same id in another tenant is another person.
    other = Api(outsider.api_key).post("/api/v1/call-tokens", {"id": "u1"}).json()
    assert calls.user_for_token(token=other["token"]).tenant_id == outsider.tenant.pk
    # A tampered or foreign-signed token names nobody.
    tail = "yy" if data["token"].endswith("xx") else "xx"  # always a different token
    assert calls.user_for_token(token=data["token"][:-2] + tail) is None
    assert calls.user_for_token(token="garbage") is None


def test_call_tokens_validate_input(acme):
    api = Api(acme.api_key)
    assert_error(api.post("/api/v1/call-tokens", {}), 400, "INVALID_PARAMETER", "id")
    assert_error(api.post("/api/v1/call-tokens", {"id": ""}), 400, field="id")
    assert_error(api.post("/api/v1/call-tokens", {"id": 5}), 400, field="id")
    assert_error(api.post("/api/v1/call-tokens", {"id": "a", "privacyMode": 2}), 400,
                 field="privacyMode")  # fmt: skip
    assert_error(api.post("/api/v1/call-tokens", {"id": "a", "nick": "x"}), 400, field="nick")
    assert_error(api.post("/api/v1/call-tokens", {"id": "a", "avatar3D": {"assetSkins": [1]}}),
                 400)  # fmt: skip
    assert_error(api.post("/api/v1/call-tokens", {"id": "a", "expires_in": 10}), 400,
                 field="expires_in")  # fmt: skip
    assert_error(api.post("/api/v1/call-tokens", raw="{not json"), 400)
    assert_error(api.post("/api/v1/call-tokens", {"id": "a\x00b"}), 400, field="id")
    assert_error(
        api.post("/api/v1/call-tokens", {"id": "a", "avatar3D": {"assetSkins": {"k": "\x00"}}}), 400
    )
    assert_error(api.post("/api/v1/call-tokens", {"id": "a"}, key="pk_nope_nope"), 401)


def test_expired_call_token_is_refused(acme):
    token = vouch(acme, "u1")
    user = calls.user_for_token(token=token)
    from django.core import signing

    old = signing.dumps(
        {"t": acme.tenant.pk, "u": user.pk, "x": int(timezone.now().timestamp()) - 1},
        salt=calls.TOKEN_SALT,
    )
    assert calls.user_for_token(token=old) is None


# --- authentication ---------------------------------------------------------------------------


def test_auth_by_first_frame_or_query_and_refusals(acme, settings):
    settings.VIDEOCHAT_AUTH_SECONDS = 2
    token = vouch(acme, "u1", privacyMode=0)

    async def scenario():
        a = Sock(token)
        data = ok(await a.open())
        assert data["user"]["id"] == "u1" and data["user"]["firstName"] == "U1"
        b = Sock(token, query=True)
        assert ok(await b.open())["user"]["id"] == "u1"
        # Before authenticating: an answer, not a close; then the deadline closes it.
        c = Sock()
        assert (await c.ws.connect())[0]
        err(await c.call(REQ, {"targetUser": "u1"}), calls.NOT_AUTHENTICATED)
        assert (await c.ws.receive_output(timeout=6))["code"] == 4401
        # A bad token: an error answer, then closed.
        d = Sock("nope")
        assert (await d.ws.connect())[0]
        err(await d.call("auth", {"token": "nope"}), calls.INVALID_TOKEN)
        assert (await d.ws.receive_output(timeout=2))["code"] == 4401
        # A bad ?token= is refused at the handshake.
        e = Sock("nope", query=True)
        assert (await e.ws.connect()) == (False, 4401)
        assert await CallSocket.objects.filter(user__external_id="u1").acount() == 2
        await a.close()
        await b.close()

    async_to_sync(scenario)()
    assert not CallSocket.objects.exists()


# --- a direct call ----------------------------------------------------------------------------


def test_direct_call_rings_every_socket_and_both_sides_get_tokens(acme, livekit):
    ta, tb = vouch(acme, "alice"), vouch(acme, "bob", companyName="Bobco")

    async def scenario():
        async with Events(acme.tenant.pk) as domain:
            alice, bob1, bob2 = Sock(ta), Sock(tb), Sock(tb)
            for s in (alice, bob1, bob2):
                await s.open()
            answer = await alice.call(REQ, {"targetUser": "bob"})
            request_id = ok(answer)["videochatRequestId"]
            assert answer["type"] == REQ and request_id.startswith("vr_")
            for bob in (bob1, bob2):
                ring = ok(await bob.next(RINGING))
                assert ring["videochatRequestId"] == request_id
                assert ring["user"]["id"] == "alice" and ring["counter"] == 1
                assert [p["id"] for p in ring["participants"]] == ["alice"]
            assert await alice.nothing(RINGING, 0.1)
            # Only the callee may accept.
            err(await alice.call(ACCEPT, {"videochatRequestId": request_id}), calls.NOT_ALLOWED)
            answer = await bob1.call(ACCEPT, {"videochatRequestId": request_id})
            assert answer["type"] == ACCEPT
            callee = ok(answer)
            check_payload(callee, livekit, identity="bob", role_owner=False)
            assert callee["videochatMode"] == "videochat"
            assert callee["user"]["companyName"] == "Bobco"
            caller = ok(await alice.next(CALLER_ACCEPTED))
            check_payload(caller, livekit, identity="alice", role_owner=True)
            assert caller["videochatId"] == callee["videochatId"]
            assert caller["room"] == callee["room"]
            assert caller["sharedSecret"] == callee["sharedSecret"]
            assert caller["uid"] != callee["uid"]
            assert ok(await bob2.next(ACCEPTED)) == {"videochatRequestId": request_id}
            assert await bob1.nothing(ACCEPTED, 0.1)
            # Answered once: a second accept from the other device is refused.
            err(await bob2.call(ACCEPT, {"videochatRequestId": request_id}), calls.REQUEST_CLOSED)
            assert await domain.names(2) == ["call.requested", "call.accepted"]
            for s in (alice, bob1, bob2):
                await s.close()
            return callee

    callee = async_to_sync(scenario)()
    call = Call.objects.get(call_id=callee["videochatId"])
    assert call.status == Call.Status.ACTIVE and call.answered_at is not None
    assert call.room.livekit_name == callee["room"] and livekit.get_room(callee["room"])
    # The shared secret is encrypted at rest.
    assert callee["sharedSecret"] not in call.shared_secret
    # The call's room is hidden from room lists and has no join page.
    listed = Api(acme.api_key).get("/api/v1/rooms").json()
    assert listed["total"] == 0
    assert Api(acme.api_key).get(f"/api/v1/rooms/{call.room.room_id}").status_code == 200
    from django.test import Client

    assert Client().get(f"/room/{call.room.room_id}").status_code == 404


def test_unknown_and_unavailable_users(acme, livekit):
    ta = vouch(acme, "alice")
    vouch(acme, "offline")
    tp = vouch(acme, "private", privacyMode=1)
    tb, tc = vouch(acme, "bob"), vouch(acme, "carol")

    async def scenario():
        alice, private, bob, carol = Sock(ta), Sock(tp), Sock(tb), Sock(tc)
        for s in (alice, private, bob, carol):
            await s.open()
        err(await alice.call(REQ, {"targetUser": "nobody"}), 1021)
        err(await alice.call(REQ, {"targetUser": "offline"}), 10011)
        err(await alice.call(REQ, {"targetUser": "private"}), 10011)
        err(await alice.call(REQ, {"targetUser": "alice"}), calls.CANNOT_CALL_SELF)
        ok(await alice.call(REQ, {"targetUser": "bob"}))
        # Bob is ringing already: carol gets 10011.
        err(await carol.call(REQ, {"targetUser": "bob"}), 10011)
        for s in (alice, private, bob, carol):
            await s.close()

    async_to_sync(scenario)()


def test_declines_by_either_side_reach_both_sides(acme, livekit):
    ta, tb = vouch(acme, "alice"), vouch(acme, "bob")

    async def scenario():
        async with Events(acme.tenant.pk) as domain:
            alice, bob1, bob2 = Sock(ta), Sock(tb), Sock(tb)
            for s in (alice, bob1, bob2):
                await s.open()
            rid = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
            answer = await bob1.call(DECLINE, {"videochatRequestId": rid})
            assert answer["type"] == DECLINE and ok(answer) == {}
            for s in (alice, bob1, bob2):
                declined = ok(await s.next(DECLINED))
                assert declined == {"videochatRequestId": rid, "reason": "declined"}
            err(await bob2.call(ACCEPT, {"videochatRequestId": rid}), calls.REQUEST_CLOSED)
            # The caller withdraws the next one.
            rid2 = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
            ok(await alice.call(DECLINE, {"videochatRequestId": rid2}))
            for s in (alice, bob1, bob2):
                assert ok(await s.next(DECLINED))["reason"] == "cancelled"
            names = await domain.names(4)
            assert names == ["call.requested", "call.declined", "call.requested", "call.cancelled"]
            for s in (alice, bob1, bob2):
                await s.close()
            return rid, rid2

    rid, rid2 = async_to_sync(scenario)()
    assert CallRequest.objects.get(request_id=rid).call.status == Call.Status.DECLINED
    assert CallRequest.objects.get(request_id=rid2).call.status == Call.Status.CANCELLED
    assert not Room.objects.exists()  # no room for calls never answered


def test_unanswered_request_expires_after_45_seconds(acme, livekit):
    from conferences import tasks

    ta, tb = vouch(acme, "alice"), vouch(acme, "bob")

    async def scenario():
        alice, bob = Sock(ta), Sock(tb)
        await alice.open()
        await bob.open()
        rid = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
        request = await CallRequest.objects.aget(request_id=rid)
        assert 44 <= (request.expires_at - request.created_at).total_seconds() <= 46
        from channels.db import database_sync_to_async

        # 44 s on, nothing happens; 46 s on, the sweep expires it exactly once.
        later = request.created_at + dt.timedelta(seconds=44)
        assert await database_sync_to_async(calls.expire_due)(now=later) == 0
        later = request.created_at + dt.timedelta(seconds=46)
        assert await database_sync_to_async(calls.expire_due)(now=later) == 1
        assert await database_sync_to_async(calls.expire_due)(now=later) == 0
        for s in (alice, bob):
            assert ok(await s.next(DECLINED)) == {"videochatRequestId": rid, "reason": "expired"}
        err(await bob.call(ACCEPT, {"videochatRequestId": rid}), calls.REQUEST_CLOSED)
        # The beat task runs the same sweep (already past its time: answered by the task).
        rid2 = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
        await CallRequest.objects.filter(request_id=rid2).aupdate(expires_at=timezone.now())
        err(await bob.call(ACCEPT, {"videochatRequestId": rid2}), calls.REQUEST_CLOSED)
        assert await database_sync_to_async(tasks.expire_call_requests)() == 1
        assert ok(await alice.next(DECLINED))["videochatRequestId"] == rid2
        await alice.close()
        await bob.close()
        return rid

    rid = async_to_sync(scenario)()
    assert CallRequest.objects.get(request_id=rid).call.status == Call.Status.MISSED


def test_caller_disconnect_cancels_the_request(acme, livekit):
    ta, tb = vouch(acme, "alice"), vouch(acme, "bob")

    async def scenario():
        alice, alice_phone, bob = Sock(ta), Sock(ta), Sock(tb)
        for s in (alice, alice_phone, bob):
            await s.open()
        rid = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
        await bob.next(RINGING)
        await alice.close()
        declined = ok(await bob.next(DECLINED))
        assert declined == {"videochatRequestId": rid, "reason": "cancelled"}
        assert ok(await alice_phone.next(DECLINED))["reason"] == "cancelled"
        err(await bob.call(ACCEPT, {"videochatRequestId": rid}), calls.REQUEST_CLOSED)
        await alice_phone.close()
        await bob.close()

    async_to_sync(scenario)()


def test_same_user_ids_in_two_tenants_never_meet(acme, outsider, livekit):
    a1, a2 = vouch(acme, "u1"), vouch(acme, "u2")
    b1, b2 = vouch(outsider, "u1"), vouch(outsider, "u2")

    async def scenario():
        socks = [Sock(t) for t in (a1, a2, b1, b2)]
        for s in socks:
            await s.open()
        acme_u1, acme_u2, other_u1, other_u2 = socks
        rid = ok(await acme_u1.call(REQ, {"targetUser": "u2"}))["videochatRequestId"]
        assert ok(await acme_u2.next(RINGING))["user"]["id"] == "u1"
        assert await other_u2.nothing(RINGING)
        # The other tenant's u2 cannot answer, decline or merge acme's request: not found.
        err(await other_u2.call(ACCEPT, {"videochatRequestId": rid}), calls.REQUEST_NOT_FOUND)
        err(await other_u2.call(DECLINE, {"videochatRequestId": rid}), calls.REQUEST_NOT_FOUND)
        # Its u1 calling u2 rings its own u2 only.
        ok(await other_u1.call(REQ, {"targetUser": "u2"}))
        assert ok(await other_u2.next(RINGING))["user"]["id"] == "u1"
        assert await acme_u2.nothing(RINGING)
        callee = ok(await acme_u2.call(ACCEPT, {"videochatRequestId": rid}))
        # Another tenant's videochat id is unknown too.
        err(
            await other_u1.call(INVITE, {"targetUser": "u2", "videochatId": callee["videochatId"]}),
            calls.VIDEOCHAT_NOT_FOUND,
        )
        for s in socks:
            await s.close()

    async_to_sync(scenario)()


def test_invite_makes_a_three_way_call_and_merge_brings_a_caller_in(acme, livekit):
    ta, tb, tc, td = (vouch(acme, n) for n in ("alice", "bob", "carol", "dave"))

    async def scenario():
        alice, bob, carol, dave = Sock(ta), Sock(tb), Sock(tc), Sock(td)
        for s in (alice, bob, carol, dave):
            await s.open()
        rid = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
        first = ok(await bob.call(ACCEPT, {"videochatRequestId": rid}))
        await alice.next(CALLER_ACCEPTED)
        call_id = first["videochatId"]
        # Outsiders of the call cannot invite into it; invitees follow 1021 / 10011.
        err(await carol.call(INVITE, {"targetUser": "dave", "videochatId": call_id}), 1013)
        err(await bob.call(INVITE, {"targetUser": "zed", "videochatId": call_id}), 1021)
        err(await bob.call(INVITE, {"targetUser": "alice", "videochatId": call_id}), 10011)
        answer = await bob.call(INVITE, {"targetUser": "carol", "videochatId": call_id})
        assert answer["type"] == INVITE
        invite_id = ok(answer)["videochatRequestId"]
        ring = ok(await carol.next(RINGING))
        assert ring["videochatRequestId"] == invite_id and ring["user"]["id"] == "bob"
        assert ring["counter"] == 2
        assert sorted(p["id"] for p in ring["participants"]) == ["alice", "bob"]
        joined = ok(await carol.call(ACCEPT, {"videochatRequestId": invite_id}))
        check_payload(joined, livekit, identity="carol", role_owner=False)
        assert joined["videochatId"] == call_id and joined["room"] == first["room"]
        assert joined["videochatMode"] == "conference"
        assert joined["sharedSecret"] == first["sharedSecret"]
        # Dave calls alice directly while she is in the call; she merges him in.
        direct = ok(await dave.call(REQ, {"targetUser": "alice"}))["videochatRequestId"]
        assert ok(await alice.next(RINGING))["videochatRequestId"] == direct
        err(await carol.call(MERGE, {"videochatId": call_id, "videochatRequestId": direct}),
            calls.REQUEST_NOT_FOUND)  # fmt: skip
        answer = await alice.call(MERGE, {"videochatId": call_id, "videochatRequestId": direct})
        assert answer["type"] == MERGE and ok(answer) == {}
        assert ok(await alice.next(ACCEPTED)) == {"videochatRequestId": direct}
        merged = ok(await dave.next(CALLER_ACCEPTED))
        check_payload(merged, livekit, identity="dave", role_owner=False)
        assert merged["videochatId"] == call_id and merged["room"] == first["room"]
        for s in (alice, bob, carol, dave):
            await s.close()
        return call_id, direct

    call_id, direct = async_to_sync(scenario)()
    call = Call.objects.get(call_id=call_id)
    assert call.mode == "conference"
    assert sorted(call.members.values_list("user__external_id", flat=True)) == [
        "alice", "bob", "carol", "dave"
    ]  # fmt: skip
    pending = CallRequest.objects.get(request_id=direct).call
    assert pending.status == Call.Status.MERGED and pending.merged_into == call


def test_call_ends_when_livekit_says_only_one_is_left(acme, livekit, live_server):
    from asgiref.sync import sync_to_async

    ta, tb = vouch(acme, "alice"), vouch(acme, "bob")

    async def scenario():
        alice, bob = Sock(ta), Sock(tb)
        await alice.open()
        await bob.open()
        async with Events(acme.tenant.pk) as domain:
            rid = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
            callee = ok(await bob.call(ACCEPT, {"videochatRequestId": rid}))
            caller = ok(await alice.next(CALLER_ACCEPTED))
            livekit.join(callee["token"])
            livekit.join(caller["token"])
            await domain.names(2)
            # Bob hangs up: LiveKit's webhook says so, and the call (and its room) end.
            livekit.remove_participant_local(callee["room"], "bob")
            event = livekit.make_event("participant_left", room=callee["room"], identity="bob")
            url = f"{live_server.url}/livekit/webhook"
            assert await sync_to_async(livekit.send_webhook)(url, event) == 200
            assert await domain.names(1) == ["call.ended"]
        await alice.close()
        await bob.close()
        return callee

    callee = async_to_sync(scenario)()
    call = Call.objects.get(call_id=callee["videochatId"])
    assert call.status == Call.Status.ENDED and call.ended_at >= call.answered_at
    assert call.room.status == Room.Status.COMPLETED
    assert livekit.get_room(callee["room"]) is None
    assert not call.members.filter(left_at__isnull=True).exists()


# --- bad input and floods ---------------------------------------------------------------------


def test_bad_frames_get_error_envelopes_and_close_nothing(acme, livekit):
    ta, tb = vouch(acme, "alice"), vouch(acme, "bob")

    async def scenario():
        alice, bob = Sock(ta), Sock(tb)
        await alice.open()
        await bob.open()
        cases = [
            ("{not json", calls.INVALID_FRAME),
            ("[1, 2]", calls.INVALID_FRAME),
            ('"text"', calls.INVALID_FRAME),
            ('{"data": {}}', calls.INVALID_FRAME),
            ("[" * 5000 + "]" * 5000, calls.INVALID_FRAME),
            (json.dumps({"type": REQ, "data": {"targetUser": "x" * 20000}}), calls.INVALID_FRAME),
            (json.dumps({"type": "videochat:nope", "data": {}, "event": {"id": "e1"}}),
             calls.UNKNOWN_TYPE),
            (json.dumps({"type": REQ, "data": [], "event": {"id": "e2"}}), calls.INVALID_DATA),
            (json.dumps({"type": REQ, "data": {}, "event": {"id": "e3"}}), calls.INVALID_DATA),
            (json.dumps({"type": REQ, "data": {"targetUser": 7}}), calls.INVALID_DATA),
            (json.dumps({"type": REQ, "data": {"targetUser": "a\x00"}}), 1021),
            (json.dumps({"type": ACCEPT, "data": {"videochatRequestId": "vr_nope"}}),
             calls.REQUEST_NOT_FOUND),
            (json.dumps({"type": ACCEPT, "data": {"videochatRequestId": "\x00"}}),
             calls.REQUEST_NOT_FOUND),
            (json.dumps({"type": MERGE, "data": {"videochatId": "vc_x",
                                                  "videochatRequestId": "vr_x"}}),
             calls.VIDEOCHAT_NOT_FOUND),
        ]  # fmt: skip
        for text, code in cases:
            await alice.send_raw(text)
            frame = await alice.take(lambda f: f["error"]["status"])
            err(frame, code)
        await alice.send_raw(binary=b"\x00\x01")
        err(await alice.take(lambda f: f["error"]["status"]), calls.INVALID_FRAME)
        # The event id is echoed on errors too.
        await alice.send_raw(json.dumps({"type": "videochat:nope", "event": {"id": "mine"}}))
        frame = await alice.take(lambda f: f["error"]["status"])
        assert frame["event"]["id"] == "mine" and frame["type"] == "videochat:nope"
        # Both sockets still work.
        rid = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
        assert ok(await bob.next(RINGING))["videochatRequestId"] == rid
        await alice.close()
        await bob.close()

    async_to_sync(scenario)()


def test_a_flooding_socket_is_throttled_then_closed_alone(acme, livekit, settings):
    settings.VIDEOCHAT_BURST = 5
    settings.VIDEOCHAT_RATE_PER_SECOND = 5
    settings.VIDEOCHAT_FLOOD_CLOSE_AFTER = 40
    ta, tb = vouch(acme, "alice"), vouch(acme, "bob")

    async def scenario():
        alice, bob = Sock(ta), Sock(tb)
        await alice.open()
        await bob.open()
        for _ in range(20):
            await alice.send("videochat:nope", {})
        limited = await alice.take(lambda f: f["error"]["code"] == calls.RATE_LIMITED)
        assert limited["error"]["status"] is True
        for _ in range(60):
            await alice.send("videochat:nope", {})
        while True:  # the flood goes on: the socket is closed (4429)
            output = await alice.ws.receive_output(timeout=2)
            if output["type"] == "websocket.close":
                assert output["code"] == 4429
                break
        # Bob's socket is untouched.
        err(await bob.call(REQ, {"targetUser": "nobody"}), 1021)
        await bob.close()

    async_to_sync(scenario)()


# --- two web workers sharing state through Redis ----------------------------------------------


@pytest.fixture
def two_workers(settings):
    """Two consumer instances, each with its own Redis channel layer (as two web processes
    behind a load balancer have); all state in the database."""
    import os

    from channels.routing import URLRouter
    from django.urls import path

    from conferences.videochat import VideochatConsumer
    from tests.conftest import REQUIRE_SERVICES

    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        if REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 needs REDIS_URL")
        pytest.skip("needs Redis (REDIS_URL)")
    layer = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 10}]},
    }
    settings.CHANNEL_LAYERS = {"default": layer, "worker2": {**layer}}

    class SecondWorker(VideochatConsumer):
        channel_layer_alias = "worker2"

    from dashboard.asgi import application

    second = URLRouter([path("ws/videochat", SecondWorker.as_asgi())])
    return application, second


def test_two_workers_share_calls_through_redis(acme, livekit, two_workers):
    first, second = two_workers
    ta, tb = vouch(acme, "alice"), vouch(acme, "bob")

    async def scenario():
        alice = Sock(ta, application=second)
        bob_laptop, bob_phone = Sock(tb, application=first), Sock(tb, application=second)
        for s in (alice, bob_laptop, bob_phone):
            await s.open()
        # Two layer instances: their channel names carry two different client prefixes.
        names = [n async for n in CallSocket.objects.values_list("channel_name", flat=True)]
        assert len({n.split("!")[0] for n in names}) == 2, names
        rid = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
        for bob in (bob_laptop, bob_phone):
            assert ok(await bob.next(RINGING))["videochatRequestId"] == rid
        callee = ok(await bob_laptop.call(ACCEPT, {"videochatRequestId": rid}))
        caller = ok(await alice.next(CALLER_ACCEPTED))
        assert caller["videochatId"] == callee["videochatId"]
        livekit.verify_join_token(caller["token"], room=callee["room"])
        assert ok(await bob_phone.next(ACCEPTED)) == {"videochatRequestId": rid}
        # Presence is shared too: bob's phone (worker 2) is enough to be reachable.
        await bob_laptop.close()
        rid2 = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
        assert ok(await bob_phone.next(RINGING))["videochatRequestId"] == rid2
        ok(await bob_phone.call(DECLINE, {"videochatRequestId": rid2}))
        assert ok(await alice.next(DECLINED))["reason"] == "declined"
        await alice.close()
        await bob_phone.close()

    async_to_sync(scenario)()


# --- end to end over a served app -------------------------------------------------------------


@pytest.fixture
def served(transactional_db, livekit):
    from tests.browser.conftest import LiveServer

    server = LiveServer()
    yield server
    server.stop()


def test_a_call_over_a_served_app_with_real_websockets(acme, livekit, served):
    """uvicorn serves the project's ASGI app on 127.0.0.1: the token from the HTTP API, real
    websockets (first-frame auth and ?token=), both sides end with verified LiveKit tokens."""
    import asyncio

    import httpx
    from websockets.asyncio.client import connect

    ws_base = served.url.replace("http://", "ws://")

    async def scenario():
        async with httpx.AsyncClient(base_url=served.url, trust_env=False, timeout=10) as http:
            tokens = {}
            for name in ("alice", "bob"):
                response = await http.post(
                    "/api/v1/call-tokens",
                    json={"id": name, "firstName": name.title()},
                    headers={"X-API-Key": acme.api_key},
                )
                assert response.status_code == 201, response.text
                tokens[name] = response.json()["token"]
        async with (
            connect(f"{ws_base}/ws/videochat", origin=served.url, proxy=None) as alice,
            connect(
                f"{ws_base}/ws/videochat?token={tokens['bob']}", origin=served.url, proxy=None
            ) as bob,
        ):

            async def frame(ws, kind):
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
                    if message["type"] == kind:
                        return message

            def send(ws, kind, data, event_id):
                message = {"type": kind, "data": data, "event": {"id": event_id, "date": 1}}
                return ws.send(json.dumps(message))

            assert ok(await frame(bob, "auth"))["user"]["id"] == "bob"
            await send(alice, "auth", {"token": tokens["alice"]}, "a0")
            assert (await frame(alice, "auth"))["event"]["id"] == "a0"
            await send(alice, REQ, {"targetUser": "bob"}, "a1")
            answer = await frame(alice, REQ)
            assert answer["event"]["id"] == "a1"
            rid = ok(answer)["videochatRequestId"]
            assert ok(await frame(bob, RINGING))["user"]["firstName"] == "Alice"
            await send(bob, ACCEPT, {"videochatRequestId": rid}, "b1")
            callee = await frame(bob, ACCEPT)
            assert callee["event"]["id"] == "b1"
            caller = await frame(alice, CALLER_ACCEPTED)
            return ok(caller), ok(callee)

    caller, callee = asyncio.run(scenario())
    check_payload(caller, livekit, identity="alice", role_owner=True)
    check_payload(callee, livekit, identity="bob", role_owner=False)
    assert caller["room"] == callee["room"] and livekit.get_room(caller["room"]) is not None
    # Both join the LiveKit room with them (the double checks them as livekit-server does).
    livekit.join(caller["token"])
    livekit.join(callee["token"])
    assert {p.identity for p in livekit.participants(caller["room"])} == {"alice", "bob"}


def test_declined_invitation_and_a_call_stopped_through_the_api(acme, livekit):
    ta, tb, tc = (vouch(acme, n) for n in ("alice", "bob", "carol"))

    async def scenario():
        alice, bob, carol = Sock(ta), Sock(tb), Sock(tc)
        for s in (alice, bob, carol):
            await s.open()
        rid = ok(await alice.call(REQ, {"targetUser": "bob"}))["videochatRequestId"]
        first = ok(await bob.call(ACCEPT, {"videochatRequestId": rid}))
        await alice.next(CALLER_ACCEPTED)
        invite = ok(await alice.call(INVITE, {"targetUser": "carol",
                                              "videochatId": first["videochatId"]}))  # fmt: skip
        invite_id = invite["videochatRequestId"]
        await carol.next(RINGING)
        ok(await carol.call(DECLINE, {"videochatRequestId": invite_id}))
        for s in (alice, carol):
            assert ok(await s.next(DECLINED)) == {
                "videochatRequestId": invite_id,
                "reason": "declined",
            }
        assert await bob.nothing(DECLINED, 0.2)  # only the two sides of that ringing
        # A second invitation rings while the tenant stops the call's room through the API:
        # the call ends and the invitation stops ringing on both sides.
        invite_id = ok(await alice.call(INVITE, {"targetUser": "carol",
                                                 "videochatId": first["videochatId"]}))[
            "videochatRequestId"
        ]  # fmt: skip
        await carol.next(RINGING)
        from asgiref.sync import sync_to_async

        response = await sync_to_async(Api(acme.api_key).post)(
            f"/api/v1/rooms/{first['room']}/stop"
        )
        assert response.status_code == 200, response.content
        for s in (alice, carol):
            declined = ok(await s.next(DECLINED))
            assert declined == {"videochatRequestId": invite_id, "reason": "videochat ended"}
        err(await carol.call(ACCEPT, {"videochatRequestId": invite_id}), calls.REQUEST_CLOSED)
        err(
            await bob.call(INVITE, {"targetUser": "carol", "videochatId": first["videochatId"]}),
            calls.VIDEOCHAT_NOT_FOUND,
        )
        for s in (alice, bob, carol):
            await s.close()
        return first

    first = async_to_sync(scenario)()
    call = Call.objects.get(call_id=first["videochatId"])
    assert call.status == Call.Status.ENDED and call.end_reason == "room ended"
    assert livekit.get_room(first["room"]) is None
