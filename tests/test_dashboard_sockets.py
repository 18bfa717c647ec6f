"""Issue 17, item 10: a removed member's open dashboard socket is closed on removal, not up
to RECHECK_SECONDS later, whichever process holds it (the notice goes through the channel
layer). A role change makes it re-check; a member who still belongs keeps listening."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.test import Client

from accounts.models import Membership
from conferences import events
from tests.conftest import REQUIRE_SERVICES
from tests.dashboard_cast import Cast

ROOT = Path(__file__).resolve().parents[1]
EVENT = {"type": "parley.event", "event": "room.started", "room_id": "r", "at": "", "data": {}}


def _socket(cast: Cast, role: str) -> WebsocketCommunicator:
    from dashboard.asgi import application

    client = cast.client(role)
    client.get("/dashboard/")
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return WebsocketCommunicator(
        application,
        "/ws/dashboard",
        headers=[(b"cookie", cookie.encode()), (b"origin", b"http://testserver")],
    )


def _membership(cast: Cast, role: str) -> Membership:
    return Membership.objects.get(tenant=cast.tenant, user=cast.users[role])


@pytest.mark.django_db(transaction=True)
def test_removing_a_member_closes_its_open_socket_at_once(cast: Cast):
    mel = _membership(cast, "member")
    admin: Client = cast.client("admin")

    mel_ws, vic_ws, again = (
        _socket(cast, "member"),
        _socket(cast, "viewer"),
        _socket(cast, "member"),
    )

    async def scenario() -> None:
        assert (await mel_ws.connect())[0] and (await vic_ws.connect())[0]
        response = await sync_to_async(admin.post)(
            f"/dashboard/members/{mel.pk}/remove/", {"confirm": "yes"}
        )
        assert response.status_code == 302
        # Closed without waiting for another event or the periodic re-check.
        assert await mel_ws.receive_output(timeout=3) == {"type": "websocket.close", "code": 4403}
        # The tenant's next event reaches the others, not the removed member.
        await get_channel_layer().group_send(events.tenant_group(cast.tenant.pk), EVENT)
        assert (await vic_ws.receive_json_from(timeout=3))["event"] == "room.started"
        await vic_ws.disconnect()
        # And it cannot come back.
        assert not (await again.connect())[0]

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_a_role_change_rechecks_and_a_remaining_member_keeps_listening(cast: Cast):
    vic = _membership(cast, "viewer")
    admin: Client = cast.client("admin")

    ws = _socket(cast, "viewer")

    async def scenario() -> None:
        assert (await ws.connect())[0]
        response = await sync_to_async(admin.post)(
            f"/dashboard/members/{vic.pk}/role/", {"role": "member"}
        )
        assert response.status_code == 302
        assert await ws.receive_nothing(timeout=0.3)  # still a member: still open
        await get_channel_layer().group_send(events.tenant_group(cast.tenant.pk), EVENT)
        assert (await ws.receive_json_from(timeout=3))["event"] == "room.started"
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_removal_in_another_process_closes_the_socket_here(cast: Cast, livekit, tmp_path):
    """The socket lives in this process; the removal runs in another one (`manage.py
    shell`, as a second web worker would): the Redis channel layer carries the notice."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 needs PostgreSQL (DATABASE_URL) and REDIS_URL")
        pytest.skip("needs PostgreSQL and Redis (the services pass)")
    from tests.test_celery_worker import Processes

    env = Processes(tmp_path, settings.REDIS_URL, livekit).env
    mel, admin = _membership(cast, "member"), _membership(cast, "admin")
    code = (
        "from accounts.models import Membership as M; from accounts import services as s; "
        f"s.remove_member(actor=M.objects.get(pk={admin.pk}), "
        f"membership=M.objects.get(pk={mel.pk}))"
    )

    ws = _socket(cast, "member")

    async def scenario() -> None:
        assert (await ws.connect())[0]
        done = await sync_to_async(subprocess.run)(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}

    async_to_sync(scenario)()
