"""Webinar join storm: BENCH_STORM_VIEWERS (1,000) viewers join one webinar within
BENCH_STORM_SECONDS (10) s, each as a browser does: the join page (``GET /room/<id>``, which
sets the CSRF cookie), the join (``POST /room/<id>/join``, the room's default role: a viewer,
admitted at once with a LiveKit token) and the stage socket (``/ws/rooms/<id>/stage``,
authenticated by its first message ``{"type": "auth", "token"}`` as stage.js does, connected
once the server's first message, the stage snapshot, arrives). Viewer i starts at
i * SECONDS / VIEWERS s; each has its own cookies and connections.

The server is Parley as `make run` serves it (uvicorn, ``dashboard.asgi:application``; the
production server command instead where bench/harness.py's AppServer offers one) with
BENCH_STORM_WORKERS worker processes (default 2 with REDIS_URL, which every worker then
shares as cache and channel layer; 1 without), on a fresh database (SQLite in a temporary
directory, or DATABASE_URL), with the LiveKit double. The webinar (an enterprise tenant's
room, webinar mode, 1,000 places) is started through the API first, as its host would. The
load generator is an asyncio + aiohttp program in a process of its own (this file with
``--load``), so that its CPU is not the server's.

Printed: admitted and connected counts (every viewer must be both), join-to-token (page
request sent -> token received) p50/p99/max, the page, join and socket steps, when the last
viewer was connected, errors by kind, server CPU and memory. Results in
bench/results/storm.json. Exit code 1 unless every viewer was admitted and connected.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    ROOT,
    AppServer,
    BenchError,
    _percentile,
    _proc_stat,
    env_int,
    write_results,
)

NAME = "storm"
# Seconds one request or one socket may take: a browser waits (fetch has no timeout), so
# a slow join counts as slow, not as refused.
STEP_TIMEOUT = 120.0
LOAD_TIME_LIMIT = 300.0  # seconds for the load generator process


def stats(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": round(_percentile(ordered, 50) * 1000, 1),
        "p90_ms": round(_percentile(ordered, 90) * 1000, 1),
        "p99_ms": round(_percentile(ordered, 99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def fmt(s: dict[str, Any]) -> str:
    if not s.get("n"):
        return "(none)"
    return f"p50 {s['p50_ms']:,.1f}, p99 {s['p99_ms']:,.1f}, max {s['max_ms']:,.1f} ms"


# --- the load generator (its own process) ----------------------------------------------------


async def _storm(base: str, room_id: str, viewers: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    ws_base = base.replace("http://", "ws://", 1)
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=STEP_TIMEOUT)
    sockets: list[Any] = []
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as session:
        begin = time.perf_counter() + 0.5

        async def viewer(i: int) -> dict[str, Any]:
            await asyncio.sleep(max(0.0, begin + i * seconds / viewers - time.perf_counter()))
            rec: dict[str, Any] = {}
            t0 = time.perf_counter()
            try:
                async with session.get(f"{base}/room/{room_id}") as response:
                    await response.read()
                    cookies = {k: m.value for k, m in response.cookies.items()}
                    if response.status != 200:
                        rec["error"] = f"page HTTP {response.status}"
                        return rec
                t1 = time.perf_counter()
                rec["page"] = t1 - t0
                headers = {
                    "X-CSRFToken": cookies.get("csrftoken", ""),
                    "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
                }
                async with session.post(
                    f"{base}/room/{room_id}/join", json={"name": f"Viewer {i}"}, headers=headers
                ) as response:
                    text = await response.text()
                    status = response.status
                t2 = time.perf_counter()
                rec["join"], rec["join_to_token"] = t2 - t1, t2 - t0
                body = json.loads(text) if text.startswith("{") else {}
                token = body.get("token") if body.get("status") == "admitted" else None
                if status != 200 or not token:
                    code = (body.get("error") or {}).get("code", "")
                    rec["error"] = f"join HTTP {status} {code or body.get('status', '')}".strip()
                    return rec
                rec["admitted"] = True
                ws = await session.ws_connect(
                    f"{ws_base}/ws/rooms/{room_id}/stage",
                    origin=base,
                    autoping=True,
                    heartbeat=None,
                )
                # As stage.js does: the token is the first message, never in the URL.
                await ws.send_json({"type": "auth", "token": token})
                message = await ws.receive(timeout=STEP_TIMEOUT)
                if message.type != aiohttp.WSMsgType.TEXT:
                    rec["error"] = f"stage socket {message.type.name}"
                    await ws.close()
                    return rec
                t3 = time.perf_counter()
                rec["socket"], rec["total"] = t3 - t2, t3 - t0
                rec["connected"] = True
                rec["done_at"] = t3 - begin
                sockets.append(ws)
            except Exception as exc:  # noqa: BLE001 -- tallied by kind
                rec["error"] = f"{type(exc).__name__}: {str(exc)[:80]}"
            return rec

        records = await asyncio.gather(*(viewer(i) for i in range(viewers)))
        await asyncio.sleep(1.0)  # a socket the server drops right after connecting shows now
        still_open = sum(1 for ws in sockets if not ws.closed)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    errors = Counter(r["error"] for r in records if "error" in r)
    return {
        "viewers": viewers,
        "seconds": seconds,
        "admitted": sum(1 for r in records if r.get("admitted")),
        "connected": sum(1 for r in records if r.get("connected")),
        "still_open_after_1s": still_open,
        "join_to_token": stats([r["join_to_token"] for r in records if r.get("admitted")]),
        "page": stats([r["page"] for r in records if "page" in r]),
        "join": stats([r["join"] for r in records if r.get("admitted")]),
        "socket": stats([r["socket"] for r in records if r.get("connected")]),
        "total": stats([r["total"] for r in records if r.get("connected")]),
        "last_connected_s": round(
            max((r["done_at"] for r in records if "done_at" in r), default=0), 2
        ),
        "errors": dict(errors.most_common(10)),
    }


def _load_main(config: str) -> None:
    args = json.loads(config)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_storm(args["base"], args["room_id"], args["viewers"], args["seconds"]))
    print(json.dumps(result))


# --- the bench -------------------------------------------------------------------------------


def _server_pids(pid: int) -> list[int]:
    """uvicorn's supervisor and its worker processes."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return pids + [int(c) for c in children]


def _stop_stragglers(pids: list[int]) -> None:
    """Kill worker processes that outlived their supervisor (AppServer stops the supervisor;
    a worker still closing a thousand sockets when it is killed is left orphaned, and would
    burn the next bench's CPU)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    for pid in pids:
        try:
            if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():  # still ours
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _cpu(pids: list[int]) -> float:
    return sum((_proc_stat(p) or (0.0, 0))[0] for p in pids)


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return round(total / 1024, 1)


def collect_static() -> None:
    """The production command (DEBUG=0) serves the join page's CSS and scripts from the
    collected, hashed files (`make run` collects them too): without them every page is a
    500 "Missing staticfiles manifest entry"."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        # As the production command runs: DEBUG=0 selects the manifest storage.
        env={
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(60),
            "LIVEKIT_API_SECRET": secrets.token_hex(20),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise BenchError(f"collectstatic failed:\n{done.stdout[-1000:]}{done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    import httpx
    from bench_stage import raise_open_files

    viewers = env_int("BENCH_STORM_VIEWERS", 1000)
    seconds = float(env_int("BENCH_STORM_SECONDS", 10))
    # Several processes share state only through Redis (cache, channel layer): without
    # REDIS_URL one worker, as `make run` serves it.
    workers = env_int("BENCH_STORM_WORKERS", 2 if os.environ.get("REDIS_URL") else 1)
    files = raise_open_files(viewers * 3 + 500)
    collect_static()
    options: dict[str, Any] = {"workers": workers, "startup_timeout": 60}
    if "production" in inspect.signature(AppServer).parameters:
        options["production"] = True  # the production server command, where there is one
    with AppServer(**options) as server:
        with httpx.Client(
            base_url=server.base_url,
            headers={"X-API-Key": server.api_key},
            trust_env=False,
            timeout=30,
        ) as api:
            response = api.post(
                "/api/v1/rooms",
                json={
                    "name": "Storm webinar",
                    "allow_webinar_mode": True,
                    "max_participants": 1000,
                },
            )
            if response.status_code != 201:
                raise BenchError(f"Could not create the webinar: {response.text[:300]}")
            room_id = response.json()["room_id"]
            response = api.post(f"/api/v1/rooms/{room_id}/start")
            if response.status_code != 200:
                raise BenchError(f"Could not start the webinar: {response.text[:300]}")
        assert server.pid is not None
        pids = _server_pids(server.pid)
        print(
            f"Storm: {viewers} viewers over {seconds:.0f} s into one webinar; uvicorn "
            f"--workers {workers} (pids {pids}); database "
            f"{server.describe().get('database', '?')}; open files limit {files['now']}",
            flush=True,
        )
        cpu0, wall0 = _cpu(pids), time.perf_counter()
        config = {
            "base": server.base_url,
            "room_id": room_id,
            "viewers": viewers,
            "seconds": seconds,
        }
        try:
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--load", json.dumps(config)],
                capture_output=True,
                text=True,
                timeout=LOAD_TIME_LIMIT,
                env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
            )
        except subprocess.TimeoutExpired:
            raise BenchError(
                f"The load generator did not finish in {LOAD_TIME_LIMIT:.0f} s"
            ) from None
        if done.returncode != 0 or not done.stdout.strip():
            raise BenchError(f"The load generator failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        wall = time.perf_counter() - wall0
        server_cpu = round(100 * (_cpu(pids) - cpu0) / wall, 1)
        rss = _rss_mb(_server_pids(server.pid))
        problems = [line for line in server.log_lines() if "Error" in line or "Traceback" in line]
        workers_seen = _server_pids(server.pid)[1:]
    _stop_stragglers(workers_seen)

    ok = result["admitted"] == viewers and result["connected"] == viewers
    print(
        f"admitted {result['admitted']}/{viewers}, stage socket connected "
        f"{result['connected']}/{viewers} (still open 1 s later: "
        f"{result['still_open_after_1s']}); last viewer connected "
        f"{result['last_connected_s']} s after the first arrived"
    )
    print(f"join-to-token (page request sent -> token received): {fmt(result['join_to_token'])}")
    print(f"  page {fmt(result['page'])}; join POST {fmt(result['join'])}")
    print(f"  stage socket (token -> first message) {fmt(result['socket'])}")
    print(f"  whole join (page -> socket connected) {fmt(result['total'])}")
    print(
        f"server: {server_cpu}% of one core over {wall:.1f} s ({workers} workers + supervisor), "
        f"RSS {rss} MB in all"
    )
    for error, count in result["errors"].items():
        print(f"  error x{count}: {error}")
    for line in problems[:5]:
        print(f"  server log: {line[:200]}")
    print(f"Storm {'OK' if ok else 'FAILED'}: every viewer admitted and connected: {ok}")
    path = write_results(
        NAME,
        {
            "bench": NAME,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "environment": {**server.describe(), "uvicorn_workers": workers},
            "result": result,
            "server_cpu_pct_of_one_core": server_cpu,
            "server_rss_mb": rss,
            "ok": ok,
        },
    )
    print(f"Wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--load":
        _load_main(sys.argv[2])
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
