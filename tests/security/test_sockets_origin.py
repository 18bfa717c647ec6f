"""Issue 17, item 15, as an attacker would try it: a tenant verifies a custom domain it
controls, then a page on that domain opens websockets to Parley. A verified domain may open
only the join-page sockets of its own tenant's rooms; never the dashboard socket (another
tenant's live events, with the visiting member's session cookie), the videochat socket, or
another tenant's rooms. Everything goes through the project's ASGI application."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from branding.models import CustomDomain
from conferences.services import rooms as room_services
from tests.conftest import make_member

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCT = "http://testserver"
OWN_DOMAIN = "https://meet.acme.test"  # Acme's verified domain
ATTACKER = "https://meet.mallory.test"  # Mallory's verified domain


def _app():
    from dashboard.asgi import application

    return application


def _verify(tenant, domain: str) -> None:
    CustomDomain.objects.create(tenant=tenant, domain=domain, verified_at=timezone.now())


@pytest.fixture
def world(livekit):
    acme, mallory = make_member("Acme"), make_member("Mallory")
    _verify(acme.tenant, "meet.acme.test")
    _verify(mallory.tenant, "meet.mallory.test")
    acme_room = room_services.create_room(tenant=acme.tenant, data={"name": "Acme weekly"})
    mallory_room = room_services.create_room(tenant=mallory.tenant, data={"name": "Bait"})
    victim = Client()
    victim.force_login(acme.user)  # Acme's owner, signed in to the dashboard
    victim.get("/dashboard/")
    return {
        "acme_room": acme_room.room_id,
        "mallory_room": mallory_room.room_id,
        "cookie": f"sessionid={victim.cookies['sessionid'].value}",
    }


def _opens(path: str, origin: str, cookie: str | None = None) -> bool:
    async def scenario() -> bool:
        headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        ws = WebsocketCommunicator(_app(), path, headers=headers)
        connected, _ = await ws.connect()
        if connected:
            await ws.disconnect()
        return connected

    return async_to_sync(scenario)()


def test_attacker_domain_cannot_open_the_dashboard_socket_with_a_victims_session(world):
    assert _opens("/ws/dashboard", PRODUCT, world["cookie"])  # the product's own pages may
    assert not _opens("/ws/dashboard", ATTACKER, world["cookie"])
    assert not _opens("/ws/dashboard", OWN_DOMAIN, world["cookie"])  # join pages only there


def test_attacker_domain_cannot_open_another_tenants_room_sockets(world):
    room = world["acme_room"]
    for path in (
        f"/ws/rooms/{room}/status",
        f"/ws/rooms/{room}/host",
        f"/ws/rooms/{room}/stage",
        f"/ws/rooms/{room}/lobby/abcdefgh",
    ):
        assert not _opens(path, ATTACKER, world["cookie"]), path
    assert not _opens("/ws/videochat", ATTACKER)
    assert not _opens("/ws/videochat", OWN_DOMAIN)
    # Its own rooms' join-page sockets do open there.
    assert _opens(f"/ws/rooms/{world['mallory_room']}/status", ATTACKER)


def test_own_domain_opens_its_rooms_join_sockets_only(world):
    assert _opens(f"/ws/rooms/{world['acme_room']}/status", OWN_DOMAIN)
    assert _opens(f"/ws/rooms/{world['acme_room']}/host", OWN_DOMAIN, world["cookie"])
    assert not _opens(f"/ws/rooms/{world['mallory_room']}/status", OWN_DOMAIN)
    assert not _opens("/ws/rooms/nosuchroom1/status", OWN_DOMAIN)
    # A path that only looks like a room socket is not one.
    assert not _opens(f"/ws/rooms/{world['acme_room']}/status/../../dashboard", OWN_DOMAIN)


def test_unverified_domain_opens_nothing(world):
    CustomDomain.objects.filter(domain="meet.mallory.test").update(verified_at=None)
    from django.core.cache import cache

    cache.clear()
    assert not _opens(f"/ws/rooms/{world['mallory_room']}/status", ATTACKER)
