"""Item 1 as an attacker tries it (the Jitsi lobby-bypass class, jitsi-meet #7676): a guest
the host removed reopens its old lobby socket, or copies its session cookie to another
client, to get a fresh LiveKit token without a new admission. Removal ends the admission;
"ban" stops the same browser, address, account or email from asking again."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from conferences.models import WaitingEntry
from conferences.services import rooms as room_services
from tests.join_helpers import Browser, make_room

LOBBY = {"waiting_room_enabled": True}
GUEST_IP, THIEF_IP = "192.0.2.10", "203.0.113.99"


def _app():
    from dashboard.asgi import application

    return application


def _socket(room, entry_id: str, cookie: str, ip: str) -> WebsocketCommunicator:
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    ws = WebsocketCommunicator(_app(), f"/ws/rooms/{room.room_id}/lobby/{entry_id}", headers)
    ws.scope["client"] = (ip, 40000)
    return ws


async def _state(room, entry_id: str, cookie: str, ip: str) -> dict:
    """What a lobby socket opened with this cookie from this address is told first."""
    ws = _socket(room, entry_id, cookie, ip)
    connected, code = await ws.connect()
    if not connected:
        return {"type": "refused", "code": code}
    message = await ws.receive_json_from(timeout=3)
    await ws.disconnect()
    return message


def _host(room, path: str, body: dict | None = None):
    return Client().post(
        f"/api/v1/rooms/{room.room_id}/host/{path}",
        body or {},
        content_type="application/json",
        headers={"X-Host-Secret": room.host_secret},
    )


def _admit(room, entry_id: str) -> None:
    assert _host(room, f"waiting/{entry_id}/admit").json()["admitted"] == [entry_id]


def _let_in(room, guest: Browser) -> tuple[str, str]:
    """The guest asks, the host admits: (entry_id, identity)."""
    asked = guest.join("Mallory").json()
    _admit(room, asked["entry_id"])
    return asked["entry_id"], asked["identity"]


def _admitted_guest(owner) -> tuple:
    """A live waiting-room room and a guest let in: (room, guest, entry_id, identity, cookie)."""
    room = make_room(owner, **LOBBY)
    room_services.start_room(room=room)
    guest = Browser(room, ip=GUEST_IP)
    entry_id, identity = _let_in(room, guest)
    return room, guest, entry_id, identity, guest.client.cookies["sessionid"].value


@pytest.mark.django_db(transaction=True)
def test_removal_ends_the_admission_for_the_old_socket_and_a_copied_cookie(owner, livekit):
    room, guest, entry_id, identity, cookie = _admitted_guest(owner)

    async def scenario():
        first = await _state(room, entry_id, cookie, GUEST_IP)
        assert first["type"] == "admitted" and first["identity"] == identity
        # The session cookie copied to another client is not the admitted guest.
        stolen = await _state(room, entry_id, cookie, THIEF_IP)
        assert stolen["type"] == "error" and "token" not in stolen

        removed = await database_sync_to_async(_host)(room, f"participants/{identity}/remove")
        assert removed.status_code == 200, removed.content

        # The old socket, reopened: no token, it was removed.
        again = await _state(room, entry_id, cookie, GUEST_IP)
        assert again["type"] == "rejected" and "token" not in again
        # It asks again; the host says no; the old admission still gives nothing.
        asked = await database_sync_to_async(guest.join)("Mallory")
        assert asked.status_code == 202
        new_entry = asked.json()["entry_id"]
        await database_sync_to_async(_host)(room, f"waiting/{new_entry}/reject")
        for entry in (entry_id, new_entry):
            for ip in (GUEST_IP, THIEF_IP):
                state = await _state(room, entry, cookie, ip)
                assert "token" not in state, (entry, ip, state)

    async_to_sync(scenario)()
    assert WaitingEntry.objects.get(entry_id=entry_id).status == "removed"


@pytest.mark.django_db(transaction=True)
def test_asking_again_withdraws_an_earlier_admission(owner, livekit):
    room, guest, entry_id, _, cookie = _admitted_guest(owner)
    assert guest.join("Mallory").status_code == 202

    async def scenario():
        state = await _state(room, entry_id, cookie, GUEST_IP)
        assert "token" not in state

    async_to_sync(scenario)()


@pytest.mark.parametrize("how", ["body", "query"])
def test_a_banned_guest_cannot_ask_again_this_session(owner, livekit, how):
    room = make_room(owner, **LOBBY)
    room_services.start_room(room=room)
    guest = Browser(room, ip=GUEST_IP)
    _, identity = _let_in(room, guest)
    path = f"participants/{identity}/remove"
    if how == "body":
        response = _host(room, path, {"ban": True})
    else:
        response = Client().delete(
            f"/api/v1/rooms/{room.room_id}/participants/{identity}?ban=true",
            headers={"X-API-Key": owner.api_key},
        )
    assert response.status_code == 200, response.content

    refused = guest.join("Mallory")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "BANNED"
    # A fresh browser (new cookies) from the same address is the same guest.
    fresh = Browser(room, ip=GUEST_IP).join("Not Mallory")
    assert fresh.status_code == 403 and fresh.json()["error"]["code"] == "BANNED"
    # Someone else may still ask.
    assert Browser(room, ip="198.51.100.200").join("Grace").status_code == 202
    # The ban lasts for this live session only.
    room_services.stop_room(room=room)
    room_services.start_room(room=room)
    assert guest.join("Mallory").status_code == 202


def test_ban_must_be_a_boolean(owner, livekit):
    room = make_room(owner, **LOBBY)
    room_services.start_room(room=room)
    _, identity = _let_in(room, Browser(room, ip=GUEST_IP))
    bad = _host(room, f"participants/{identity}/remove", {"ban": "yes"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "ban"


def test_the_dashboard_removes_and_bans(owner, livekit):
    room = make_room(owner, **LOBBY)
    room_services.start_room(room=room)
    guest = Browser(room, ip=GUEST_IP)
    _, identity = _let_in(room, guest)
    member = Client()
    member.force_login(owner.user)
    url = f"/dashboard/rooms/{room.room_id}/participants/{identity}/remove/"
    response = member.post(url, {"confirm": "yes", "ban": "1"})
    assert response.status_code == 302, response.content
    assert guest.join("Mallory").json()["error"]["code"] == "BANNED"


@pytest.mark.django_db(transaction=True)
def test_coming_back_with_the_old_token_is_put_out_again(live_server, owner, livekit):
    """The LiveKit token the guest held before removal still lives a few minutes: LiveKit
    reports the rejoin and Parley removes the identity again."""
    room, _, _, identity, _ = _admitted_guest(owner)
    url = f"{live_server.url}/livekit/webhook"
    stayed = livekit.make_event("participant_joined", room=room.room_id, identity=identity)
    assert livekit.send_webhook(url, stayed) == 200
    assert livekit.calls_to("RemoveParticipant") == []  # not removed: nothing happens
    assert _host(room, f"participants/{identity}/remove").status_code == 200
    removals = len(livekit.calls_to("RemoveParticipant"))
    back = livekit.make_event("participant_joined", room=room.room_id, identity=identity)
    assert livekit.send_webhook(url, back) == 200
    assert len(livekit.calls_to("RemoveParticipant")) == removals + 1
    assert livekit.calls_to("RemoveParticipant")[-1].request.identity == identity
