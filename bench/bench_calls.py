"""Direct-call setup at scale, on loopback: Parley under uvicorn (one worker), the LiveKit
double in this process, every socket on 127.0.0.1.

* ``connect`` -- BENCH_CALLS_USERS (1,000) end users of one enterprise tenant, each vouched
  for with a call token (minted in one ``manage.py shell``, not measured), open
  ``/ws/videochat`` and authenticate with their first frame. Connect time = TCP open -> the
  auth answer. All stay connected for the whole run.
* ``setup`` -- BENCH_CALLS (100) direct calls between distinct pairs of those users,
  BENCH_CALLS_IN_FLIGHT (100) at a time: the caller sends ``requestDirectVideochat``; the
  callee's socket waits for ``videochatRequested`` and sends ``acceptVideochatRequest``.
  Setup time = request sent -> both sides hold their LiveKit token (the callee's accept
  answer and the caller's ``directVideochatRequestAccepted``, whichever comes last). Every
  token is checked by the LiveKit double as livekit-server would (room, identity).

Channel layer: Redis when REDIS_URL is set (the server reads it), else in-memory.
BENCH_CALLS_TIME_LIMIT (420 s) bounds the run. Results in bench/results/calls.json.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stage import Cpu, close_all, progress, raise_open_files, rss_mb, stats  # noqa: E402
from harness import AppServer, BenchError, env_int, write_results  # noqa: E402

NAME = "calls"
MINT = """
import json
from accounts.models import Tenant
from conferences.services.calls import vouch_user
tenant = Tenant.objects.get(name="Bench")
tokens = [
    vouch_user(tenant=tenant, profile={{"id": f"user-{{i}}", "firstName": f"User {{i}}"}},
               ttl_seconds=3600).token
    for i in range({n})
]
print(json.dumps(tokens))
"""
CONNECT_CONCURRENCY = 50
STEP_TIMEOUT = 120.0  # under 100 calls in flight a step waits its turn; generous on purpose
_ids = itertools.count()


class Peer:
    """One end user's socket, with a reader that files frames by type."""

    def __init__(self, name: str, ws: Any) -> None:
        self.name, self.ws = name, ws
        self.frames: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.reader = asyncio.ensure_future(self._read())

    def queue(self, kind: str) -> asyncio.Queue[dict[str, Any]]:
        return self.frames.setdefault(kind, asyncio.Queue())

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            await self.queue(frame["type"]).put(frame)

    async def send(self, kind: str, data: dict[str, Any]) -> None:
        event = {"id": f"b{next(_ids)}", "date": int(time.time() * 1000)}
        await self.ws.send(json.dumps({"type": kind, "data": data, "event": event}))

    async def next(self, kind: str) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.queue(kind).get(), STEP_TIMEOUT)
        if frame["error"]["status"]:
            raise BenchError(f"{self.name}: {kind} answered {frame['error']}")
        return frame["data"]


async def scenario(server: AppServer, settings: dict[str, int], sockets: list[Any]) -> dict:
    from websockets.asyncio.client import connect

    users, calls, in_flight = settings["users"], settings["calls"], settings["in_flight"]
    ws_url = server.base_url.replace("http://", "ws://") + "/ws/videochat"
    report: dict[str, Any] = {}

    started = time.perf_counter()
    out = server.manage("shell", "-c", MINT.format(n=users), timeout=180)
    tokens = json.loads(out.strip().splitlines()[-1])
    progress(f"{len(tokens)} call tokens minted in {time.perf_counter() - started:.1f} s")

    # --- connect: every user's socket, authenticated by its first frame -------------------
    peers: list[Peer | None] = [None] * users
    connect_times: list[float] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            try:
                ws = await connect(
                    ws_url, origin=server.base_url, proxy=None, open_timeout=STEP_TIMEOUT
                )
                sockets.append(ws)
                event = {"id": "auth", "date": 0}
                await ws.send(
                    json.dumps({"type": "auth", "data": {"token": tokens[i]}, "event": event})
                )
                answer = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
                if answer["error"]["status"]:
                    raise BenchError(f"auth refused: {answer['error']}")
            except Exception as exc:  # noqa: BLE001 -- counted
                failures.append(f"user {i}: {exc!r}"[:200])
                return
            connect_times.append(time.perf_counter() - t0)
            peers[i] = Peer(f"user-{i}", ws)

    cpu = Cpu(server.pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(open_one(i) for i in range(users)))
    wall = time.perf_counter() - t0
    report["connect"] = {
        "users": users,
        "connected": len(connect_times),
        "failures": len(failures),
        "errors": failures[:10],
        "wall_s": round(wall, 2),
        "per_second": round(len(connect_times) / wall, 1) if wall else None,
        "connect": stats(connect_times),
        **cpu.percent(),
        "server_rss_mb": rss_mb(server.pid),
    }
    progress(f"{len(connect_times)}/{users} sockets authenticated in {wall:.1f} s")
    if failures:
        raise BenchError(f"{len(failures)} sockets failed: {failures[:3]}")

    # --- setup: calls between distinct pairs, `in_flight` at a time ------------------------
    setup_times: list[float] = []
    errors: list[str] = []
    tokens_checked = 0
    flight = asyncio.Semaphore(in_flight)
    most_in_flight = 0
    current = 0

    async def one_call(n: int) -> None:
        nonlocal tokens_checked, most_in_flight, current
        caller, callee = peers[(2 * n) % users], peers[(2 * n + 1) % users]
        assert caller is not None and callee is not None
        async with flight:
            current += 1
            most_in_flight = max(most_in_flight, current)
            step = "request"
            try:
                t0 = time.perf_counter()
                await caller.send("videochat:requestDirectVideochat", {"targetUser": callee.name})
                request_id = (await caller.next("videochat:requestDirectVideochat"))[
                    "videochatRequestId"
                ]
                step = "ring"
                ring = await callee.next("videochat:videochatRequested")
                if ring["videochatRequestId"] != request_id:
                    raise BenchError(f"{callee.name} rang for another request")
                step = "accept"
                await callee.send("videochat:acceptVideochatRequest", ring)
                mine, theirs = await asyncio.gather(
                    callee.next("videochat:acceptVideochatRequest"),
                    caller.next("videochat:directVideochatRequestAccepted"),
                )
                setup_times.append(time.perf_counter() - t0)
                for payload, peer in ((mine, callee), (theirs, caller)):
                    claims = server.double.verify_join_token(payload["token"], room=mine["room"])
                    if claims["sub"] != peer.name:
                        raise BenchError(f"token for {claims['sub']}, expected {peer.name}")
                    tokens_checked += 1
            except Exception as exc:  # noqa: BLE001 -- counted
                errors.append(f"call {n} at {step}: {exc!r}"[:300])
            finally:
                current -= 1

    cpu = Cpu(server.pid)
    t0 = time.perf_counter()
    await asyncio.gather(*(one_call(n) for n in range(calls)))
    wall = time.perf_counter() - t0
    open_at_end = sum(1 for p in peers if p is not None and not p.reader.done())
    report["setup"] = {
        "calls": calls,
        "completed": len(setup_times),
        "in_flight": in_flight,
        "most_in_flight": most_in_flight,
        "failures": len(errors),
        "errors": errors[:10],
        "wall_s": round(wall, 2),
        "calls_per_second": round(len(setup_times) / wall, 1) if wall else None,
        "setup": stats(setup_times),
        "tokens_verified": tokens_checked,
        "sockets_open_at_end": open_at_end,
        **cpu.percent(),
    }
    for peer in peers:
        if peer is not None:
            peer.reader.cancel()
    return report


def main() -> int:
    settings = {
        "users": env_int("BENCH_CALLS_USERS", 1000, minimum=2),
        "calls": env_int("BENCH_CALLS", 100),
        "in_flight": env_int("BENCH_CALLS_IN_FLIGHT", 100),
        "time_limit": env_int("BENCH_CALLS_TIME_LIMIT", 420),
    }
    # Distinct pairs: a user is in at most one call of the run.
    settings["calls"] = min(settings["calls"], settings["users"] // 2)
    settings["in_flight"] = min(settings["in_flight"], settings["calls"])
    files = raise_open_files(2 * settings["users"] + 1024)
    layer = "Redis (REDIS_URL)" if os.environ.get("REDIS_URL") else "in-memory"
    print(f"channel layer: {layer}; open files limit {files['before']} -> {files['now']}")
    with AppServer() as server:
        env = server.describe()
        print(
            f"uvicorn {env['uvicorn']} (1 worker), {env['database']}, {env['cpus']} CPUs; "
            f"LiveKit double in this process"
        )
        report = asyncio.run(
            asyncio.wait_for(_run(server, settings), timeout=settings["time_limit"])
        )
        log = [line for line in server.log_lines() if line.strip()]
    c, s = report["connect"], report["setup"]
    print(
        f"connect: {c['connected']}/{c['users']} sockets authenticated in {c['wall_s']} s "
        f"({c['per_second']}/s); p50 {c['connect']['p50_ms']} / p99 {c['connect']['p99_ms']} ms"
        f"; server RSS {c['server_rss_mb']} MB"
    )
    print(
        f"call setup (request -> both sides have tokens), {s['in_flight']} in flight, "
        f"{c['connected']} users connected: {s['completed']}/{s['calls']} calls, p50 "
        f"{s['setup']['p50_ms']} / p99 {s['setup']['p99_ms']} / max {s['setup']['max_ms']} ms; "
        f"{s['calls_per_second']} calls/s; tokens verified {s['tokens_verified']}; "
        f"server CPU {s['server_cpu_pct']}%, bench {s['client_cpu_pct']}%"
    )
    path = write_results(
        NAME,
        {
            "environment": {**env, "channel_layer": layer, "open_files": files},
            "settings": settings,
            **report,
            "server_log_tail": log[-20:],
        },
    )
    print(f"results: {path.relative_to(Path(__file__).resolve().parent.parent)}")
    ok = (
        s["failures"] == 0
        and s["completed"] == s["calls"]
        and s["sockets_open_at_end"] == c["connected"]
    )
    if not ok:
        print("FAILED: " + json.dumps(s["errors"])[:600])
    return 0 if ok else 1


async def _run(server: AppServer, settings: dict[str, int]) -> dict:
    sockets: list[Any] = []
    try:
        return await scenario(server, settings, sockets)
    finally:
        await close_all(sockets)


if __name__ == "__main__":
    sys.exit(main())
