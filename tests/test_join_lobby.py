"""The server-side waiting room: no token before admission, the host's queue and decisions,
the access policy re-checked at admission, and the sockets that carry it all live."""

from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from conferences.access import client_key
from conferences.models import WaitingEntry
from conferences.services import joining
from conferences.services import rooms as room_services
from tests.join_helpers import Browser, make_room

LOBBY = {"waiting_room_enabled": True}


def host_api(room, path: str, method: str = "post", secret: str | None = None):
    client = Client()
    return getattr(client, method)(
        f"/api/v1/rooms/{room.room_id}/host/{path}",
        headers={"X-Host-Secret": secret or room.host_secret},
    )


def test_guest_waits_and_gets_no_token(owner, livekit):
    room = make_room(owner, **LOBBY)
    response = Browser(room).join("Grace")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "waiting" and "token" not in body
    entry = WaitingEntry.objects.get(entry_id=body["entry_id"])
    assert entry.status == "waiting" and entry.name == "Grace" and entry.role == "participant"
    assert body["identity"] == entry.identity
    assert not livekit.calls_to("CreateRoom")


def test_host_sees_the_queue_in_order(owner, livekit):
    room = make_room(owner, **LOBBY)
    Browser(room, ip="192.0.2.1").join("First")
    Browser(room, ip="192.0.2.2").join("Second")
    response = host_api(room, "waiting", "get")
    assert response.status_code == 200
    entries = response.json()["entries"]
    assert [e["name"] for e in entries] == ["First", "Second"]
    assert set(entries[0]) == {
        "entry_id",
        "identity",
        "name",
        "email",
        "waiting_since",
        "waiting_seconds",
    }


CLIENT = client_key("198.51.100.7")  # the address of a Browser() by default


def test_admit_one_then_token_for_that_entry_only(owner, livekit):
    room = make_room(owner, **LOBBY)
    entry_id = Browser(room).join("Grace").json()["entry_id"]
    with pytest.raises(joining.ServiceError):
        joining.token_for_entry(room_id=room.room_id, entry_id=entry_id, client=CLIENT)
    response = host_api(room, f"waiting/{entry_id}/admit")
    assert response.json() == {"admitted": [entry_id], "rejected": []}
    issued = joining.token_for_entry(room_id=room.room_id, entry_id=entry_id, client=CLIENT)
    entry = WaitingEntry.objects.get(entry_id=entry_id)
    claims = livekit.verify_join_token(issued.token, room=room.room_id)
    assert claims["sub"] == entry.identity and claims["name"] == "Grace"
    assert claims["attributes"] == {"role": "participant"}
    assert host_api(room, "waiting", "get").json()["entries"] == []
    # deciding again is a clear 404, not a crash
    assert host_api(room, f"waiting/{entry_id}/admit").status_code == 404


def test_reject_and_reject_all(owner, livekit):
    room = make_room(owner, **LOBBY)
    ids = [Browser(room, ip=f"192.0.2.{i}").join(f"G{i}").json()["entry_id"] for i in range(3)]
    first = host_api(room, f"waiting/{ids[0]}/reject").json()
    assert first["admitted"] == [] and first["rejected"][0]["entry_id"] == ids[0]
    rest = host_api(room, "waiting/reject-all").json()
    assert {r["entry_id"] for r in rest["rejected"]} == set(ids[1:])
    assert set(WaitingEntry.objects.values_list("status", flat=True)) == {"rejected"}


def test_admit_all_rechecks_the_access_policy(owner, livekit):
    room = make_room(owner, access_type="password", password="hunter22", **LOBBY)
    early, late = Browser(room, ip="192.0.2.1"), Browser(room, ip="192.0.2.2")
    early.post("password", {"password": "hunter22"})
    early_id = early.join("Early").json()["entry_id"]
    room_services.update_room(room=room, data={"password": "new-secret"})
    late.post("password", {"password": "new-secret"})
    late_id = late.join("Late").json()["entry_id"]
    result = host_api(room, "waiting/admit-all").json()
    assert result["admitted"] == [late_id]
    [turned_away] = result["rejected"]
    assert turned_away["entry_id"] == early_id
    assert "access rules changed" in turned_away["reason"]


@pytest.mark.django_db(transaction=True)  # the code is mailed on commit
def test_admission_rechecks_a_guest_list(owner, livekit, mailoutbox):
    room = make_room(owner, access_type="whitelist", whitelist_emails=["ann@example.com"], **LOBBY)
    browser = Browser(room)
    browser.post("email", {"email": "ann@example.com"})
    code = mailoutbox[0].body.split("is ")[1][:6]
    browser.post("code", {"email": "ann@example.com", "code": code})
    entry_id = browser.join("Ann").json()["entry_id"]
    assert host_api(room, "waiting", "get").json()["entries"][0]["email"] == "ann@example.com"
    room_services.update_room(room=room, data={"whitelist_emails": ["bob@example.com"]})
    result = host_api(room, f"waiting/{entry_id}/admit").json()
    assert result["admitted"] == [] and "guest list" in result["rejected"][0]["reason"]


def test_hosts_skip_the_lobby(owner, livekit):
    room = make_room(owner, **LOBBY)
    browser = Browser(room)
    browser.host_page()
    assert browser.join("Hanna").json()["status"] == "admitted"


def test_leave_endpoint_takes_the_entry_out(owner, livekit):
    room = make_room(owner, **LOBBY)
    browser = Browser(room)
    entry_id = browser.join().json()["entry_id"]
    # another browser cannot make someone else leave
    assert Browser(room, ip="192.0.2.9").post(f"lobby/{entry_id}/leave").status_code == 404
    assert browser.post(f"lobby/{entry_id}/leave").json() == {"left": True}
    assert WaitingEntry.objects.get(entry_id=entry_id).status == "left"
    assert browser.post(f"lobby/{entry_id}/leave").json() == {"left": False}


def test_ending_the_room_closes_the_lobby(owner, livekit):
    room = make_room(owner, **LOBBY)
    room_services.start_room(room=room)
    entry_id = Browser(room).join().json()["entry_id"]
    assert host_api(room, "end").json()["status"] == "completed"
    assert WaitingEntry.objects.get(entry_id=entry_id).status == "left"


# --- sockets ----------------------------------------------------------------------------------


def _app():
    from dashboard.asgi import application

    return application


async def _until(ws: WebsocketCommunicator, predicate, timeout: float = 3):
    """The next message that satisfies `predicate` (events may bring extra snapshots)."""
    while True:
        message = await ws.receive_json_from(timeout=timeout)
        if predicate(message):
            return message


def _names(message) -> list[str]:
    return [e["name"] for e in message["entries"]]


def _socket(path: str, browser: Browser | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    session = browser.client.cookies.get("sessionid") if browser is not None else None
    if session is not None:
        headers.append((b"cookie", f"sessionid={session.value}".encode()))
    ws = WebsocketCommunicator(_app(), path, headers=headers)
    if browser is not None:  # the socket comes from the browser's own address
        ws.scope["client"] = (browser.client.defaults["REMOTE_ADDR"], 50000)
    return ws


@pytest.mark.django_db(transaction=True)
def test_lobby_round_trip_over_sockets(owner, livekit):
    """Guest waits; the host's socket sees it; admission delivers the token to the guest's
    socket only; the next guest is rejected and told so; closing a page drops the entry."""
    room = make_room(owner, **LOBBY)
    host, guest, other = Browser(room), Browser(room, "192.0.2.1"), Browser(room, "192.0.2.2")
    host.host_page()

    async def scenario():
        host_ws = _socket(f"/ws/rooms/{room.room_id}/host", host)
        assert (await host_ws.connect())[0]
        assert (await host_ws.receive_json_from())["entries"] == []

        joined = await database_sync_to_async(guest.join)("Grace")
        entry_id = joined.json()["entry_id"]
        await _until(host_ws, lambda m: _names(m) == ["Grace"])

        guest_ws = _socket(f"/ws/rooms/{room.room_id}/lobby/{entry_id}", guest)
        assert (await guest_ws.connect())[0]
        assert await guest_ws.receive_json_from() == {"type": "waiting"}
        # Someone else's browser cannot listen in on this entry.
        spy = _socket(f"/ws/rooms/{room.room_id}/lobby/{entry_id}", other)
        connected, code = await spy.connect()
        assert not connected and code == 4403

        response = await database_sync_to_async(host_api)(room, f"waiting/{entry_id}/admit")
        assert response.status_code == 200
        admitted = await guest_ws.receive_json_from(timeout=3)
        assert admitted["type"] == "admitted" and admitted["role"] == "participant"
        claims = livekit.verify_join_token(admitted["token"], room=room.room_id)
        assert claims["sub"] == admitted["identity"] and claims["name"] == "Grace"
        await _until(host_ws, lambda m: _names(m) == [])
        await guest_ws.disconnect()

        rejected_id = (await database_sync_to_async(other.join)("Mallory")).json()["entry_id"]
        await _until(host_ws, lambda m: _names(m) == ["Mallory"])
        other_ws = _socket(f"/ws/rooms/{room.room_id}/lobby/{rejected_id}", other)
        assert (await other_ws.connect())[0]
        await other_ws.receive_json_from()
        await database_sync_to_async(host_api)(room, f"waiting/{rejected_id}/reject")
        message = await other_ws.receive_json_from(timeout=3)
        assert message == {"type": "rejected", "message": "The host did not let you in"}
        await other_ws.disconnect()
        await _until(host_ws, lambda m: _names(m) == [])

        leaver_id = (await database_sync_to_async(other.join)("Leaver")).json()["entry_id"]
        await _until(host_ws, lambda m: _names(m) == ["Leaver"])
        leaver_ws = _socket(f"/ws/rooms/{room.room_id}/lobby/{leaver_id}", other)
        assert (await leaver_ws.connect())[0]
        await leaver_ws.receive_json_from()
        await leaver_ws.disconnect()  # the guest closed the page
        await _until(host_ws, lambda m: _names(m) == [])
        await host_ws.disconnect()
        return leaver_id

    leaver_id = async_to_sync(scenario)()
    assert WaitingEntry.objects.get(entry_id=leaver_id).status == "left"


@pytest.mark.django_db(transaction=True)
def test_host_socket_needs_a_host_session(owner, outsider, livekit):
    room = make_room(owner, **LOBBY)
    guest = Browser(room)
    guest.page()

    async def scenario():
        for browser in (guest, None):
            ws = _socket(f"/ws/rooms/{room.room_id}/host", browser)
            connected, code = await ws.connect()
            assert not connected and code == 4403
        ws = _socket("/ws/rooms/nosuchroom1/status")
        connected, code = await ws.connect()
        assert not connected and code == 4404

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_status_socket_hears_the_room_start(owner, livekit):
    room = make_room(
        owner, room_type="scheduled", start_time=timezone.now() + dt.timedelta(hours=1)
    )

    async def scenario():
        ws = _socket(f"/ws/rooms/{room.room_id}/status")
        assert (await ws.connect())[0]
        assert (await ws.receive_json_from())["status"] == "scheduled"
        await database_sync_to_async(room_services.start_room)(room=room)
        message = await _until(ws, lambda m: m["status"] != "scheduled")
        assert message["type"] == "room" and message["status"] == "open"
        await ws.disconnect()

    async_to_sync(scenario)()
    # Pages hear the room open from the database alone: no LiveKit call per open page.
    assert not livekit.calls_to("ListParticipants")


@pytest.mark.django_db(transaction=True)
def test_waiting_guest_hears_the_room_end(owner, livekit):
    room = make_room(owner, **LOBBY)
    room_services.start_room(room=room)
    guest = Browser(room)
    entry_id = guest.join().json()["entry_id"]

    async def scenario():
        ws = _socket(f"/ws/rooms/{room.room_id}/lobby/{entry_id}", guest)
        assert (await ws.connect())[0]
        await ws.receive_json_from()
        await database_sync_to_async(room_services.stop_room)(room=room)
        assert await ws.receive_json_from(timeout=3) == {"type": "ended"}
        await ws.disconnect()

    async_to_sync(scenario)()
    assert WaitingEntry.objects.get(entry_id=entry_id).status == "left"


@pytest.mark.django_db(transaction=True)
def test_sockets_refuse_foreign_origins(owner, livekit):
    """A page on another site must not open a socket with the visitor's cookies (the host
    socket is authenticated by the session alone)."""
    room = make_room(owner, **LOBBY)
    host = Browser(room)
    host.host_page()
    cookie = f"sessionid={host.client.cookies['sessionid'].value}".encode()

    async def scenario():
        for origin in (b"http://evil.example", None):
            headers = [(b"cookie", cookie)] + ([(b"origin", origin)] if origin else [])
            ws = WebsocketCommunicator(_app(), f"/ws/rooms/{room.room_id}/host", headers=headers)
            connected, _ = await ws.connect()
            assert not connected, origin
        ws = _socket(f"/ws/rooms/{room.room_id}/host", host)
        assert (await ws.connect())[0]
        await ws.disconnect()

    async_to_sync(scenario)()


def test_one_place_per_browser_and_a_cap_per_address(owner, livekit):
    room = make_room(owner, **LOBBY)
    browser = Browser(room)
    first = browser.join("Grace").json()["entry_id"]
    second = browser.join("Grace").json()["entry_id"]
    assert WaitingEntry.objects.get(entry_id=first).status == "left"
    assert [e["entry_id"] for e in host_api(room, "waiting", "get").json()["entries"]] == [second]
    # Fresh sessions from one address (a script dropping cookies) hit a cap.
    for _ in range(joining.LOBBY_PER_CLIENT - 2):
        assert Browser(room).join("Bot").status_code == 202
    response = Browser(room).join("Bot")
    assert response.status_code == 429 and response.json()["error"]["code"] == "TOO_MANY_ATTEMPTS"
    assert Browser(room, ip="203.0.113.77").join("Elsewhere").status_code == 202


def test_entries_whose_page_never_connected_expire(owner, livekit):
    room = make_room(owner, **LOBBY)
    ghost = Browser(room, ip="192.0.2.1").join("Ghost").json()["entry_id"]
    real = Browser(room, ip="192.0.2.2").join("Real").json()["entry_id"]
    joining.lobby_socket_connected(entry_id=real)
    assert len(host_api(room, "waiting", "get").json()["entries"]) == 2  # within the grace
    WaitingEntry.objects.update(
        created_at=timezone.now() - joining.SOCKET_GRACE - dt.timedelta(seconds=1)
    )
    entries = host_api(room, "waiting", "get").json()["entries"]
    assert [e["entry_id"] for e in entries] == [real]
    assert WaitingEntry.objects.get(entry_id=ghost).status == "left"


@pytest.mark.parametrize("waiting", [1, 40])
def test_queue_query_count_is_constant(owner, livekit, waiting, django_assert_num_queries):
    room = make_room(owner, **LOBBY)
    WaitingEntry.objects.bulk_create(
        WaitingEntry(room=room, identity=f"participant-{i}", name=f"Guest {i}", role="participant")
        for i in range(waiting)
    )
    # 1: the room by its public id (host secret checked in memory); 2: the queue.
    with django_assert_num_queries(2):
        response = host_api(room, "waiting", "get")
    assert len(response.json()["entries"]) == waiting
