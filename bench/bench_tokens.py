"""The join-token path under fixed concurrency, on the production server command, beside the
Express "Interactive Show" server it replaces.

For 15 s, 50 connections send back to back (wrk when installed, else a load generator in a
separate process):

* ``parley-sqlite``    -- ``POST /api/v1/rooms/{room_id}/tokens`` on scripts/serve.py
  (DEBUG=0, WEB_CONCURRENCY workers, uvloop + httptools), SQLite in a temporary directory;
* ``parley-postgres``  -- the same on PostgreSQL (BENCH_POSTGRES_URL, default
  ``postgres://postgres@127.0.0.1:5432/parley_bench``; skipped when unreachable);
* ``show-sqlite``, ``show-postgres`` -- Parley's Interactive Show facade, ``POST
  /api/rooms/join`` as a viewer: the Express server's own route and body, with X-API-Key;
* ``express``          -- ``POST /api/rooms/join`` of the Express server
  (github.com/norfrt6-lab/livekit, ``packages/server``), when EXPRESS_SERVER_DIR names a
  checkout of that package with its node_modules installed; run with tsx on 127.0.0.1.

Each request carries a new identity (a join storm: every viewer is new), so every Parley
token also writes its participant row. REDIS_URL, when set, is passed to Parley (shared rate
limits and caches, as in production). Printed: req/s, p50, p99, errors (non-2xx, socket
errors, timeouts) and the server's resident memory (all its processes) at the end.

Each server first gets BENCH_WARMUP_SECONDS (3) of the same load, not measured (new
identities too), so that it is measured warm: Node's JIT, and each Parley worker's first
requests (which teach its fast path the host's headers) and database connections.

Environment: BENCH_DURATION (15), BENCH_CONNECTIONS (50), BENCH_WARMUP_SECONDS (3),
WEB_CONCURRENCY (2 with REDIS_URL, else 1),
BENCH_POSTGRES_URL, EXPRESS_SERVER_DIR, BENCH_TOKENS_ONLY (comma list of the scenarios).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    AppServer,
    BenchError,
    env_int,
    free_port,
    write_results,
)

NAME = "tokens"
HOST = "127.0.0.1"

LUA = """
counter = 0
local threads = 0
setup = function(thread) threads = threads + 1; thread:set("tid", threads) end
request = function()
  counter = counter + 1
  local body = string.format(BODY_FORMAT, tid, counter)
  return wrk.format("POST", nil, HEADERS, body)
end
"""


def _tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _rss_tree(pid: int) -> int:
    """Resident memory (bytes) of `pid` and its descendants."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def _cpu_tree(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass
    return total


def measured(pid: int, run: Any) -> dict[str, Any]:
    """`run()`'s figures plus the server's CPU milliseconds per request and its memory."""
    before = _cpu_tree(pid)
    figures = run()
    cpu = _cpu_tree(pid) - before
    figures["cpu_ms_per_request"] = round(1000 * cpu / max(figures["requests"], 1), 2)
    figures["rss_mb"] = round(_rss_tree(pid) / 2**20, 1)
    return figures


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, headers: dict[str, str], body_format: str, *, duration: int, conns: int):
    """wrk -t2 -cN -dD --latency with a new identity per request; parsed figures."""
    lua_headers = "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items()) + "}"
    script = LUA.replace("BODY_FORMAT", json.dumps(body_format)).replace("HEADERS", lua_headers)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--timeout", "30s", "--latency"]
            + ["-s", f.name, url],
            capture_output=True,
            text=True,
            timeout=duration + 60,
        ).stdout
    finally:
        os.unlink(f.name)
    figures: dict[str, Any] = {"tool": "wrk", "raw": out}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    figures["rps"] = float(rps.group(1)) if rps else 0.0
    for q in ("50", "99"):
        m = re.search(rf"^\s+{q}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        figures[f"p{q}_ms"] = _ms(*m.groups()) if m else None
    total = re.search(r"(\d+) requests in", out)
    figures["requests"] = int(total.group(1)) if total else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(x) for x in sock.groups()) if sock else 0
    )
    return figures


def run_python_load(url: str, headers: dict[str, str], body_format: str, *, duration, conns):
    """Fallback without wrk: bench/loadgen.py in its own process (the same figures)."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "loadgen.py"), url, json.dumps(headers)]
        + [body_format, str(duration), str(conns)],
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    if out.returncode != 0:
        raise BenchError(f"load generator failed: {out.stderr[-2000:]}")
    return {"tool": "loadgen.py", **json.loads(out.stdout)}


def load(url: str, headers: dict[str, str], body_format: str) -> dict[str, Any]:
    duration = env_int("BENCH_DURATION", 15)
    conns = env_int("BENCH_CONNECTIONS", 50)
    use_wrk = shutil.which("wrk") and os.environ.get("BENCH_LOADGEN") != "python"
    runner = run_wrk if use_wrk else run_python_load
    return runner(url, headers, body_format, duration=duration, conns=conns)


def warm_up(url: str, headers: dict[str, str], body_format: str) -> None:
    """BENCH_WARMUP_SECONDS (3) of the same load, not measured, with identities of their own:
    every server (Node's JIT, each Parley worker's first requests and connections) is
    measured warm."""
    seconds = env_int("BENCH_WARMUP_SECONDS", 3)
    if seconds > 0:
        conns = env_int("BENCH_CONNECTIONS", 50)
        use_wrk = shutil.which("wrk") and os.environ.get("BENCH_LOADGEN") != "python"
        runner = run_wrk if use_wrk else run_python_load
        runner(url, headers, body_format.replace("%d-%d", "w%d-%d"), duration=seconds, conns=conns)


SHOW_BODY = '{"roomName":"bench","participantName":"g-%d-%d","role":"viewer"}'


def parley(database_url: str | None, route: str = "v1") -> dict[str, Any]:
    """`route` "v1": POST /api/v1/rooms/{room_id}/tokens; "show": Interactive Show's POST
    /api/rooms/join as a viewer, the Express server's own route and body."""
    workers = env_int("WEB_CONCURRENCY", 2 if os.environ.get("REDIS_URL") else 1)
    saved = os.environ.get("DATABASE_URL")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    try:
        with AppServer(production=True, workers=workers) as server:
            headers = {"X-API-Key": server.api_key, "Content-Type": "application/json"}
            if route == "show":
                url = f"{server.base_url}/api/rooms/join"
                host = {"roomName": "bench", "participantName": "host", "role": "host"}
                first = httpx.post(url, json=host, headers=headers, timeout=30)
                body = SHOW_BODY
            else:
                room = httpx.post(
                    f"{server.base_url}/api/v1/rooms",
                    json={"name": "Bench webinar"},
                    headers=headers,
                    timeout=30,
                )
                if room.status_code != 201:
                    raise BenchError(f"create room: {room.status_code} {room.text[:300]}")
                url = f"{server.base_url}/api/v1/rooms/{room.json()['room_id']}/tokens"
                first = httpx.post(url, json={"name": "Host"}, headers=headers, timeout=30)
                body = '{"name":"Guest","identity":"g-%d-%d"}'
            if first.status_code != 200:
                raise BenchError(f"first token: {first.status_code} {first.text[:300]}")
            assert server.pid is not None
            warm_up(url, headers, body)
            figures = measured(server.pid, lambda: load(url, headers, body))
            figures["workers"] = workers
            return figures
    finally:
        if saved is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved


def express(directory: Path) -> dict[str, Any]:
    tsx = directory / "node_modules" / ".bin" / "tsx"
    if not tsx.exists():
        raise BenchError(f"{tsx} is missing: npm install in {directory}")
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "LIVEKIT_WS_URL": "ws://127.0.0.1:7880",
        "LIVEKIT_API_KEY": "devkey",
        "LIVEKIT_API_SECRET": "bench-secret-bench-secret-bench-secret",
        "NODE_ENV": "production",
    }
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [str(tsx), "src/index.ts"],
        cwd=directory,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://{HOST}:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                log.seek(0)
                raise BenchError(f"Express did not start: {log.read()[-2000:]!r}")
            time.sleep(0.2)
        url = f"http://{HOST}:{port}/api/rooms/join"
        headers = {"Content-Type": "application/json"}
        body = SHOW_BODY
        warm_up(url, headers, body)
        figures = measured(proc.pid, lambda: load(url, headers, body))
        figures["workers"] = 1
        return figures
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _postgres_reachable(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def main() -> int:
    only = {s for s in os.environ.get("BENCH_TOKENS_ONLY", "").split(",") if s}
    pg_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/parley_bench")
    express_dir = os.environ.get("EXPRESS_SERVER_DIR", "")
    plan: list[tuple[str, Any]] = []
    if express_dir:
        plan.append(("express", lambda: express(Path(express_dir))))
    else:
        print("express: skipped (EXPRESS_SERVER_DIR names no checkout of packages/server)")
    plan.append(("parley-sqlite", lambda: parley(None)))
    plan.append(("show-sqlite", lambda: parley(None, "show")))
    if _postgres_reachable(pg_url):
        plan.append(("parley-postgres", lambda: parley(pg_url)))
        plan.append(("show-postgres", lambda: parley(pg_url, "show")))
    else:
        print(f"parley-postgres: skipped ({pg_url.rsplit('@', 1)[-1]} unreachable)")

    rows: dict[str, dict[str, Any]] = {}
    failed = False
    for name, run in plan:
        if only and name not in only:
            continue
        try:
            rows[name] = run()
        except BenchError as exc:
            print(f"{name}: ERROR {exc}")
            failed = True
            continue
        r = rows[name]
        print(
            f"{name:16} {r['tool']:10} workers={r['workers']}  {r['rps']:8.1f} req/s  "
            f"p50 {r['p50_ms'] or 0:7.1f} ms  p99 {r['p99_ms'] or 0:7.1f} ms  "
            f"errors {r['errors']}  requests {r['requests']}  "
            f"CPU/request {r['cpu_ms_per_request']} ms  RSS {r['rss_mb']} MB",
            flush=True,
        )
    if "express" in rows and rows["express"]["rps"]:
        for name, r in rows.items():
            if name != "express":
                ratio = r["rps"] / rows["express"]["rps"]
                print(f"{name}: {ratio:.2f} x Express's req/s (target >= 0.5, p99 < 100 ms)")
    path = write_results(
        NAME, {k: {kk: vv for kk, vv in v.items() if kk != "raw"} for k, v in rows.items()}
    )
    print(f"results: {path}")
    return 1 if failed or any(r["errors"] for r in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
