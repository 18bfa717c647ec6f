"""The production server command (scripts/serve.py) as real processes, in the services pass:
PostgreSQL connections stay bounded under a burst, and state is shared between processes.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection
from django.test import Client
from websockets.sync.client import connect

from accounts.models import ApiKey
from tests.conftest import Api
from tests.join_helpers import Browser, make_room
from tests.web_processes import ROOT, WebProcesses, require_services

POOL_MAX = 3  # per worker process


@pytest.fixture
def web(transactional_db, livekit, tmp_path):
    require_services()
    servers = WebProcesses(tmp_path, livekit)
    yield servers
    servers.stop_all()


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def test_burst_under_the_server_keeps_postgres_connections_bounded(web, pro):
    """DATABASE_CONN_MAX_AGE=60 (documented) once leaked one connection per request thread
    under uvicorn until PostgreSQL refused clients; with the pool each worker holds at most
    DATABASE_POOL_MAX_SIZE connections, however many requests run at once."""
    room = Api(pro.api_key).post("/api/v1/rooms", {"name": "Burst"}).json()
    url = web.start(
        "web",
        workers=2,
        DATABASE_CONN_MAX_AGE="60",
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_MAX_SIZE=str(POOL_MAX),
    )
    before = _backends()

    def mint(i: int) -> int:
        response = httpx.post(
            f"{url}/api/v1/rooms/{room['room_id']}/tokens",
            json={"name": f"Guest {i}", "identity": f"guest-{i}"},
            headers={"X-API-Key": pro.api_key},
            timeout=30,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(mint, range(90)))
    assert statuses == [200] * 90, web.log("web")[-3000:]
    # The test's own connection, plus at most POOL_MAX per worker process.
    assert _backends() - before <= 2 * POOL_MAX


def _session_cookie(client: Client) -> str:
    return client.cookies["sessionid"].value


def test_two_processes_share_lobby_and_key_revocation(web, owner, livekit, settings):
    """Two servers (two ports, one PostgreSQL, one Redis): a host admitting a guest through
    one reaches the guest's lobby socket on the other, and a key revoked through one is
    refused by the other on its next request."""
    same = {"DEBUG": "1", "SECRET_KEY": settings.SECRET_KEY}  # sessions readable by both
    a, b = web.start("a", **same), web.start("b", **same)
    room = make_room(owner, waiting_room_enabled=True)
    # The guest asks from the address its lobby socket will come from (an admission's token
    # goes only to the address that asked: tests/security/test_removed_guest.py).
    guest = Browser(room, ip="127.0.0.1")
    entry_id = guest.join("Grace").json()["entry_id"]

    a_port = a.rsplit(":", 1)[1]
    with connect(
        f"ws://127.0.0.1:{a_port}/ws/rooms/{room.room_id}/lobby/{entry_id}",
        origin=a,
        additional_headers={"Cookie": f"sessionid={_session_cookie(guest.client)}"},
        open_timeout=10,
    ) as lobby:
        assert json.loads(lobby.recv(timeout=10)) == {"type": "waiting"}
        admit = httpx.post(
            f"{b}/api/v1/rooms/{room.room_id}/host/waiting/{entry_id}/admit",
            headers={"X-Host-Secret": room.host_secret},
            timeout=10,
        )
        assert admit.status_code == 200, admit.text
        admitted = json.loads(lobby.recv(timeout=10))
    assert admitted["type"] == "admitted" and admitted["role"] == "participant"
    claims = livekit.verify_join_token(admitted["token"], room=room.room_id)
    assert claims["name"] == "Grace"

    # The key, cached by A (the second token: the first made the room go live) ...
    api_room = Api(owner.api_key).post("/api/v1/rooms", {"name": "Keys"}).json()
    tokens = f"{a}/api/v1/rooms/{api_room['room_id']}/tokens"
    key_header = {"X-API-Key": owner.api_key}
    for _ in range(2):
        assert httpx.post(tokens, json={"name": "A"}, headers=key_header).status_code == 200
    # ... revoked through B's dashboard ...
    admin = Client()
    admin.force_login(owner.user)
    csrf = "a" * 32
    prefix = ApiKey.objects.get(tenant=owner.tenant).prefix
    revoke = httpx.post(
        f"{b}/dashboard/api-keys/{prefix}/revoke/",
        data={"confirm": "yes"},
        headers={
            "Cookie": f"sessionid={_session_cookie(admin)}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Origin": b,
        },
        timeout=10,
    )
    assert revoke.status_code == 302, revoke.text[:500]
    # ... is refused by A on its very next request.
    refused = httpx.post(tokens, json={"name": "A"}, headers=key_header)
    assert refused.status_code == 401 and refused.json()["error"]["code"]


def _serve_command(**env: str) -> list[str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("serve", ROOT / "scripts" / "serve.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.command(env)


def test_production_command_trusts_no_proxy_by_default():
    args = _serve_command(REDIS_URL="redis://r:6379/0", WEB_CONCURRENCY="3")
    assert "--no-proxy-headers" in args and "--forwarded-allow-ips" not in args
    assert args[args.index("--workers") + 1] == "3"
    assert {"uvloop", "httptools", "--no-access-log"} <= set(args)
    trusted = _serve_command(FORWARDED_ALLOW_IPS="10.0.0.10")
    assert trusted[trusted.index("--forwarded-allow-ips") + 1] == "10.0.0.10"
    assert "--proxy-headers" in trusted


def test_production_command_needs_redis_for_more_than_one_worker():
    assert _serve_command()[_serve_command().index("--workers") + 1] == "1"
    with pytest.raises(SystemExit, match="REDIS_URL"):
        _serve_command(WEB_CONCURRENCY="2")
