"""The webinar stage at scale, on loopback: Parley under uvicorn (one worker), the LiveKit
double in this process, every socket and request on 127.0.0.1.

Scenarios, in order, on one webinar room of an enterprise tenant:

* ``viewers``  -- BENCH_STAGE_VIEWERS (1,000) viewers, each with a join token minted through
  the API, open what a viewer's page opens: its stage socket (``/ws/rooms/<id>/stage``,
  the join token as its first message) and, unless BENCH_STAGE_STATUS_SOCKETS=0, its room
  status socket (``/ws/rooms/<id>/status``, in the room's group, so every room event fans out to
  it). Connect time = from opening the TCP connection to the socket's first message. At the
  end every socket is pinged: all must still be open.
* ``hand_raise`` -- BENCH_STAGE_RAISES (200) different viewers raise a hand, one after
  another (``POST /room/<id>/stage/hand`` with the viewer's token); the host's socket
  (``/ws/rooms/<id>/host``, signed in through the host link) timestamps the stage snapshot
  that first lists that hand. Latency = request sent -> host notified.
* ``promote`` -- BENCH_STAGE_PROMOTES (200) of them, connected to the LiveKit double first,
  are promoted one after another through the host API
  (``POST /api/v1/rooms/<id>/host/stage/<identity>/promote``, X-Host-Secret). Latency =
  request sent -> the double handled UpdateParticipant for that identity (``Call.at``, the
  same clock: the double runs in this process).

Channel layer: Redis when REDIS_URL is set (the server reads it), else in-memory (one
uvicorn worker). BENCH_STAGE_TIME_LIMIT (150 s) bounds the whole run. Results in
bench/results/stage.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    AppServer,
    BenchError,
    _percentile,
    _proc_stat,
    async_client,
    env_int,
    expect,
    write_results,
)

NAME = "stage"
MINT = """
import json
from conferences.models import Room
from conferences.services.rooms import issue_token
room = Room.objects.get(room_id="{room_id}")
issued = [
    issue_token(room=room, name=f"Viewer {{i}}", identity=f"viewer-{{i}}") for i in range({n})
]
assert all(t.role == "viewer" for t in issued)
print(json.dumps([t.token for t in issued]))
"""
CONNECT_CONCURRENCY = 50
STEP_TIMEOUT = 10.0  # seconds one request, one socket or one notification may take


def raise_open_files(need: int) -> dict[str, int]:
    """Lift this process's soft limit on open files (uvicorn, started later, inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft_now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_now != resource.RLIM_INFINITY and soft_now < need:
        raise BenchError(
            f"Need {need} open files, the hard limit allows {hard}: lower BENCH_STAGE_VIEWERS"
        )
    return {"before": soft, "now": soft_now, "hard": hard}


def progress(text: str) -> None:
    print(f"  ... {text}", flush=True)


def stats(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    ms = 1000.0
    return {
        "n": len(ordered),
        "p50_ms": round(_percentile(ordered, 50) * ms, 2) if ordered else None,
        "p90_ms": round(_percentile(ordered, 90) * ms, 2) if ordered else None,
        "p99_ms": round(_percentile(ordered, 99) * ms, 2) if ordered else None,
        "max_ms": round(ordered[-1] * ms, 2) if ordered else None,
    }


def rss_mb(pid: int | None) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


class Cpu:
    """CPU used by the server and by this process (client and LiveKit double) from now on, in
    % of one core."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.server = _proc_stat(pid) if pid else None
        self.client = time.process_time()
        self.wall = time.perf_counter()

    def percent(self) -> dict[str, float | None]:
        wall = max(time.perf_counter() - self.wall, 1e-9)
        after = _proc_stat(self.pid) if self.pid else None
        server = (after[0] - self.server[0]) if after and self.server else None
        return {
            "server_cpu_pct": round(100 * server / wall, 1) if server is not None else None,
            "client_cpu_pct": round(100 * (time.process_time() - self.client) / wall, 1),
        }


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise BenchError("BENCH_STAGE_TIME_LIMIT reached")
        return left


async def scenario(
    server: AppServer, settings: dict[str, int], deadline: Deadline, sockets: list[Any]
) -> dict:
    from websockets.asyncio.client import connect
    from websockets.protocol import State

    viewers, raises, promotes = settings["viewers"], settings["raises"], settings["promotes"]
    origin = server.base_url
    ws_base = server.base_url.replace("http://", "ws://")
    report: dict[str, Any] = {}

    async def open_socket(
        path: str, auth: str | None = None, **kwargs: Any
    ) -> tuple[Any, dict, float]:
        t0 = time.perf_counter()
        ws = await connect(
            ws_base + path,
            origin=origin,
            proxy=None,
            open_timeout=STEP_TIMEOUT,
            close_timeout=2,
            **kwargs,
        )
        if auth is not None:  # the stage socket: the join token is its first message
            await ws.send(json.dumps({"type": "auth", "token": auth}))
        first = json.loads(await asyncio.wait_for(ws.recv(), timeout=STEP_TIMEOUT))
        return ws, first, time.perf_counter() - t0

    # `api` carries the tenant's API key; `web` is a browser's client (no key, a cookie jar).
    async with (
        async_client(server, concurrency=20, timeout=STEP_TIMEOUT) as api,
        httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=STEP_TIMEOUT) as web,
    ):
        # --- the room and its viewers' tokens --------------------------------------------
        response = await api.post(
            "/api/v1/rooms",
            json={
                "name": "Bench webinar",
                "allow_webinar_mode": True,
                "max_participants": 1000,
            },
        )
        if response.status_code != 201:
            raise BenchError(f"Could not create the room: {expect(response, 201)}")
        room = response.json()
        room_id = room["room_id"]
        # Each viewer's join token, as the join page gets it (issue_token: the room's
        # default role, a viewer), minted in one `manage.py shell` (not what is measured).
        started = time.perf_counter()
        out = server.manage("shell", "-c", MINT.format(room_id=room_id, n=viewers), timeout=120)
        tokens = dict(enumerate(json.loads(out.strip().splitlines()[-1])))
        if len(tokens) != viewers:
            raise BenchError(f"Minted {len(tokens)} viewer tokens, expected {viewers}")
        progress(f"{viewers} viewer tokens minted in {time.perf_counter() - started:.1f} s")

        # --- the host: signed in through the host link -----------------------------------
        host_path = "/" + room["host_url"].split("://", 1)[1].split("/", 1)[1]
        host_secret = host_path.rsplit("/", 1)[1]
        page = await web.get(host_path)
        if page.status_code != 200 or "sessionid" not in web.cookies:
            raise BenchError(f"The host page did not sign the host in: {page.status_code}")
        session = web.cookies["sessionid"]
        host_ws, _lobby, _ = await open_socket(
            f"/ws/rooms/{room_id}/host", additional_headers={"Cookie": f"sessionid={session}"}
        )
        stage_snapshot = json.loads(await asyncio.wait_for(host_ws.recv(), STEP_TIMEOUT))
        if stage_snapshot.get("type") != "stage":
            raise BenchError(f"The host socket sent no stage snapshot: {stage_snapshot}")

        seen: dict[str, float] = {}
        waiting: dict[str, asyncio.Event] = {}
        host_messages = 0

        async def read_host() -> None:
            nonlocal host_messages
            async for raw in host_ws:
                at = time.perf_counter()
                host_messages += 1
                message = json.loads(raw)
                if message.get("type") != "stage":
                    continue
                for hand in message["hands"]:
                    identity = hand["identity"]
                    if identity not in seen:
                        seen[identity] = at
                        event = waiting.get(identity)
                        if event is not None:
                            event.set()

        host_reader = asyncio.create_task(read_host())

        # --- (a) 1,000 viewers' sockets ----------------------------------------------------
        paths: list[tuple[str, str, str | None]] = [
            (f"/ws/rooms/{room_id}/stage", "stage", tokens[i]) for i in range(viewers)
        ]
        if settings["status_sockets"]:
            paths += [(f"/ws/rooms/{room_id}/status", "status", None)] * viewers
        connect_times: dict[str, list[float]] = {"stage": [], "status": []}
        failures: list[str] = []
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def open_one(path: str, kind: str, auth: str | None) -> None:
            async with gate:
                try:
                    ws, first, took = await open_socket(path, auth)
                except Exception as exc:  # noqa: BLE001 -- counted and reported
                    failures.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
                    return
                expected = "stage" if kind == "stage" else "room"
                if first.get("type") != expected:
                    failures.append(f"{kind}: first message {first}"[:200])
                sockets.append(ws)
                connect_times[kind].append(took)

        cpu = Cpu(server.pid)
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(open_one(p, k, a) for p, k, a in paths)),
            timeout=min(90, deadline.left()),
        )
        connect_wall = time.perf_counter() - started
        connect_cpu = cpu.percent()
        progress(f"{len(sockets)} sockets connected in {connect_wall:.1f} s")
        report["viewers"] = {
            "viewers": viewers,
            "sockets": len(paths),
            "connected": len(sockets),
            "failures": len(failures),
            "failure_samples": failures[:5],
            "wall_s": round(connect_wall, 2),
            "per_second": round(len(sockets) / connect_wall, 1) if connect_wall else None,
            "concurrency": CONNECT_CONCURRENCY,
            **connect_cpu,
            "stage_connect": stats(connect_times["stage"]),
            "status_connect": stats(connect_times["status"]),
            "server_rss_mb": rss_mb(server.pid),
            "server_threads": (_proc_stat(server.pid) or (0, None))[1] if server.pid else None,
        }
        if failures:
            raise BenchError(f"{len(failures)} sockets failed to connect, e.g. {failures[:3]}")

        # --- (b) hand raise -> host notified ---------------------------------------------
        raise_notify: list[float] = []
        raise_http: list[float] = []
        raise_errors: list[str] = []
        cpu = Cpu(server.pid)
        phase = time.perf_counter()
        for i in range(raises):
            deadline.left()
            identity = f"viewer-{i}"
            waiting[identity] = asyncio.Event()
            t0 = time.perf_counter()
            r = await web.post(
                f"/room/{room_id}/stage/hand",
                json={"raised": True},
                headers={"Authorization": f"Bearer {tokens[i]}"},
            )
            raise_http.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise_errors.append(expect(r, 200) or "")
                continue
            try:
                await asyncio.wait_for(waiting[identity].wait(), timeout=STEP_TIMEOUT)
            except TimeoutError:
                raise_errors.append(f"{identity}: the host was not notified")
                continue
            raise_notify.append(seen[identity] - t0)
        phase = time.perf_counter() - phase
        progress(f"{raises} hands raised in {phase:.1f} s")
        report["hand_raise"] = {
            "raises": raises,
            "notified": len(raise_notify),
            "errors": raise_errors[:5],
            "error_count": len(raise_errors),
            "notify": stats(raise_notify),
            "http": stats(raise_http),
            "wall_s": round(phase, 2),
            **cpu.percent(),
        }

        # --- (c) promote -> UpdateParticipant at LiveKit -------------------------------------
        double = server.double
        for i in range(promotes):
            double.join(tokens[i], room=room_id)
        promote_lk: list[float] = []
        promote_http: list[float] = []
        promote_errors: list[str] = []
        cpu = Cpu(server.pid)
        phase = time.perf_counter()
        for i in range(promotes):
            deadline.left()
            identity = f"viewer-{i}"
            before = len(double.calls)
            t0 = time.perf_counter()
            r = await web.post(
                f"/api/v1/rooms/{room_id}/host/stage/{identity}/promote",
                headers={"X-Host-Secret": host_secret},
            )
            promote_http.append(time.perf_counter() - t0)
            if r.status_code != 200 or r.json().get("role") != "speaker":
                promote_errors.append(expect(r, 200) or f"role {r.json().get('role')}")
                continue
            with double._lock:
                calls = list(double.calls[before:])
            matching = [
                c
                for c in calls
                if c.method == "UpdateParticipant"
                and c.request is not None
                and c.request.identity == identity
                and c.request.permission.can_publish
                and c.status == 200
            ]
            if not matching:
                promote_errors.append(f"{identity}: no UpdateParticipant reached LiveKit")
                continue
            promote_lk.append(matching[0].at - t0)
        phase = time.perf_counter() - phase
        progress(f"{promotes} promoted in {phase:.1f} s")
        report["promote"] = {
            "promotes": promotes,
            "updated": len(promote_lk),
            "errors": promote_errors[:5],
            "error_count": len(promote_errors),
            "to_update_participant": stats(promote_lk),
            "http": stats(promote_http),
            "wall_s": round(phase, 2),
            **cpu.percent(),
        }

        # --- every viewer socket still up? ---------------------------------------------------
        async def alive(ws: Any) -> bool:
            if ws.state is not State.OPEN:
                return False
            try:
                waiter = await ws.ping()
                await asyncio.wait_for(waiter, timeout=STEP_TIMEOUT)
            except Exception:  # noqa: BLE001 -- a dead socket
                return False
            return True

        checks = await asyncio.wait_for(
            asyncio.gather(*(alive(ws) for ws in sockets)), timeout=min(30, deadline.left())
        )
        report["viewers"]["open_at_end"] = sum(checks)
        report["viewers"]["held_s"] = round(time.perf_counter() - started, 1)
        report["host_messages"] = host_messages

        host_reader.cancel()
        await asyncio.gather(host_reader, return_exceptions=True)
        await host_ws.close()
    return report


async def close_all(sockets: list[Any]) -> None:
    gate = asyncio.Semaphore(200)

    async def close(ws: Any) -> None:
        async with gate:
            try:
                await asyncio.wait_for(ws.close(), timeout=3)
            except Exception:  # noqa: BLE001 -- closing anyway
                pass

    await asyncio.gather(*(close(ws) for ws in sockets))


def main() -> int:
    settings = {
        "viewers": env_int("BENCH_STAGE_VIEWERS", 1000),
        "raises": env_int("BENCH_STAGE_RAISES", 200),
        "promotes": env_int("BENCH_STAGE_PROMOTES", 200),
        "status_sockets": env_int("BENCH_STAGE_STATUS_SOCKETS", 1, minimum=0),
        "time_limit": env_int("BENCH_STAGE_TIME_LIMIT", 150),
    }
    settings["raises"] = min(settings["raises"], settings["viewers"])
    settings["promotes"] = min(settings["promotes"], settings["viewers"])
    sockets_per_viewer = 2 if settings["status_sockets"] else 1
    files = raise_open_files(2 * sockets_per_viewer * settings["viewers"] + 1024)
    layer = "Redis (REDIS_URL)" if os.environ.get("REDIS_URL") else "in-memory"
    print(f"channel layer: {layer}; open files limit {files['before']} -> {files['now']}")
    deadline = Deadline(settings["time_limit"])
    with AppServer() as server:
        env = server.describe()
        print(
            f"uvicorn {env['uvicorn']} (1 worker), {env['database']}, {env['cpus']} CPUs; "
            f"LiveKit double in this process"
        )
        report = asyncio.run(
            asyncio.wait_for(_run(server, settings, deadline), timeout=settings["time_limit"] + 30)
        )
        log = [line for line in server.log_lines() if line.strip()]
    # Exceptions the server logged (the last line of each traceback), counted.
    server_errors: dict[str, int] = {}
    for line in log:
        if not line.startswith(" ") and ("Error" in line or "Exception:" in line):
            if not line.startswith(("ERROR:", "Traceback")):
                server_errors[line[:200]] = server_errors.get(line[:200], 0) + 1
    v, h, p = report["viewers"], report["hand_raise"], report["promote"]
    kinds = "stage + status" if settings["status_sockets"] else "stage"
    sc, st = v["stage_connect"], v["status_connect"]
    print(
        f"viewers: {v['viewers']}, {v['sockets']} sockets ({kinds}) connected in "
        f"{v['wall_s']} s ({v['per_second']}/s, {v['concurrency']} at a time; "
        f"server CPU {v['server_cpu_pct']}%, bench {v['client_cpu_pct']}%)"
    )
    print(f"  stage socket connect p50 {sc['p50_ms']} / p99 {sc['p99_ms']} ms")
    if settings["status_sockets"]:
        print(f"  status socket connect p50 {st['p50_ms']} / p99 {st['p99_ms']} ms")
    print(
        f"  server RSS {v['server_rss_mb']} MB; open at the end: {v['open_at_end']}/"
        f"{v['connected']} (held {v['held_s']} s)"
    )
    print(
        f"hand raise -> host notified: {h['notified']}/{h['raises']}, p50 {h['notify']['p50_ms']}"
        f" / p99 {h['notify']['p99_ms']} / max {h['notify']['max_ms']} ms "
        f"(HTTP p50 {h['http']['p50_ms']} / p99 {h['http']['p99_ms']} ms; "
        f"server CPU {h['server_cpu_pct']}%, bench {h['client_cpu_pct']}%)"
    )
    lk = p["to_update_participant"]
    print(
        f"promote -> UpdateParticipant at LiveKit: {p['updated']}/{p['promotes']}, p50 "
        f"{lk['p50_ms']} / p99 {lk['p99_ms']} / max {lk['max_ms']} ms "
        f"(HTTP p50 {p['http']['p50_ms']} / p99 {p['http']['p99_ms']} ms; "
        f"server CPU {p['server_cpu_pct']}%, bench {p['client_cpu_pct']}%)"
    )
    path = write_results(
        NAME,
        {
            "environment": {**env, "channel_layer": layer, "open_files": files},
            "settings": settings,
            **report,
            "server_errors": server_errors,
            "server_log_tail": log[-20:],
        },
    )
    if server_errors:
        print(f"server logged errors: {server_errors}")
    print(f"results: {path.relative_to(Path(__file__).resolve().parent.parent)}")
    ok = (
        v["failures"] == 0
        and v["open_at_end"] == v["connected"] == v["sockets"]
        and h["notified"] == h["raises"]
        and p["updated"] == p["promotes"]
    )
    if not ok:
        print("FAILED: " + json.dumps({"raise": h["errors"], "promote": p["errors"]})[:600])
    return 0 if ok else 1


async def _run(server: AppServer, settings: dict[str, int], deadline: Deadline) -> dict:
    sockets: list[Any] = []
    try:
        return await scenario(server, settings, deadline, sockets)
    finally:
        await close_all(sockets)


if __name__ == "__main__":
    sys.exit(main())
