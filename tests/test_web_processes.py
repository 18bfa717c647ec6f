"""The production server command (scripts/serve.py) as real processes, in the services pass:
PostgreSQL connections stay bounded under a burst, and state is shared between processes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection

from tests.conftest import Api
from tests.web_processes import WebProcesses, require_services

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
