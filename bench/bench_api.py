"""REST API throughput: room creation and join-token minting under concurrent clients.

Scenarios (each: warm-up, then the measured run, every request must succeed):

* ``create_room``  -- ``POST /api/v1/rooms`` ``{"name": "Bench room N"}``, expects 201.
* ``mint_token``   -- ``POST /api/v1/rooms/{room_id}/tokens`` on one room,
  ``{"name": "Guest N", "role": "participant"}``, expects 200. The first token makes the room
  go live on the LiveKit double (one CreateRoom call); every later one only signs a JWT.

Environment: BENCH_REQUESTS (measured requests per scenario, default 2000), BENCH_CONCURRENCY
(default 50), BENCH_WARMUP (default 50), BENCH_TIME_LIMIT (seconds per scenario, default 45),
DATABASE_URL (default: SQLite in a temporary directory).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    AppServer,
    BenchError,
    Result,
    Send,
    async_client,
    env_int,
    expect,
    format_table,
    run_load,
    write_results,
)

NAME = "api"
REQUEST_TIMEOUT = 30.0  # seconds, per request


async def _scenarios(
    server: AppServer, *, requests: int, concurrency: int, warmup: int, limit: float
) -> tuple[list[Result], list[Result]]:
    """Warm-up and measured results of each scenario, in order."""
    warmups: list[Result] = []
    results: list[Result] = []
    async with async_client(server, concurrency=concurrency, timeout=REQUEST_TIMEOUT) as client:

        async def measure(scenario: str, send: Send) -> None:
            common = {"concurrency": concurrency, "time_limit": limit, "server_pid": server.pid}
            if warmup:
                warmups.append(
                    await run_load(
                        client, send, scenario=f"{scenario} (warm-up)", requests=warmup, **common
                    )
                )
            results.append(
                await run_load(client, send, scenario=scenario, requests=requests, **common)
            )

        async def create_room(c: httpx.AsyncClient, i: int) -> str | None:
            return expect(await c.post("/api/v1/rooms", json={"name": f"Bench room {i}"}), 201)

        await measure("create_room", create_room)

        response = await client.post("/api/v1/rooms", json={"name": "Bench room"})
        if response.status_code != 201:
            raise BenchError(f"Could not create the token room: {expect(response, 201)}")
        path = f"/api/v1/rooms/{response.json()['room_id']}/tokens"

        async def mint_token(c: httpx.AsyncClient, i: int) -> str | None:
            body = {"name": f"Guest {i}", "role": "participant"}
            return expect(await c.post(path, json=body), 200)

        await measure("mint_token", mint_token)
    return warmups, results


def main() -> int:
    requests = env_int("BENCH_REQUESTS", 2000)
    concurrency = env_int("BENCH_CONCURRENCY", 50)
    warmup = env_int("BENCH_WARMUP", 50, minimum=0)
    limit = float(env_int("BENCH_TIME_LIMIT", 45))

    print(f"API bench: {requests} requests x {concurrency} clients per scenario", flush=True)
    with AppServer() as server:
        about = server.describe()
        if server.database_created:
            print(f"  created database {about['database']}", flush=True)
        warmups, results = asyncio.run(
            _scenarios(
                server, requests=requests, concurrency=concurrency, warmup=warmup, limit=limit
            )
        )
        livekit_calls = len(server.double.calls)
        log = server.log_lines()

    rows = [r.summary() for r in results]
    print()
    print(format_table(rows))
    print(
        f"\nPython {about['python']}, uvicorn {about['uvicorn']} (1 worker), "
        f"database {about['database']}, {about['cpus']} CPUs, "
        f"LiveKit double calls: {livekit_calls}"
    )

    ok = True
    for result in warmups + results:
        if result.failures or result.timed_out or result.done != result.requests:
            ok = False
            print(
                f"\nFAILED {result.scenario}: {result.failures} failed, "
                f"{result.done}/{result.requests} done"
                + (f", stopped after the {limit:.0f}s time limit" if result.timed_out else "")
            )
            for error, count in sorted(result.errors.items(), key=lambda kv: -kv[1])[:5]:
                print(f"  {count} x {error}")
    if log:
        print(f"\nServer log ({len(log)} lines, warnings and errors; last {min(len(log), 20)}):")
        for line in log[-20:]:
            print(f"  {line}")

    path = write_results(
        NAME,
        {
            "bench": NAME,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "environment": {**about, "uvicorn_workers": 1},
            "warmup_requests": warmup,
            "scenarios": rows,
            "warmups": [r.summary() for r in warmups],
            "livekit_calls": livekit_calls,
            "server_log_lines": len(log),
            "ok": ok,
        },
    )
    print(f"\nWrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
