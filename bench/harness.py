"""Shared plumbing for the benchmarks in bench/: a real Parley server and a load loop.

`AppServer` stands up the whole application the way it runs in production, minus LiveKit:
a fresh database (SQLite in a temporary directory, or the caller's DATABASE_URL), migrations,
an enterprise tenant with an API key, a LiveKit double on 127.0.0.1 and uvicorn serving
`dashboard.asgi:application` on a free 127.0.0.1 port. Everything it starts is stopped and
everything it creates on disk is removed when the `with` block ends, even on errors.

`run_load` drives N requests through C concurrent coroutines and times each one; `Result`
turns the timings into requests/second and latency percentiles. New benchmarks (websockets,
scheduling, dashboard) reuse both: see bench/README.md.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"
LIVEKIT_API_KEY = "devkey"
MIGRATE_TIMEOUT = 90.0  # seconds
COMMAND_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
KEEPALIVE_EXPIRY = 3.0  # seconds; below uvicorn's default --timeout-keep-alive of 5
LOG_TAIL = 40  # lines of the server log shown when something goes wrong


class BenchError(Exception):
    """The benchmark could not run (setup failed); the message says why."""


def env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BenchError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise BenchError(f"{name} must be at least {minimum}, got {value}")
    return value


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _redact(url: str) -> str:
    """DATABASE_URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in {"postgres", "postgresql", "pgsql", "postgis"}


def ensure_postgres_database(url: str) -> bool:
    """Create the database DATABASE_URL names if it does not exist; True if it was created.

    Connects to the server's `postgres` maintenance database with the same credentials."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise BenchError(f"DATABASE_URL names no database: {_redact(url)}")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.Error as exc:
        raise BenchError(f"Cannot prepare PostgreSQL database {name!r}: {exc}") from None


def _uvicorn_command() -> list[str]:
    script = Path(sys.executable).parent / "uvicorn"
    if script.exists():
        return [str(script)]
    venv_script = ROOT / ".venv" / "bin" / "uvicorn"
    if venv_script.exists():
        return [str(venv_script)]
    return [sys.executable, "-m", "uvicorn"]


class AppServer:
    """Parley under uvicorn on 127.0.0.1 with a fresh enterprise tenant. Use as a context
    manager; `base_url`, `api_key`, `double` and `describe()` are valid inside the block."""

    def __init__(
        self,
        *,
        startup_timeout: float = 30.0,
        livekit_env: dict[str, str] | None = None,
        production: bool = False,
        workers: int = 1,
    ) -> None:
        self.startup_timeout = startup_timeout
        # production: scripts/serve.py (the production command: DEBUG=0, `workers` processes,
        # uvloop + httptools) instead of one plain uvicorn worker.
        self.production = production
        self.workers = workers
        # LIVEKIT_* settings for a real livekit-server (bench_media); default: the double.
        self.livekit_env = dict(livekit_env or {})
        self.tmp: Path | None = None
        self.double: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.port = 0
        self.api_key = ""
        self.database_url = ""
        self.database_created = False
        self._log_file: Any = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> AppServer:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self) -> None:
        from tests.livekit_double import LiveKitDouble

        self.tmp = Path(tempfile.mkdtemp(prefix="parley-bench-"))
        self.double = LiveKitDouble(
            api_key=LIVEKIT_API_KEY, api_secret=secrets.token_hex(20)
        ).start()

        caller_db = os.environ.get("DATABASE_URL", "").strip()
        if caller_db:
            self.database_url = caller_db
            if _is_postgres(caller_db):
                self.database_created = ensure_postgres_database(caller_db)
        else:
            self.database_url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"

        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "dashboard.settings",
                "DATABASE_URL": self.database_url,
                "PARLEY_VAR_DIR": str(self.tmp / "var"),
                "DEBUG": "1",
                "LOG_LEVEL": "WARNING",
                "LIVEKIT_URL": self.double.ws_url,
                "LIVEKIT_PUBLIC_URL": self.double.ws_url,
                "LIVEKIT_API_KEY": self.double.api_key,
                "LIVEKIT_API_SECRET": self.double.api_secret,
                "PYTHONUNBUFFERED": "1",
                # Everything stays on 127.0.0.1, whatever proxies the caller has configured.
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        env.update(self.livekit_env)
        self.env = env

        self.manage("migrate", "--noinput", timeout=MIGRATE_TIMEOUT)
        # A unique admin email, so that a reused (PostgreSQL) database accepts another run.
        email = f"bench-{secrets.token_hex(4)}@example.com" if caller_db else "bench@example.com"
        out = self.manage(
            "create_tenant", "Bench", "--plan", "enterprise", "--admin-email", email, "--json"
        )
        try:
            self.api_key = json.loads(out.strip().splitlines()[-1])["api_key"]
        except (ValueError, KeyError, IndexError):
            raise BenchError(f"create_tenant printed no API key: {out!r}") from None
        if not self.api_key:
            raise BenchError("create_tenant returned an empty API key")

        self.port = free_port()
        self.log_path = self.tmp / "uvicorn.log"
        self._log_file = self.log_path.open("wb")
        if self.production:
            self.env.update(
                {
                    "DEBUG": "0",
                    "SECRET_KEY": secrets.token_urlsafe(60),
                    "SECURE_SSL_REDIRECT": "0",
                    "HOST": HOST,
                    "PORT": str(self.port),
                    "WEB_CONCURRENCY": str(self.workers),
                }
            )
        cmd = [sys.executable, str(ROOT / "scripts" / "serve.py")] if self.production else []
        cmd = cmd or _uvicorn_command() + [
            "dashboard.asgi:application",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=self.production,  # the workers stop with their supervisor
        )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise BenchError(
                        f"uvicorn exited with code {self.proc.returncode} before answering "
                        f"/healthz\n{self.log_tail()}"
                    )
                try:
                    response = client.get(f"{self.base_url}/healthz")
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {' '.join(response.text.split())[:200]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.1)
        raise BenchError(
            f"uvicorn did not answer GET /healthz with 200 within {self.startup_timeout:.0f}s "
            f"(last: {last})\n{self.log_tail()}"
        )

    def close(self) -> None:
        """Stop uvicorn (waiting for it), stop the double, remove the temporary directory."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=STOP_TIMEOUT)
        finally:
            self.proc = None
            try:
                if self._log_file is not None:
                    self._log_file.close()
                    self._log_file = None
            finally:
                try:
                    if self.double is not None:
                        self.double.stop()
                        self.double = None
                finally:
                    if self.tmp is not None:
                        shutil.rmtree(self.tmp, ignore_errors=True)
                        self.tmp = None

    # --- helpers --------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run `manage.py <args>` in the server's environment; its stdout."""
        cmd = [sys.executable, str(ROOT / "manage.py"), *args]
        try:
            done = subprocess.run(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                text=True,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"manage.py {args[0]} did not finish within {timeout:.0f}s") from None
        if done.returncode != 0:
            raise BenchError(
                f"manage.py {' '.join(args)} failed with code {done.returncode}:\n"
                f"{done.stdout[-2000:]}{done.stderr[-4000:]}"
            )
        return done.stdout

    def log_lines(self) -> list[str]:
        """What uvicorn and Django wrote (warnings and errors only, LOG_LEVEL=WARNING)."""
        if self.log_path is None or not self.log_path.exists():
            return []
        if self._log_file is not None:
            self._log_file.flush()
        return self.log_path.read_text(errors="replace").splitlines()

    def log_tail(self, n: int = LOG_TAIL) -> str:
        lines = self.log_lines()[-n:]
        return "server log (tail):\n  " + "\n  ".join(lines) if lines else "(server log empty)"

    def describe(self) -> dict[str, str]:
        import uvicorn

        db = _redact(self.database_url)
        if db.startswith("sqlite:"):
            db = "SQLite (temporary file, WAL)"
        return {
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "uvicorn": uvicorn.__version__,
            "database": db,
            "cpus": str(os.cpu_count()),
        }


# --- load ----------------------------------------------------------------------------------

Send = Callable[[httpx.AsyncClient, int], Awaitable[str | None]]
"""One request: given the client and the request's index, send it and return None on
success or a short description of what went wrong."""


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Result:
    scenario: str
    requests: int  # asked for
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # seconds, successful and failed
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # description -> count
    error_times: list[float] = field(default_factory=list)  # s since start, first 20 failures
    elapsed: float = 0.0
    timed_out: bool = False
    client_cpu: float | None = None  # seconds of CPU the bench process used
    server_cpu: float | None = None  # seconds of CPU the server process used (Linux only)
    server_threads_max: int | None = None  # most threads seen in the server process

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> bool:
        return self.failures == 0 and not self.timed_out and self.done == self.requests

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        ms = 1000.0
        return {
            "scenario": self.scenario,
            "requests": self.done,
            "requested": self.requests,
            "concurrency": self.concurrency,
            "failures": self.failures,
            "timed_out": self.timed_out,
            "elapsed_s": round(self.elapsed, 3),
            "rps": round(self.done / self.elapsed, 1) if self.elapsed > 0 else 0.0,
            "p50_ms": round(_percentile(ordered, 50) * ms, 2),
            "p90_ms": round(_percentile(ordered, 90) * ms, 2),
            "p99_ms": round(_percentile(ordered, 99) * ms, 2),
            "max_ms": round(ordered[-1] * ms, 2) if ordered else math.nan,
            "client_cpu_pct": self._pct(self.client_cpu),
            "server_cpu_pct": self._pct(self.server_cpu),
            "server_threads_max": self.server_threads_max,
            "errors": dict(self.errors),
            "error_times_s": [round(t, 3) for t in self.error_times],
        }

    def _pct(self, cpu: float | None) -> float | None:
        """CPU seconds as a percentage of one core over the run."""
        if cpu is None or self.elapsed <= 0:
            return None
        return round(100 * cpu / self.elapsed, 1)


def _proc_stat(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, thread count) of a process from /proc; None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After "pid (comm)": state is fields[0], so utime/stime (14/15) are [11]/[12] and
    # num_threads (20) is [17].
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, int(fields[17])


async def run_load(
    client: httpx.AsyncClient,
    send: Send,
    *,
    scenario: str,
    requests: int,
    concurrency: int,
    time_limit: float,
    server_pid: int | None = None,
) -> Result:
    """Send `requests` requests from `concurrency` workers, each timing its own requests.

    Workers take the next index until all are taken or `time_limit` seconds have passed
    (then the result is marked timed out). A request that raises counts as a failure.
    With `server_pid`, the server's CPU time and thread count are sampled too."""
    result = Result(scenario=scenario, requests=requests, concurrency=concurrency)
    next_index = 0
    server_before = _proc_stat(server_pid) if server_pid else None
    client_before = time.process_time()
    start = time.perf_counter()
    deadline = start + time_limit
    running = True

    async def sample_threads() -> None:
        while running and server_pid:
            stat = _proc_stat(server_pid)
            if stat is None:
                return
            result.server_threads_max = max(result.server_threads_max or 0, stat[1])
            await asyncio.sleep(0.2)

    async def worker() -> None:
        nonlocal next_index
        while next_index < requests:
            if time.perf_counter() > deadline:
                result.timed_out = True
                return
            index = next_index
            next_index += 1
            t0 = time.perf_counter()
            try:
                error = await send(client, index)
            except httpx.HTTPError as exc:
                cause = exc.__cause__ or exc.__context__
                detail = str(exc) or (repr(cause) if cause else "")
                error = f"{type(exc).__name__}: {detail}"[:200]
            t1 = time.perf_counter()
            result.latencies.append(t1 - t0)
            if error is not None:
                result.failures += 1
                if len(result.error_times) < 20:
                    result.error_times.append(t1 - start)
                result.errors[error] = result.errors.get(error, 0) + 1

    sampler = asyncio.create_task(sample_threads())
    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        # Belt and braces: a request stuck past the client timeout cannot hang the bench.
        await asyncio.wait_for(asyncio.gather(*workers), timeout=time_limit + 60)
    except TimeoutError:
        result.timed_out = True
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    result.elapsed = time.perf_counter() - start
    result.client_cpu = time.process_time() - client_before
    running = False
    await sampler
    server_after = _proc_stat(server_pid) if server_pid else None
    if server_before and server_after:
        result.server_cpu = server_after[0] - server_before[0]
    return result


def expect(response: httpx.Response, status: int) -> str | None:
    """None if `response` has `status`, else a short description for the error tally."""
    if response.status_code == status:
        return None
    body = response.text[:160].replace("\n", " ")
    return f"HTTP {response.status_code} (expected {status}): {body}"


def async_client(server: AppServer, *, concurrency: int, timeout: float) -> httpx.AsyncClient:
    """An httpx client for `server`, authenticated as the bench tenant, pooling enough
    connections for `concurrency` workers, ignoring proxy settings (127.0.0.1 only)."""
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"X-API-Key": server.api_key},
        # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them,
        # so that a request never races the server's close (httpx does not retry a POST).
        limits=httpx.Limits(
            max_connections=concurrency,
            max_keepalive_connections=concurrency,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        ),
        timeout=timeout,
        trust_env=False,
    )


# --- reporting -----------------------------------------------------------------------------

COLUMNS = [
    ("scenario", "scenario", "<"),
    ("requests", "requests", ">"),
    ("concurrency", "conc", ">"),
    ("failures", "failed", ">"),
    ("rps", "req/s", ">"),
    ("p50_ms", "p50 ms", ">"),
    ("p99_ms", "p99 ms", ">"),
    ("max_ms", "max ms", ">"),
    ("server_cpu_pct", "srv cpu%", ">"),
    ("client_cpu_pct", "cli cpu%", ">"),
    ("server_threads_max", "srv thr", ">"),
]


def format_table(rows: list[dict[str, Any]]) -> str:
    cells = [[h for _, h, _ in COLUMNS]]
    for row in rows:
        line = []
        for key, _, _ in COLUMNS:
            value = row[key]
            if value is None:
                line.append("-")
            else:
                line.append(f"{value:.1f}" if isinstance(value, float) else str(value))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    out = []
    for n, r in enumerate(cells):
        out.append(
            "  ".join(f"{c:{a}{w}}" for c, (_, _, a), w in zip(r, COLUMNS, widths, strict=True))
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
