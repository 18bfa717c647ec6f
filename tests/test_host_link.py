"""Host links: rotating one (v1, dashboard) voids every earlier link and the host sessions
they opened, open host sockets close; a host session lasts for the room's life only."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from conferences import sessions
from conferences.models import Room
from conferences.services import rooms as room_services
from tests.join_helpers import Browser, make_room


def _rotate(key: str, room_id: str):
    return Client().post(f"/api/v1/rooms/{room_id}/host-link/rotate", headers={"X-API-Key": key})


def _host_api(secret: str, room: Room):
    return Client().get(
        f"/api/v1/rooms/{room.room_id}/host/waiting", headers={"X-Host-Secret": secret}
    )


def test_rotating_voids_old_links_and_their_sessions(owner, livekit):
    room = make_room(owner)
    old_secret = room.host_secret
    host = Browser(room)
    assert host.host_page().status_code == 200 and host.config()["isHost"]

    response = _rotate(owner.api_key, room.room_id)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    new_url = response.json()["host_url"]
    room.refresh_from_db()
    assert room.host_secret != old_secret and new_url.endswith(f"/host/{room.host_secret}")

    assert not host.config()["isHost"]  # the session the old link opened is over
    assert host.host_page(old_secret).status_code == 404
    assert _host_api(old_secret, room).status_code == 404
    assert _host_api(room.host_secret, room).status_code == 200
    assert host.host_page(room.host_secret).status_code == 200 and host.config()["isHost"]


def test_rotate_is_the_tenants_own(owner, outsider, livekit):
    room = make_room(owner)
    assert _rotate(outsider.api_key, room.room_id).status_code == 404
    assert _rotate(owner.api_key, "nosuchroom").status_code == 404
    # Holding the host link does not let one rotate it.
    response = Client().post(
        f"/api/v1/rooms/{room.room_id}/host-link/rotate",
        headers={"X-Host-Secret": room.host_secret},
    )
    assert response.status_code == 401


def test_the_dashboard_button_rotates(owner, outsider, livekit):
    room = make_room(owner)
    old_secret = room.host_secret
    member = Client()
    member.force_login(owner.user)
    url = f"/dashboard/rooms/{room.room_id}/host-link/rotate/"
    assert member.post(url).status_code == 200  # asks first
    room.refresh_from_db()
    assert room.host_secret == old_secret
    assert member.post(url, {"confirm": "yes"}).status_code == 302
    room.refresh_from_db()
    assert room.host_secret != old_secret
    page = member.get(f"/dashboard/rooms/{room.room_id}/").content.decode()
    assert f"/host/{room.host_secret}" in page and old_secret not in page
    stranger = Client()
    stranger.force_login(outsider.user)
    assert stranger.post(url, {"confirm": "yes"}).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_an_open_host_socket_closes_on_rotation(owner, livekit):
    from dashboard.asgi import application

    room = make_room(owner, waiting_room_enabled=True)
    host = Browser(room)
    host.host_page()
    cookie = host.client.cookies["sessionid"].value

    async def scenario():
        ws = WebsocketCommunicator(
            application,
            f"/ws/rooms/{room.room_id}/host",
            headers=[
                (b"origin", b"http://testserver"),
                (b"host", b"testserver"),
                (b"cookie", f"sessionid={cookie}".encode()),
            ],
        )
        assert (await ws.connect())[0]
        await ws.receive_json_from()
        await database_sync_to_async(room_services.rotate_host_link)(room=room)
        closed = await ws.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4403}

    async_to_sync(scenario)()


def test_a_host_session_lasts_the_rooms_life(owner, livekit):
    room = make_room(owner)
    host = Browser(room)
    host.host_page()
    room_services.start_room(room=room)
    assert host.config()["isHost"]
    room_services.stop_room(room=room)
    # The run it was opened for has ended: the link is needed again.
    assert not host.config()["isHost"]
    host.host_page()
    assert host.config()["isHost"]


def test_a_host_session_never_outlives_a_day(owner, livekit):
    room = make_room(owner)
    host = Browser(room)
    host.host_page()
    session = host.client.session
    proof = session[sessions.HOSTS][room.room_id]
    session[sessions.HOSTS] = {room.room_id: {**proof, "since": time.time() - 24 * 3600 - 1}}
    session.save()
    assert not host.config()["isHost"]
