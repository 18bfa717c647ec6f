"""Dashboard rooms list: server time of `GET /dashboard/rooms/` with 100 and 10,000 rooms.

The tenant (enterprise plan) gets rooms through the room service (`create_room`, as the API
and the dashboard create them) until it has 100, then 10,000. At each size, signed in as the
tenant's owner, one client sends each scenario's requests one after another, so the figure
is the page's own cost, not queueing:

* ``newest``  -- ``/dashboard/rooms/`` (default: newest first, page 1)
* ``by name`` -- ``?sort=name&order=asc``
* ``search``  -- ``?q=room 4`` (a name search that matches about a tenth of the rooms)
* ``last page`` -- ``?page=<last>`` (an OFFSET at the end)

Reported: the server's own time per request from the page's ``Server-Timing: app;dur=``
header (the view, its queries and the template; p50/p99), and the round trip seen by the
client. Environment: BENCH_LIST_REQUESTS (per scenario, default 200), BENCH_TIME_LIMIT.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import re
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    AppServer,
    BenchError,
    env_int,
    run_load,
    write_results,
)

NAME = "dashboard"
SIZES = (100, 10_000)
PAGE_SIZE = 25

SEED = """
import json
from django.db import transaction
from django.test import Client
from accounts.models import Tenant, User
from conferences.models import Room
from conferences.services import rooms as room_services

tenant = Tenant.objects.order_by("-pk").first()
target = {target}
have = Room.objects.for_tenant(tenant).count()
with transaction.atomic():
    for i in range(have, target):
        room_services.create_room(tenant=tenant, data={{"name": f"Bench room {{i}}"}})
owner = User.objects.filter(memberships__tenant=tenant).order_by("pk").first()
client = Client()
client.force_login(owner)
print(json.dumps({{"rooms": Room.objects.for_tenant(tenant).count(),
                  "session": client.cookies["sessionid"].value}}))
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def seed(server: AppServer, target: int) -> str:
    out = server.manage("shell", "-c", SEED.format(target=target), timeout=600)
    data = json.loads(out.strip().splitlines()[-1])
    if data["rooms"] != target:
        raise BenchError(f"seeded {data['rooms']} rooms, wanted {target}")
    return data["session"]


async def measure(server: AppServer, session: str, rooms: int, requests: int, limit: float):
    scenarios = {
        "newest": "/dashboard/rooms/",
        "by name": "/dashboard/rooms/?sort=name&order=asc",
        "search": "/dashboard/rooms/?q=room%204",
        "last page": f"/dashboard/rooms/?page={max(1, math.ceil(rooms / PAGE_SIZE))}",
    }
    rows = []
    async with httpx.AsyncClient(
        base_url=server.base_url, cookies={"sessionid": session}, timeout=30, trust_env=False
    ) as client:
        for label, path in scenarios.items():
            server_ms: list[float] = []

            async def send(
                c: httpx.AsyncClient, i: int, path: str = path, server_ms: list = server_ms
            ) -> str | None:
                response = await c.get(path)
                if response.status_code != 200 or "room-name" not in response.text:
                    return f"HTTP {response.status_code} for {path}"
                found = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
                if found:
                    server_ms.append(float(found.group(1)))
                return None

            await send(client, -1)  # warm-up
            server_ms.clear()
            result = await run_load(
                client,
                send,
                scenario=label,
                requests=requests,
                concurrency=1,
                time_limit=limit,
                server_pid=server.pid,
            )
            summary = result.summary()
            rows.append(
                {
                    "rooms": rooms,
                    "scenario": label,
                    "path": path,
                    "requests": summary["requests"],
                    "failures": summary["failures"],
                    "server_p50_ms": round(_pct(server_ms, 50), 2),
                    "server_p99_ms": round(_pct(server_ms, 99), 2),
                    "client_p50_ms": summary["p50_ms"],
                    "client_p99_ms": summary["p99_ms"],
                    "ok": result.ok and len(server_ms) == summary["requests"],
                    "errors": summary["errors"],
                }
            )
    return rows


def main() -> int:
    requests = env_int("BENCH_LIST_REQUESTS", 200)
    limit = float(env_int("BENCH_TIME_LIMIT", 45))
    print(f"Dashboard rooms list: {requests} sequential requests per scenario", flush=True)
    rows: list[dict] = []
    with AppServer() as server:
        about = server.describe()
        for size in SIZES:
            print(f"  seeding {size} rooms through the room service...", flush=True)
            session = seed(server, size)
            rows += asyncio.run(measure(server, session, size, requests, limit))
        log = server.log_lines()

    header = f"{'rooms':>6}  {'scenario':<10}  {'srv p50 ms':>10}  {'srv p99 ms':>10}  " \
             f"{'rtt p50 ms':>10}  {'rtt p99 ms':>10}  {'failed':>6}"  # fmt: skip
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['rooms']:>6}  {r['scenario']:<10}  {r['server_p50_ms']:>10.2f}  "
              f"{r['server_p99_ms']:>10.2f}  {r['client_p50_ms']:>10.2f}  "
              f"{r['client_p99_ms']:>10.2f}  {r['failures']:>6}")  # fmt: skip
    print(f"\nPython {about['python']}, uvicorn {about['uvicorn']} (1 worker), "
          f"database {about['database']}, {about['cpus']} CPUs")  # fmt: skip
    ok = all(r["ok"] for r in rows)
    for r in rows:
        if not r["ok"]:
            print(f"FAILED {r['rooms']} rooms, {r['scenario']}: {r['errors']}")
    if log:
        print(f"\nServer log ({len(log)} lines; last {min(len(log), 20)}):")
        for line in log[-20:]:
            print(f"  {line}")
    path = write_results(
        NAME,
        {
            "bench": NAME,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "environment": {**about, "uvicorn_workers": 1},
            "requests_per_scenario": requests,
            "rows": rows,
            "ok": ok,
        },
    )
    print(f"\nWrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
