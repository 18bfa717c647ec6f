"""Scheduled starts: how late 1,000 occurrences due at once start, and what a dispatcher tick
costs with 100,000 future occurrences stored.

Scenarios:

* ``spread`` -- 1,000 one-off scheduled rooms (``rooms.create_room`` in-process, enterprise
  tenant, so no concurrency limit) whose starts are spread over one minute (T0 + i*60/1000 s;
  create_schedule keeps whole seconds, so ~17 fall due each second), T0 45 s after creation
  begins (up to 60 s if a calibration says creating them takes longer). A real Celery worker
  (``--pool=threads --concurrency=8``) and beat (``SCHEDULE_TICK_SECONDS=1``) start them:
  ``dispatch`` claims each within the 30 s lookahead and queues ``start_occurrence`` with an
  ETA at its start.
* ``burst`` -- the same with all 1,000 due at the very same second.

  For both: lateness = ``Occurrence.started_at - start_time`` (p50/p99/max), the time from
  the first due start to the last actual start, how many went live, RoomSession rows (exactly
  one per room) and LiveKit CreateRoom calls, against the target p99 < 1 s. Where the time
  goes: when the dispatcher (last) claimed each, when it began (``started_at``) and when its
  room row was saved live (``Room.updated_at``, after the LiveKit call), task run times and
  dispatch ticks from the worker log, CPU per process, PostgreSQL backends waiting on locks
  or idle in a transaction (sampled from pg_stat_activity), sessions and Redis connections
  opened.
* ``service`` (diagnosis; worker stopped) -- start_occurrence in-process, one at a time, each
  on a new database connection (a Celery task gets one: the worker closes the connection
  before and after every task), timed, then profiled: connecting, the LiveKit call, the
  events sent on commit, SQL.
* ``tick`` -- 100,000 future occurrences bulk-inserted (100 rooms with open-ended schedules,
  starts over the next 60 days) plus 10 due within the lookahead; ``claim_due`` and
  ``extend_windows`` timed in-process: 20 ticks with the due ones' dispatched_at reset before
  each, and 20 with nothing due; then 20 trials of two claim_due at the same moment (two
  overlapping dispatch ticks), counting occurrences both claimed.

Modes: with DATABASE_URL set, that server (PostgreSQL: the database ``parley_bench_schedule``
next to the one named, created if missing; this bench's rooms are deleted at the end);
otherwise a temporary SQLite file. With REDIS_URL set, db 2 of that Redis (flushed first) is
the broker, cache and channel layer; otherwise the filesystem broker in the temporary
directory (it polls about once a second).

The bench body runs in a child process of its own (``--child``), so that django.setup() with
this bench's settings never leaks into another bench that bench/run.py runs in its process.
The worker runs with DEBUG=0 (as in production) and CELERY_SKIP_CHECKS=1.

``bench/run.py schedule --burst N`` runs only the burst scenario, with N rooms, twice: on a
temporary SQLite file with the filesystem broker, then on PostgreSQL + Redis (DATABASE_URL and
REDIS_URL when they name them, else postgres://postgres@127.0.0.1:5432 and
redis://127.0.0.1:6379; skipped with a line saying why when they do not answer). Its rooms
are created through the service a day ahead and then all moved (one UPDATE of what
move_occurrence writes) to 40 s later, so that a busy machine's slow creation cannot make
them late before the scheduler even sees them. Starts due at
least SCHEDULE_PREPARE_SECONDS ahead have their LiveKit rooms pre-created in the look-ahead
(``prepare_rooms``) and go live in batches (``start_occurrences``); besides ``started_at`` the
bench reports when each start was first *seen* live by another connection (polled every
0.1 s), i.e. committed.

Environment: BENCH_SCHEDULE_REDIS_DB (the Redis db used and flushed, default 2),
BENCH_SCHEDULE_DATABASE (the PostgreSQL database's name, default parley_bench_schedule),
BENCH_SCHEDULE_ROOMS (rooms per scenario, default 1000), BENCH_WORKER_CONCURRENCY
(worker threads, default 8), BENCH_FUTURE_OCCURRENCES (default 100000), BENCH_TICK_REPS
(default 20), DATABASE_URL, REDIS_URL; other Parley settings pass through to the worker.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    HOST,
    LIVEKIT_API_KEY,
    ROOT,
    BenchError,
    _is_postgres,
    _percentile,
    _proc_stat,
    _redact,
    ensure_postgres_database,
    env_int,
    write_results,
)

NAME = "schedule"
# PostgreSQL database of this bench (next to the one DATABASE_URL names); created if missing.
BENCH_DATABASE = os.environ.get("BENCH_SCHEDULE_DATABASE", "") or "parley_bench_schedule"
# Redis db of the broker (and cache/channel layer) of this bench; flushed first.
BROKER_DB = int(os.environ.get("BENCH_SCHEDULE_REDIS_DB", "") or 2)
TENANT_NAME = "Bench schedule"
# Seconds from starting to create a scenario's rooms to its first due start: LEAD_MIN, or
# more (up to LEAD_MAX) when a calibration of CALIBRATE rooms says creating them takes longer.
LEAD_MIN = 45.0
LEAD_MAX = 60.0
CALIBRATE = 20
MAX_RESTARTS = 3  # celery processes that exit are restarted this often in all, then we fail
READY = {"worker": "ready.", "beat": "Sending due task"}
SPREAD = 60.0  # seconds over which the spread scenario's starts lie
DRAIN_LIMIT = 60.0  # seconds after the last due start to wait for every room to go live
BUDGET = 300.0  # seconds for the whole bench body; the waits for starts end early to keep it
RESERVE = 45.0  # seconds kept for the service and tick scenarios and the clean-up
MIN_DRAIN = 25.0  # seconds after its start the burst may wait at least, whatever the spread
STARTUP_TIMEOUT = 30.0  # worker / beat
STOP_TIMEOUT = 10.0
CHILD_TIME_LIMIT = 315.0  # hard limit for the child process (it keeps to BUDGET itself)
# `--burst N` alone: a busy machine may take minutes to create the rooms through the service,
# so they are created a day ahead and then moved to STAGED_LEAD s from then, all at once.
STAGED_LEAD = 40.0
BURST_BUDGET = 420.0
BURST_TIME_LIMIT = 440.0
SEEN_POLL = 0.1  # seconds between polls for the starts other connections see committed
SERVICE_SAMPLES = 30
DUE_IN_TICK = 10  # occurrences due within the lookahead in the tick scenario
TICK_ROOMS = 100
TARGET_P99_MS = 1000.0

LOG_LINE = re.compile(r"^\[(?P<at>[\d-]+ [\d:,]+): (?P<level>\w+)/[^\]]*\] (?P<msg>.*)$")
TASK_DONE = re.compile(r"Task (?P<task>[\w.]+)\[[^\]]+\] succeeded in (?P<s>[\d.e-]+)s: (?P<r>.*)$")
TASK_RECEIVED = re.compile(r"Task (?P<task>[\w.]+)\[[^\]]+\] received")
TASK_RETRY = re.compile(r"Task (?P<task>[\w.]+)\[[^\]]+\] retry:")


# --- small helpers ---------------------------------------------------------------------------


def _ms_stats(seconds: list[float]) -> dict[str, Any]:
    """min/p50/p90/p99/max/mean in ms of a list of seconds (nearest-rank percentiles)."""
    v = sorted(s * 1000.0 for s in seconds)
    if not v:
        return {"n": 0}
    return {
        "n": len(v),
        "min": round(v[0], 1),
        "p50": round(_percentile(v, 50), 1),
        "p90": round(_percentile(v, 90), 1),
        "p99": round(_percentile(v, 99), 1),
        "max": round(v[-1], 1),
        "mean": round(sum(v) / len(v), 1),
    }


def _fmt(stats: dict[str, Any], keys: tuple[str, ...] = ("p50", "p99", "max")) -> str:
    if not stats.get("n"):
        return "(none)"
    return ", ".join(f"{k} {stats[k]:,.1f}" for k in keys) + " ms"


def _system_cpu() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat; None without /proc."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return float(total - idle), float(total)


def _cpu_pct(before: Any, after: Any) -> float | None:
    if not before or not after or after[1] <= before[1]:
        return None
    return round(100.0 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def _time_wait_sockets() -> int | None:
    """TCP sockets in TIME_WAIT on this machine (connections closed in the last minute)."""
    count, seen = 0, False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        seen = True
        count += sum(1 for line in lines if line.split()[3] == "06")
    return count if seen else None


def _wait_until(moment: dt.datetime) -> None:
    from django.utils import timezone

    delay = (moment - timezone.now()).total_seconds()
    if delay > 0:
        time.sleep(delay)


# --- worker and beat -------------------------------------------------------------------------


class Processes:
    """Celery worker and beat as subprocesses, each in a session of its own (so a whole
    process group can be signalled) and logging to a file in the temporary directory."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, Any] = {}
        self._args: dict[str, tuple[str, ...]] = {}
        self._offsets: dict[str, int] = {}  # where the current process's output begins
        self.crashes: list[dict[str, Any]] = []

    def _celery(self) -> str:
        script = Path(sys.executable).parent / "celery"
        return str(script if script.exists() else ROOT / ".venv" / "bin" / "celery")

    def start(self, name: str, *args: str) -> None:
        """Start `celery -A dashboard <args>`; its output is appended to <name>.log."""
        self._offsets[name] = self.log_size(name)
        log = (self.tmp / f"{name}.log").open("ab")
        self._logs[name] = log
        self._args[name] = args
        self.procs[name] = subprocess.Popen(
            [self._celery(), "-A", "dashboard", *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_path(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def log(self, name: str, offset: int = 0) -> str:
        path = self.log_path(name)
        if not path.exists():
            return ""
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_size(self, name: str) -> int:
        path = self.log_path(name)
        return path.stat().st_size if path.exists() else 0

    def tail(self, name: str, n: int = 25) -> str:
        lines = self.log(name).splitlines()[-n:]
        return f"{name} log (tail):\n  " + "\n  ".join(lines) if lines else f"({name} log empty)"

    def wait_log(
        self, name: str, text: str, timeout: float = STARTUP_TIMEOUT, offset: int = 0
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name, offset):
                return
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.2)
        raise BenchError(f"celery {name} did not log {text!r} in {timeout:.0f}s\n{self.tail(name)}")

    def check(self, ready: dict[str, str]) -> None:
        """Restart (as a supervisor would) a process that exited, recording why: at most
        MAX_RESTARTS in all, then the bench fails."""
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            errors = [
                line.strip()
                for line in self.log(name, self._offsets[name]).splitlines()
                if re.match(r"^[\w.]+(Error|Exception): ", line.strip())
            ]
            crash = {
                "process": name,
                "exit_code": proc.returncode,
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "error": errors[-1] if errors else "(no exception in its log)",
            }
            self.crashes.append(crash)
            print(f"  !! celery {name} exited ({proc.returncode}): {crash['error']}", flush=True)
            if len(self.crashes) > MAX_RESTARTS:
                raise BenchError(f"celery {name} exited again\n{self.tail(name)}")
            self._logs.pop(name).close()
            self.start(name, *self._args[name])
            self.wait_log(name, ready[name], offset=self._offsets[name])
            print(f"  !! celery {name} restarted", flush=True)

    def pid(self, name: str) -> int | None:
        proc = self.procs.get(name)
        return proc.pid if proc is not None else None

    def stop_all(self) -> None:
        """SIGTERM each process group, SIGKILL what is still there after STOP_TIMEOUT."""
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(STOP_TIMEOUT)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(STOP_TIMEOUT)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        for log in self._logs.values():
            log.close()
        self._logs.clear()


def _cpu_by_process(names: dict[int, str]) -> dict[int, tuple[str, float]]:
    """pid -> (label, CPU seconds incl. reaped children) of every process in /proc. `names`
    labels known pids (worker, beat, this bench); others are labelled by their command."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        # utime, stime, cutime, cstime: fields 14-17, i.e. [11]..[14] after "pid (comm)".
        cpu = sum(int(x) for x in fields[11:15]) / ticks
        pid = int(entry.name)
        out[pid] = (names.get(pid, comm), cpu)
    return out


class Probe:
    """What the machine, PostgreSQL and Redis did while a scenario drained: CPU per process,
    PostgreSQL backends (active, waiting on a lock, idle in a transaction) sampled every
    poll, PostgreSQL sessions opened, Redis connections opened."""

    def __init__(self, procs: Processes, broker_url: str) -> None:
        from django.db import connection

        self.names = {os.getpid(): "bench process (LiveKit double, poller)"}
        for name in ("worker", "beat"):
            pid = procs.pid(name)
            if pid:
                self.names[pid] = f"celery {name}"
        self.postgres = connection.vendor == "postgresql"
        self.redis = None
        if broker_url:
            import redis

            self.redis = redis.Redis.from_url(broker_url, socket_connect_timeout=5)
        self.samples = 0
        self.active = 0
        self.lock_waits = 0
        self.idle_in_tx = 0
        self.waited: Counter[str] = Counter()
        self.most_lock_waits = 0

    def _pg_sessions(self) -> int | None:
        from django.db import connection

        if not self.postgres:
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
            row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def _redis_connections(self) -> int | None:
        if self.redis is None:
            return None
        return int(self.redis.info("stats")["total_connections_received"])

    def begin(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = _cpu_by_process(self.names)
        self.sessions0 = self._pg_sessions()
        self.redis0 = self._redis_connections()

    def sample(self) -> None:
        from django.db import connection

        if not self.postgres:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT state, wait_event_type, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
                " FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            rows = cursor.fetchall()
        self.samples += 1
        waits = 0
        for state, wait_type, query in rows:
            if state == "active":
                self.active += 1
                if wait_type == "Lock":
                    waits += 1
                    self.waited[query] += 1
            elif state and state.startswith("idle in transaction"):
                self.idle_in_tx += 1
        self.lock_waits += waits
        self.most_lock_waits = max(self.most_lock_waits, waits)

    def end(self, starts: int) -> dict[str, Any]:
        elapsed = time.monotonic() - self.t0
        cpu1 = _cpu_by_process(self.names)
        by_label: Counter[str] = Counter()
        for pid, (label, cpu) in cpu1.items():
            before = self.cpu0.get(pid)
            by_label[label] += cpu - (before[1] if before else 0.0)
        top = {
            label: round(100.0 * cpu / elapsed, 1)
            for label, cpu in by_label.most_common(6)
            if cpu > 0.01 * elapsed
        }
        out: dict[str, Any] = {"window_s": round(elapsed, 2), "cpu_pct_of_one_core": top}
        sessions1, redis1 = self._pg_sessions(), self._redis_connections()
        if self.sessions0 is not None and sessions1 is not None:
            out["pg_sessions_opened"] = sessions1 - self.sessions0
        if self.redis0 is not None and redis1 is not None:
            out["redis_connections_opened"] = redis1 - self.redis0
            out["redis_connections_per_start"] = round((redis1 - self.redis0) / max(starts, 1), 1)
        if self.samples:
            out["pg_samples"] = self.samples
            out["pg_active_avg"] = round(self.active / self.samples, 2)
            out["pg_lock_waiting_avg"] = round(self.lock_waits / self.samples, 2)
            out["pg_lock_waiting_max"] = self.most_lock_waits
            out["pg_idle_in_transaction_avg"] = round(self.idle_in_tx / self.samples, 2)
            out["pg_lock_waited_queries"] = dict(self.waited.most_common(3))
        return out

    def queued(self) -> int | None:
        """Messages still waiting in the Redis broker queue."""
        return int(self.redis.llen("celery")) if self.redis is not None else None

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()


def parse_worker_log(text: str) -> dict[str, Any]:
    """Task counts, run times and dispatch results from a Celery worker log at INFO."""
    received: Counter[str] = Counter()
    results: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    runtimes: dict[str, list[float]] = {}
    dispatch_starts: list[int] = []
    problems: list[str] = []
    revoked = 0
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        msg, level = m["msg"], m["level"]
        if done := TASK_DONE.search(msg):
            task = done["task"].rsplit(".", 1)[-1]
            runtimes.setdefault(task, []).append(float(done["s"]))
            if task == "dispatch":
                starts = re.search(r"'starts': (\d+)", done["r"])
                if starts:
                    dispatch_starts.append(int(starts[1]))
            else:
                results[f"{task}: {done['r'].strip(chr(39))}"] += 1
        elif got := TASK_RECEIVED.search(msg):
            received[got["task"].rsplit(".", 1)[-1]] += 1
        elif retry := TASK_RETRY.search(msg):
            retries[retry["task"].rsplit(".", 1)[-1]] += 1
        elif "revoked" in msg or "expired" in msg:
            revoked += 1
        elif level in {"WARNING", "ERROR", "CRITICAL"}:
            if len(problems) < 10:
                problems.append(f"{level}: {msg[:200]}")
    return {
        "received": dict(received),
        "results": dict(results),
        "retries": dict(retries),
        "runtime_ms": {task: _ms_stats(v) for task, v in runtimes.items()},
        "dispatch_ticks": len(runtimes.get("dispatch", [])),
        "dispatch_claimed_max": max(dispatch_starts, default=0),
        "dispatch_claimed_total": sum(dispatch_starts),
        "revoked_or_expired": revoked,
        "problems": problems,
    }


# --- setup -----------------------------------------------------------------------------------


def _database(tmp: Path) -> tuple[str, str, bool]:
    """(DATABASE_URL for this bench, description, whether it was created)."""
    caller = os.environ.get("DATABASE_URL", "").strip()
    if not caller:
        return f"sqlite:///{tmp / 'schedule.sqlite3'}", "SQLite (temporary file, WAL)", False
    if _is_postgres(caller):
        url = urlunsplit(urlsplit(caller)._replace(path=f"/{BENCH_DATABASE}"))
        created = ensure_postgres_database(url)
        return url, f"PostgreSQL {_redact(url)}", created
    return caller, _redact(caller), False


def _broker() -> tuple[str, str]:
    """(REDIS_URL for this bench or "", description). Redis db BROKER_DB is flushed."""
    caller = os.environ.get("REDIS_URL", "").strip()
    if not caller:
        return "", "filesystem broker (temporary directory, polled ~1/s)"
    parts = urlsplit(caller)
    if parts.scheme not in {"redis", "rediss"}:
        raise BenchError(f"REDIS_URL must be redis:// or rediss://, got {_redact(caller)}")
    url = urlunsplit(parts._replace(path=f"/{BROKER_DB}"))
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.flushdb()
        client.close()
    except redis.RedisError as exc:
        raise BenchError(f"Cannot use Redis {_redact(url)}: {exc}") from None
    return url, f"Redis {_redact(url)}"


def _purge(tenant_ids: list[int]) -> None:
    """Remove the rooms (and their schedules, occurrences, sessions) of these tenants.

    Scheduled occurrences are never referenced by a session, so they go with one DELETE
    (100,000 of them through the ORM's collector would take long); the rest cascades."""
    from conferences.models import Occurrence, Room

    if not tenant_ids:
        return
    scheduled = Occurrence.objects.filter(
        room__tenant_id__in=tenant_ids, status=Occurrence.Status.SCHEDULED
    )
    scheduled._raw_delete(scheduled.db)
    Room.objects.filter(tenant_id__in=tenant_ids).delete()


# --- the due-at-once scenarios ---------------------------------------------------------------


def due_scenario(
    name: str,
    *,
    tenant: Any,
    offsets: list[float],
    procs: Processes,
    double: Any,
    broker_url: str,
    wait_until: float,
    staged: bool = False,
) -> dict[str, Any]:
    """Create one scheduled room per offset (seconds after T0 = now + lead), wait until all
    are live (at most DRAIN_LIMIT s after the last due start, and not past the monotonic
    `wait_until`), and measure. The lead is 45-60 s: enough to create all rooms before T0,
    going by the time CALIBRATE rooms (due a day later, never started) take."""
    from django.conf import settings
    from django.db.models import Count, F
    from django.utils import timezone

    from conferences.models import Occurrence, Room, RoomSession
    from conferences.services import rooms as room_services

    n = len(offsets)
    log_offset = procs.log_size("worker")

    def create(label: str, start: dt.datetime) -> Room:
        return room_services.create_room(
            tenant=tenant,
            data={
                "name": label,
                "room_type": "scheduled",
                "start_time": start,
                "end_time": start + dt.timedelta(hours=1),
            },
        )

    samples = []
    for i in range(CALIBRATE):
        t = time.perf_counter()
        create(f"Bench calibrate {i}", timezone.now() + dt.timedelta(days=1))
        samples.append(time.perf_counter() - t)
    estimate = _percentile(sorted(samples), 75) * n  # a spike in 20 samples says little
    lead = min(LEAD_MAX, max(LEAD_MIN, 1.3 * estimate + 10))
    created_at = timezone.now()
    t0 = (created_at + dt.timedelta(seconds=lead)).replace(microsecond=0)
    if staged:  # created a day ahead, then moved (below): the lead does not depend on load
        t0 = (created_at + dt.timedelta(days=1)).replace(microsecond=0)
    print(
        f"\n[{name}] creating {n} scheduled rooms (estimate {estimate:.0f}s), first due at "
        f"+{lead:.0f}s",
        flush=True,
    )
    room_pks: list[int] = []
    create_times: list[float] = []
    time_wait_before = _time_wait_sockets()
    started = time.perf_counter()
    for i, offset in enumerate(offsets):
        start = t0 + dt.timedelta(seconds=offset)
        t_create = time.perf_counter()
        room_pks.append(create(f"Bench {name} {i}", start).pk)
        create_times.append(time.perf_counter() - t_create)
    create_s = time.perf_counter() - started
    rooms = Room.objects.filter(pk__in=room_pks)
    occurrences = Occurrence.objects.filter(room_id__in=room_pks)
    if staged:
        # What move_occurrence writes (start, modified, dispatched_at cleared), for all of
        # them at once: the first start STAGED_LEAD s from now, beyond the look-ahead.
        lead = STAGED_LEAD
        moved_to = (timezone.now() + dt.timedelta(seconds=lead)).replace(microsecond=0)
        occurrences.update(
            start_time=F("start_time") - (t0 - moved_to), modified=True, dispatched_at=None
        )
    first_due = occurrences.order_by("start_time").values_list("start_time", flat=True).first()
    last_due = occurrences.order_by("-start_time").values_list("start_time", flat=True).first()
    margin = (first_due - timezone.now()).total_seconds()
    create_ms = _ms_stats(create_times)
    print(
        f"[{name}] created in {create_s:.1f}s ({n / create_s:.0f}/s; create_room "
        f"{_fmt(create_ms)}; TCP TIME_WAIT sockets before {time_wait_before}); first due in "
        f"{margin:.1f}s, last due {(last_due - first_due).total_seconds():.0f}s after the first",
        flush=True,
    )
    setup_late = margin < 0
    if setup_late:
        print(
            f"[{name}] INVALID: rooms were still being created {-margin:.1f}s after the first "
            "start (machine too busy); the lateness figures below include that",
            flush=True,
        )
    elif margin < settings.SCHEDULE_LOOKAHEAD_SECONDS:
        print(
            f"[{name}] (creation ended inside the {settings.SCHEDULE_LOOKAHEAD_SECONDS}s "
            "lookahead: the dispatcher claimed the rooms over several ticks)",
            flush=True,
        )

    crashes_before = len(procs.crashes)
    procs.check(READY)
    _wait_until(first_due - dt.timedelta(seconds=1))
    worker_pid = procs.pid("worker")
    cpu_worker_before = _proc_stat(worker_pid) if worker_pid else None
    cpu_sys_before = _system_cpu()
    mono_before = time.monotonic()
    probe = Probe(procs, broker_url)
    probe.begin()
    deadline = last_due + dt.timedelta(seconds=DRAIN_LIMIT)
    pending = n
    # When each start became visible to another connection (committed): the first poll that
    # saw it live. An upper bound of the commit time, within the poll period.
    seen: dict[int, dt.datetime] = {}
    try:
        while True:
            polled = timezone.now()
            for pk in occurrences.exclude(status=Occurrence.Status.SCHEDULED).values_list(
                "pk", flat=True
            ):
                seen.setdefault(pk, polled)
            pending = n - len(seen)
            if pending == 0 or timezone.now() > deadline or time.monotonic() > wait_until:
                break
            procs.check(READY)
            probe.sample()
            time.sleep(SEEN_POLL)
        mono_after = time.monotonic()
        cpu_worker_after = _proc_stat(worker_pid) if worker_pid else None
        cpu_sys_after = _system_cpu()
        machine = probe.end(n - pending)
        timed_out = pending > 0
        time.sleep(1.0)  # let a duplicate delivery, if any, show up in the counts below
        machine["broker_queue_left"] = probe.queued()
        machine["tcp_time_wait_after"] = _time_wait_sockets()
    finally:
        probe.close()

    rows = list(
        occurrences.values_list(
            "start_time", "dispatched_at", "started_at", "status", "room__updated_at", "pk"
        )
    )
    statuses = Counter(r[3] for r in rows)
    live = [r for r in rows if r[3] == Occurrence.Status.LIVE and r[2] is not None]
    lateness = [(r[2] - r[0]).total_seconds() for r in live]
    committed = [(r[4] - r[0]).total_seconds() for r in live]
    visible = [(seen[r[5]] - r[0]).total_seconds() for r in live if r[5] in seen]
    in_service = [(r[4] - r[2]).total_seconds() for r in live]
    leads = [(r[0] - r[1]).total_seconds() for r in rows if r[1] is not None]
    # dispatched_at is the latest claim: one after the start means the occurrence was still
    # waiting SCHEDULE_REDISPATCH_SECONDS after its start and was queued a second time.
    redispatched = sum(1 for lead in leads if lead < 0)
    sessions = RoomSession.objects.filter(room_id__in=room_pks)
    session_count = sessions.count()
    rooms_with_sessions = sessions.values("room_id").distinct().count()
    rooms_with_two = sessions.values("room_id").annotate(k=Count("id")).filter(k__gt=1).count()
    names = set(rooms.values_list("room_id", flat=True))
    create_calls = Counter(
        c.request.name
        for c in double.calls_to("CreateRoom")
        if c.request is not None and c.request.name in names
    )
    first_start = min((r[2] for r in live), default=None)
    last_start = max((r[2] for r in live), default=None)
    last_commit = max((r[4] for r in live), default=None)
    busy = 0
    per_second: Counter[int] = Counter()
    for r in live:
        per_second[int((r[2] - first_due).total_seconds())] += 1
    # Starts in service at the same moment (started_at .. room saved live): worker threads used.
    events = sorted([(r[2], 1) for r in live] + [(r[4], -1) for r in live])
    in_flight = 0
    for _, step in events:
        in_flight += step
        busy = max(busy, in_flight)
    late = _ms_stats(lateness)
    result = {
        "scenario": name,
        "rooms": n,
        "created_in_s": round(create_s, 2),
        "create_room_ms": create_ms,
        "tcp_time_wait_before_create": time_wait_before,
        "lead_s": round(lead, 1),
        "first_due_margin_s": round(margin, 1),
        "setup_late": setup_late,
        "due_span_s": round((last_due - first_due).total_seconds(), 1),
        "live": statuses.get(Occurrence.Status.LIVE, 0),
        "statuses": dict(statuses),
        "timed_out": timed_out,
        "sessions": session_count,
        "rooms_with_session": rooms_with_sessions,
        "livekit_create_calls": sum(create_calls.values()),
        "livekit_rooms_created_more_than_once": sum(1 for c in create_calls.values() if c > 1),
        "rooms_with_more_than_one_session": rooms_with_two,
        # No room started twice (sessions or LiveKit rooms); and, unless the wait was cut
        # short (the worker may still be starting some), one session for every room.
        "exactly_once": (
            rooms_with_two == 0
            and not any(c > 1 for c in create_calls.values())
            and (timed_out or (session_count == n and rooms_with_sessions == n))
        ),
        "lateness_ms": late,
        "committed_lateness_ms": _ms_stats(committed),
        "visible_lateness_ms": _ms_stats(visible),
        "in_service_ms": _ms_stats(in_service),
        "dispatch_lead_s": {
            "min": round(min(leads), 2) if leads else None,
            "p50": round(_percentile(sorted(leads), 50), 2) if leads else None,
            "max": round(max(leads), 2) if leads else None,
        },
        "redispatched": redispatched,
        "first_due_to_last_start_s": (
            round((last_start - first_due).total_seconds(), 3) if last_start else None
        ),
        "first_due_to_last_commit_s": (
            round((last_commit - first_due).total_seconds(), 3) if last_commit else None
        ),
        "start_span_s": (
            round((last_start - first_start).total_seconds(), 3) if last_start else None
        ),
        "starts_per_s_peak": max(per_second.values(), default=0),
        "starts_per_s_overall": (
            round(len(live) / max((last_commit - first_start).total_seconds(), 1e-3), 1)
            if live
            else 0.0
        ),
        "max_concurrent_starts": busy,
        "worker_cpu_pct": (
            round(
                100 * (cpu_worker_after[0] - cpu_worker_before[0]) / (mono_after - mono_before), 1
            )
            if cpu_worker_before and cpu_worker_after
            else None
        ),
        "system_cpu_pct": _cpu_pct(cpu_sys_before, cpu_sys_after),
        "target_p99_met": (
            bool(late.get("n")) and late["p99"] < TARGET_P99_MS and not timed_out and not setup_late
        ),
        "worker_log": parse_worker_log(procs.log("worker", log_offset)),
        "machine": machine,
        "process_crashes": procs.crashes[crashes_before:],
    }
    _print_due(result)
    return result


def _print_due(r: dict[str, Any]) -> None:
    from django.conf import settings

    name, n = r["scenario"], r["rooms"]
    wl = r["worker_log"]
    run = wl["runtime_ms"]
    all4 = ("p50", "p90", "p99", "max")
    timed_out = "  -- TIMED OUT (stopped waiting; see the time limits)"
    print(f"[{name}] live {r['live']}/{n}  statuses {r['statuses']}" + (timed_out * r["timed_out"]))
    print(
        f"[{name}] RoomSession rows {r['sessions']} (rooms with one: {r['rooms_with_session']}, "
        f"with more: {r['rooms_with_more_than_one_session']}), LiveKit CreateRoom calls "
        f"{r['livekit_create_calls']}, exactly once: {'yes' if r['exactly_once'] else 'NO'}"
    )
    print(f"[{name}] lateness (started_at - start_time): {_fmt(r['lateness_ms'], all4)}")
    print(
        f"[{name}]   room saved live (after the LiveKit call) - start_time: "
        f"{_fmt(r['committed_lateness_ms'], all4)}"
    )
    print(f"[{name}]   in service (started_at .. room saved live): {_fmt(r['in_service_ms'])}")
    print(
        f"[{name}]   seen live by another connection (polled every {SEEN_POLL:.1f} s) - "
        f"start_time: {_fmt(r['visible_lateness_ms'], all4)}"
    )
    print(
        f"[{name}] first due start -> last actual start: {r['first_due_to_last_start_s']} s "
        f"(-> last saved live {r['first_due_to_last_commit_s']} s); peak {r['starts_per_s_peak']}"
        f" starts in one second, {r['starts_per_s_overall']}/s overall, at most "
        f"{r['max_concurrent_starts']} in service at once"
    )
    lead = r["dispatch_lead_s"]
    print(
        f"[{name}] dispatcher claimed each {lead['min']}..{lead['max']} s before its start "
        f"(p50 {lead['p50']} s); {wl['dispatch_ticks']} dispatch ticks ran "
        f"({_fmt(run.get('dispatch', {'n': 0}))}), most claimed in one tick "
        f"{wl['dispatch_claimed_max']}, in all {wl['dispatch_claimed_total']} claims for {n} "
        f"occurrences; re-dispatched (still waiting "
        f"{settings.SCHEDULE_REDISPATCH_SECONDS}s after the start) {r['redispatched']}"
    )
    print(
        f"[{name}] worker: start_occurrence task run time "
        f"{_fmt(run.get('start_occurrence', {'n': 0}))}; start_occurrences (batches) "
        f"{_fmt(run.get('start_occurrences', {'n': 0}))}; prepare_rooms (LiveKit rooms "
        f"pre-created ahead) {_fmt(run.get('prepare_rooms', {'n': 0}))}; results "
        f"{wl['results']}; "
        f"retries {wl['retries'] or 0}; revoked/expired {wl['revoked_or_expired']}; "
        f"CPU: worker {r['worker_cpu_pct']}% of one core, machine {r['system_cpu_pct']}% "
        "of all cores"
    )
    m = r["machine"]
    cpu = ", ".join(f"{k} {v}%" for k, v in m["cpu_pct_of_one_core"].items())
    print(f"[{name}] CPU by process while draining ({m['window_s']} s, % of one core): {cpu}")
    extra = []
    if "pg_sessions_opened" in m:
        extra.append(f"PostgreSQL sessions opened {m['pg_sessions_opened']}")
    if "redis_connections_opened" in m:
        extra.append(
            f"Redis connections opened {m['redis_connections_opened']} "
            f"({m['redis_connections_per_start']} per start)"
        )
    if m.get("tcp_time_wait_after") is not None:
        extra.append(f"TCP TIME_WAIT sockets {m['tcp_time_wait_after']}")
    if m.get("broker_queue_left") is not None:
        extra.append(f"messages left in the broker queue {m['broker_queue_left']}")
    if extra:
        print(f"[{name}] " + "; ".join(extra))
    if "pg_samples" in m:
        print(
            f"[{name}] PostgreSQL backends ({m['pg_samples']} samples): active "
            f"{m['pg_active_avg']} avg, waiting on a lock {m['pg_lock_waiting_avg']} avg / "
            f"{m['pg_lock_waiting_max']} max, idle in transaction "
            f"{m['pg_idle_in_transaction_avg']} avg"
        )
        for query, count in m["pg_lock_waited_queries"].items():
            print(f"[{name}]   lock wait in {count} samples: {query}")
    for problem in wl["problems"][:5]:
        print(f"[{name}]   worker {problem}")
    for crash in r["process_crashes"]:
        print(
            f"[{name}] CRASH: celery {crash['process']} exited ({crash['exit_code']}) and was "
            f"restarted: {crash['error']}"
        )
    met = "MET" if r["target_p99_met"] else "NOT MET"
    print(f"[{name}] target p99 lateness < {TARGET_P99_MS:.0f} ms: {met}", flush=True)


# --- diagnosis: one start at a time, profiled -------------------------------------------------


def service_times(*, tenant: Any, samples: int) -> dict[str, Any]:
    """start_occurrence in-process, one at a time, each on a new DB connection (as a Celery
    task with DATABASE_CONN_MAX_AGE=0), timed and then profiled; plus the parts alone."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from conferences import livekit
    from conferences.models import Occurrence
    from conferences.services import rooms as room_services

    def make(count: int, label: str) -> list[int]:
        start = timezone.now().replace(microsecond=0) - dt.timedelta(seconds=1)
        pks = []
        for i in range(count):
            room = room_services.create_room(
                tenant=tenant,
                data={"name": f"Bench {label} {i}", "room_type": "scheduled",
                      "start_time": start, "end_time": start + dt.timedelta(hours=1)},
            )  # fmt: skip
            pks.append(Occurrence.objects.get(room=room).pk)
        return pks

    connects = []
    for _ in range(samples):
        connection.close()
        t = time.perf_counter()
        connection.ensure_connection()
        connects.append(time.perf_counter() - t)

    lk_calls = []
    for i in range(samples):
        t = time.perf_counter()
        livekit.create_room(name=f"bench-probe-{i}", max_participants=10, metadata={})
        lk_calls.append(time.perf_counter() - t)

    plain = []
    results: Counter[str] = Counter()
    for pk in make(samples, "service"):
        connection.close()
        t = time.perf_counter()
        results[room_services.start_occurrence(occurrence_pk=pk)] += 1
        plain.append(time.perf_counter() - t)

    queries = 0
    profile = cProfile.Profile()
    profiled_pks = make(samples, "profiled")
    t = time.perf_counter()
    for i, pk in enumerate(profiled_pks):
        connection.close()
        if i == 0:
            with CaptureQueriesContext(connection) as captured:
                profile.runcall(room_services.start_occurrence, occurrence_pk=pk)
            queries = len(captured.captured_queries)
        else:
            profile.runcall(room_services.start_occurrence, occurrence_pk=pk)
    profiled_total = time.perf_counter() - t
    stats = pstats.Stats(profile)
    wanted = {
        "LiveKit create_room (conferences/livekit.py)": ("conferences/livekit.py", "create_room"),
        "events sent on commit (conferences/events.py send)": ("conferences/events.py", "send"),
        "DB connect (django connect)": ("django/db/backends/base/base.py", "connect"),
        "DB commit": ("django/db/backends/base/base.py", "commit"),
        "SQL execute (cursor execute)": ("django/db/backends/utils.py", "_execute"),
    }
    parts: dict[str, float] = {}
    for label, (file_part, func) in wanted.items():
        total = 0.0
        for (filename, _line, funcname), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if funcname == func and filename.replace(os.sep, "/").endswith(file_part):
                total += ct
        parts[label] = round(100.0 * total / profiled_total, 1) if profiled_total else 0.0
    out = {
        "samples": samples,
        "db_connect_ms": _ms_stats(connects),
        "livekit_create_room_ms": _ms_stats(lk_calls),
        "start_occurrence_ms": _ms_stats(plain),
        "start_occurrence_results": dict(results),
        "queries_per_start": queries,
        "profiled_share_pct": parts,
    }
    print(f"\n[service] one start_occurrence at a time, in-process, new DB connection each "
          f"({samples} samples): {_fmt(out['start_occurrence_ms'], ('p50', 'p90', 'max'))}, "
          f"{queries} SQL queries, results {dict(results)}")  # fmt: skip
    print(f"[service]   DB connect alone {_fmt(out['db_connect_ms'], ('p50', 'max'))}; "
          f"LiveKit CreateRoom alone "
          f"{_fmt(out['livekit_create_room_ms'], ('p50', 'max'))}")  # fmt: skip
    print("[service]   share of a start (cProfile, cumulative): " + ", ".join(
        f"{k} {v}%" for k, v in parts.items()), flush=True)  # fmt: skip
    return out


# --- the dispatcher tick with 100,000 stored occurrences -------------------------------------


def tick_scenario(*, tenant: Any, future: int, reps: int) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection
    from django.db.models import Q
    from django.utils import timezone

    from conferences.models import Occurrence, Schedule
    from conferences.services import rooms as room_services
    from conferences.services import schedule as schedule_services

    now = timezone.now()
    print(
        f"\n[tick] storing {future:,} future occurrences over {TICK_ROOMS} rooms, 60 days",
        flush=True,
    )
    room_pks = []
    for i in range(TICK_ROOMS):
        room = room_services.create_room(
            tenant=tenant,
            data={"name": f"Bench tick {i}", "room_type": "scheduled",
                  "start_time": now + dt.timedelta(days=61), "recurring": False},
        )  # fmt: skip
        room_pks.append(room.pk)
    # Open-ended daily series, already materialized a full window ahead (not stale).
    schedules = list(Schedule.objects.filter(room_id__in=room_pks).order_by("room_id"))
    Schedule.objects.filter(pk__in=[s.pk for s in schedules]).update(
        rule="RRULE:FREQ=DAILY;INTERVAL=1",
        open_ended=True,
        generated_until=schedule_services.window_end(now),
    )
    Occurrence.objects.filter(room_id__in=room_pks).delete()
    first = now + dt.timedelta(minutes=5)
    span = dt.timedelta(days=settings.SCHEDULE_WINDOW_DAYS) - dt.timedelta(minutes=10)
    step = span / future
    t = time.perf_counter()
    batch: list[Occurrence] = []
    for k in range(future):
        sched = schedules[k % len(schedules)]
        start = first + step * k
        batch.append(
            Occurrence(
                room_id=sched.room_id,
                schedule_id=sched.pk,
                original_start=start,
                start_time=start,
                end_time=start + dt.timedelta(hours=1),
            )
        )
        if len(batch) == 2000:
            Occurrence.objects.bulk_create(batch)
            batch = []
    if batch:
        Occurrence.objects.bulk_create(batch)
    insert_s = time.perf_counter() - t
    due_pks = []
    for i in range(DUE_IN_TICK):
        room = room_services.create_room(
            tenant=tenant,
            data={"name": f"Bench tick due {i}", "room_type": "scheduled",
                  "start_time": now + dt.timedelta(seconds=5 + i),
                  "end_time": now + dt.timedelta(hours=1)},
        )  # fmt: skip
        due_pks.append(Occurrence.objects.get(room=room).pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE conferences_occurrence")
    stored = Occurrence.objects.filter(status=Occurrence.Status.SCHEDULED).count()
    print(f"[tick] inserted in {insert_s:.1f}s; {stored:,} scheduled occurrences stored",
          flush=True)  # fmt: skip

    def timed(reset: bool) -> tuple[list[float], list[float], list[float], list[int]]:
        claim, extend, total, claimed = [], [], [], []
        for _ in range(reps):
            if reset:
                Occurrence.objects.filter(pk__in=due_pks).update(dispatched_at=None)
            t0 = time.perf_counter()
            work = schedule_services.claim_due(now=now)
            t1 = time.perf_counter()
            schedule_services.extend_windows(now=now)
            t2 = time.perf_counter()
            claim.append(t1 - t0)
            extend.append(t2 - t1)
            total.append(t2 - t0)
            claimed.append(len(work.starts))
        return claim, extend, total, claimed

    timed(reset=True)  # warm-up
    claim, extend, total, claimed = timed(reset=True)
    idle_claim, idle_extend, idle_total, idle_claimed = timed(reset=False)
    overlap = concurrent_claims(due_pks, now=now, trials=reps)

    horizon = now + dt.timedelta(seconds=settings.SCHEDULE_LOOKAHEAD_SECONDS)
    grace = now - dt.timedelta(seconds=settings.SCHEDULE_REDISPATCH_SECONDS)
    plan = (
        Occurrence.objects.filter(status=Occurrence.Status.SCHEDULED, start_time__lte=horizon)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=grace, start_time__lt=grace))
        .order_by("start_time")
        .values_list("pk", "start_time")[:5000]
        .explain()
    )
    out = {
        "future_occurrences": future,
        "scheduled_stored": stored,
        "rooms": TICK_ROOMS,
        "due_within_lookahead": DUE_IN_TICK,
        "insert_s": round(insert_s, 2),
        "reps": reps,
        "with_due": {
            "tick_ms": _ms_stats(total),
            "claim_due_ms": _ms_stats(claim),
            "extend_windows_ms": _ms_stats(extend),
            "claimed_per_tick": sorted(set(claimed)),
        },
        "nothing_due": {
            "tick_ms": _ms_stats(idle_total),
            "claim_due_ms": _ms_stats(idle_claim),
            "extend_windows_ms": _ms_stats(idle_extend),
            "claimed_per_tick": sorted(set(idle_claimed)),
        },
        "concurrent_ticks": overlap,
        "claim_query_plan": plan,
    }
    for label, key in (("with due work", "with_due"), ("nothing due", "nothing_due")):
        d = out[key]
        print(
            f"[tick] {label}: tick (claim_due + extend_windows) "
            f"{_fmt(d['tick_ms'], ('p50', 'max'))} over {reps} ticks; claim_due "
            f"{_fmt(d['claim_due_ms'], ('p50', 'max'))}, extend_windows "
            f"{_fmt(d['extend_windows_ms'], ('p50', 'max'))}; rows claimed per tick "
            f"{d['claimed_per_tick']}"
        )
    print(
        f"[tick] two ticks at once ({overlap['trials']} trials, {DUE_IN_TICK} due): in "
        f"{overlap['trials_with_double_claims']} trials both claimed the same occurrences "
        f"({overlap['double_claimed']} occurrence claims in all would be queued twice)"
    )
    print("[tick] claim query plan: " + " | ".join(plan.splitlines()[:4]), flush=True)
    return out


def concurrent_claims(due_pks: list[int], *, now: dt.datetime, trials: int) -> dict[str, int]:
    """Two claim_due calls at the same moment in two threads (as two overlapping dispatch
    ticks, e.g. one that took longer than SCHEDULE_TICK_SECONDS): how often both get the same
    occurrences -- each would then be queued twice."""
    import threading

    from django.db import connection

    from conferences.models import Occurrence
    from conferences.services import schedule as schedule_services

    def run(slot: int, barrier: Any, got: list[set[int]], errors: list[BaseException]) -> None:
        try:
            barrier.wait(timeout=10)
            got[slot] = {pk for pk, _ in schedule_services.claim_due(now=now).starts}
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)
        finally:
            connection.close()

    doubled_trials = doubled = 0
    for _ in range(trials):
        Occurrence.objects.filter(pk__in=due_pks).update(dispatched_at=None)
        barrier = threading.Barrier(2)
        got: list[set[int]] = [set(), set()]
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=run, args=(i, barrier, got, errors), daemon=True)
            for i in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        if errors:
            raise BenchError(f"concurrent claim_due failed: {errors[0]!r}")
        both = got[0] & got[1]
        doubled += len(both)
        doubled_trials += bool(both)
    return {
        "trials": trials,
        "trials_with_double_claims": doubled_trials,
        "double_claimed": doubled,
    }


# --- the bench ---------------------------------------------------------------------------------


def _all_scenarios(
    *,
    tenant: Any,
    procs: Processes,
    double: Any,
    broker_url: str,
    budget_end: float,
    rooms: int,
    future: int,
    reps: int,
    mode: str,
    database: str,
    broker: str,
    concurrency: int,
) -> tuple[Path, bool]:
    """spread, burst, service and tick (the whole bench); the results file and whether ok."""
    spread = due_scenario(
        "spread",
        tenant=tenant,
        offsets=[i * SPREAD / rooms for i in range(rooms)],
        procs=procs,
        double=double,
        broker_url=broker_url,
        wait_until=budget_end - RESERVE - MIN_DRAIN - LEAD_MAX - 5,
    )
    burst = due_scenario(
        "burst",
        tenant=tenant,
        offsets=[0.0] * rooms,
        procs=procs,
        double=double,
        broker_url=broker_url,
        wait_until=budget_end - RESERVE,
    )
    procs.stop_all()
    service = service_times(tenant=tenant, samples=SERVICE_SAMPLES)
    tick = tick_scenario(tenant=tenant, future=future, reps=reps)

    ok = (
        all(
            not s["timed_out"]
            and not s["setup_late"]
            and s["exactly_once"]
            and s["live"] == s["rooms"]
            and not s["process_crashes"]
            for s in (spread, burst)
        )
        and not procs.crashes
    )
    print(
        f"\nSummary ({mode}, worker threads {concurrency}): p99 lateness spread "
        f"{spread['lateness_ms'].get('p99')} ms, burst {burst['lateness_ms'].get('p99')} ms "
        f"(target < {TARGET_P99_MS:.0f} ms: spread "
        f"{'met' if spread['target_p99_met'] else 'NOT met'}, burst "
        f"{'met' if burst['target_p99_met'] else 'NOT met'})"
        + "".join(
            f"; {s['scenario']} INVALID (rooms created after their start)"
            for s in (spread, burst)
            if s["setup_late"]
        )
        + "".join(f"; celery {c['process']} crashed: {c['error']}" for c in procs.crashes)
        + f"; dispatcher tick with "
        f"{tick['scheduled_stored']:,} stored: p50 {tick['with_due']['tick_ms']['p50']} ms"
    )
    import platform

    import celery

    path = write_results(
        NAME,
        {
            "bench": NAME,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "environment": {
                "mode": mode,
                "database": database,
                "broker": broker,
                "worker": f"celery {celery.__version__} --pool=threads --concurrency={concurrency}",
                "schedule_tick_seconds": 1,
                "python": f"{platform.python_implementation()} {platform.python_version()}",
                "cpus": os.cpu_count(),
            },
            "target_p99_ms": TARGET_P99_MS,
            "scenarios": [spread, burst],
            "service": service,
            "tick": tick,
            "ok": ok,
        },
    )
    return path, ok


def _child() -> int:
    """The bench body (run in a process of its own by main())."""
    from tests.livekit_double import LiveKitDouble

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    rooms = env_int("BENCH_SCHEDULE_ROOMS", 1000)
    concurrency = env_int("BENCH_WORKER_CONCURRENCY", 8)
    future = env_int("BENCH_FUTURE_OCCURRENCES", 100_000)
    reps = env_int("BENCH_TICK_REPS", 20)
    burst_only = os.environ.get("BENCH_SCHEDULE_ONLY", "") == "burst"

    budget_end = time.monotonic() + (BURST_BUDGET if burst_only else BUDGET)
    tmp = Path(tempfile.mkdtemp(prefix="parley-bench-schedule-"))
    double = None
    procs: Processes | None = None
    temporary_db = True
    tenant_ids: list[int] = []
    django_ready = False
    try:
        double = LiveKitDouble(api_key=LIVEKIT_API_KEY, api_secret=secrets.token_hex(20)).start()
        database_url, database, created = _database(tmp)
        temporary_db = database_url.startswith("sqlite:///") and str(tmp) in database_url
        broker_url, broker = _broker()
        mode = "services" if broker_url and not temporary_db else (
            "embedded" if not broker_url and temporary_db else "mixed")  # fmt: skip
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DATABASE_URL": database_url,
            "PARLEY_VAR_DIR": str(tmp / "var"),
            "DEBUG": "0",  # the worker as in production (no SQL logging)
            "SECRET_KEY": secrets.token_urlsafe(48),
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "INFO",
            "LIVEKIT_URL": double.ws_url,
            "LIVEKIT_PUBLIC_URL": double.ws_url,
            "LIVEKIT_API_KEY": double.api_key,
            "LIVEKIT_API_SECRET": double.api_secret,
            "SCHEDULE_TICK_SECONDS": "1",
            # Django's system checks (URLs, templates...) are the test suite's business; the
            # worker needs none of it, and they only run once, at its start.
            "CELERY_SKIP_CHECKS": "1",
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": f"{HOST},localhost",
            "no_proxy": f"{HOST},localhost",
        }
        env.pop("REDIS_URL", None)
        if broker_url:
            env["REDIS_URL"] = broker_url
        os.environ.clear()
        os.environ.update(env)

        print(
            f"Schedule bench ({mode}): database {database}"
            + (" (created)" if created else "")
            + f"; broker {broker}; worker --pool=threads --concurrency={concurrency}; "
            f"{rooms} rooms per scenario",
            flush=True,
        )
        import django

        django.setup()
        django_ready = True
        from django.core.management import call_command

        from accounts import services as account_services
        from accounts.models import Tenant

        call_command("migrate", interactive=False, verbosity=0)
        if not temporary_db:  # a reused database: rooms of an earlier (aborted) run go first
            _purge(list(Tenant.objects.filter(name=TENANT_NAME).values_list("pk", flat=True)))
        tenant = account_services.create_tenant_with_admin(
            name=TENANT_NAME,
            plan_code="enterprise",
            admin_email=f"bench-schedule-{secrets.token_hex(4)}@example.com",
            with_key=False,
        ).tenant
        tenant_ids.append(tenant.pk)
        if tenant.plan.max_concurrent_rooms is not None:
            raise BenchError(
                "the enterprise plan has a concurrent-room limit; the bench needs none"
            )

        procs = Processes(tmp, env)
        procs.start("worker", "worker", "--pool=threads", f"--concurrency={concurrency}",
                    "-l", "INFO", "-n", "bench-schedule@%h", "--without-gossip",
                    "--without-mingle", "--without-heartbeat")  # fmt: skip
        procs.wait_log("worker", READY["worker"])
        procs.start("beat", "beat", "-l", "INFO")
        procs.wait_log("beat", READY["beat"])

        if burst_only:
            burst = due_scenario(
                "burst",
                tenant=tenant,
                offsets=[0.0] * rooms,
                procs=procs,
                double=double,
                broker_url=broker_url,
                wait_until=budget_end - 15,
                staged=True,
            )
            procs.stop_all()
            ok = (
                not burst["timed_out"]
                and not burst["setup_late"]
                and burst["exactly_once"]
                and burst["live"] == burst["rooms"]
                and not procs.crashes
            )
            print(
                f"\nSummary burst ({mode}): {rooms} starts due in one second: lateness "
                f"{_fmt(burst['lateness_ms'], ('p50', 'p99', 'max'))}; seen committed "
                f"{_fmt(burst['visible_lateness_ms'], ('p50', 'p99', 'max'))}; sessions "
                f"{burst['sessions']}, CreateRoom calls {burst['livekit_create_calls']}, exactly "
                f"once {'yes' if burst['exactly_once'] else 'NO'}; target p99 < "
                f"{TARGET_P99_MS:.0f} ms {'MET' if burst['target_p99_met'] else 'NOT MET'}",
                flush=True,
            )
            path = write_results(
                f"{NAME}-burst-{mode}",
                {
                    "bench": f"{NAME} --burst {rooms}",
                    "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "environment": {"mode": mode, "database": database, "broker": broker},
                    "target_p99_ms": TARGET_P99_MS,
                    "scenarios": [burst],
                    "ok": ok,
                },
            )
        else:
            path, ok = _all_scenarios(
                tenant=tenant,
                procs=procs,
                double=double,
                broker_url=broker_url,
                budget_end=budget_end,
                rooms=rooms,
                future=future,
                reps=reps,
                mode=mode,
                database=database,
                broker=broker,
                concurrency=concurrency,
            )
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"Wrote {shown}")
        return 0 if ok else 1
    except BenchError:
        if procs is not None:
            print(procs.tail("worker"))
            print(procs.tail("beat"))
        raise
    finally:
        try:
            if procs is not None:
                procs.stop_all()
        finally:
            try:
                if django_ready:
                    from django.db import connections

                    if not temporary_db and tenant_ids:
                        _purge(tenant_ids)
                    connections.close_all()
            finally:
                try:
                    if double is not None:
                        double.stop()
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)


DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def _run_child(env: dict[str, str], limit: float = CHILD_TIME_LIMIT) -> int:
    """Run the bench body in a child process (own Django settings), bounded in time."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        return proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        print(f"FAILED: the schedule bench did not finish within {limit:.0f}s")
        proc.terminate()  # the child stops worker and beat and cleans up on SIGTERM
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 1
    finally:
        if proc.poll() is None:  # KeyboardInterrupt: the child got SIGINT too; let it clean up
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _services_reachable(database_url: str, redis_url: str) -> str:
    """ "" when PostgreSQL and Redis answer, else why not."""
    import psycopg
    import redis

    parts = urlsplit(database_url)
    try:
        url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL {_redact(database_url)}: {str(exc).strip()[:120]}"
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"Redis {_redact(redis_url)}: {exc}"
    return ""


def main(argv: list[str] | None = None) -> int:
    """The whole bench (one mode, from DATABASE_URL/REDIS_URL); or with `--burst N` only the
    burst scenario with N rooms, on SQLite + the filesystem broker and then on PostgreSQL +
    Redis (DATABASE_URL/REDIS_URL when they name them, else the local defaults; skipped with
    a line saying why when they do not answer)."""
    import argparse

    parser = argparse.ArgumentParser(prog="bench/run.py schedule")
    parser.add_argument(
        "--burst", type=int, metavar="N", help="only N starts due in one second, both modes"
    )
    args = parser.parse_args(argv or [])
    if args.burst is None:
        return _run_child(dict(os.environ))
    if args.burst < 1:
        raise BenchError("--burst needs at least one room")
    base = {
        **os.environ,
        "BENCH_SCHEDULE_ROOMS": str(args.burst),
        "BENCH_SCHEDULE_ONLY": "burst",
    }
    embedded = {k: v for k, v in base.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    print(f"--- burst of {args.burst}: SQLite + filesystem broker ---", flush=True)
    codes = [_run_child(embedded, BURST_TIME_LIMIT)]
    caller_db = os.environ.get("DATABASE_URL", "").strip()
    database_url = caller_db if _is_postgres(caller_db) else DEFAULT_POSTGRES
    redis_url = os.environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS
    print(f"\n--- burst of {args.burst}: PostgreSQL + Redis ---", flush=True)
    why = _services_reachable(database_url, redis_url)
    if why:
        print(f"SKIPPED (not reachable: {why})")
    else:
        services = {**base, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        codes.append(_run_child(services, BURST_TIME_LIMIT))
    return max(codes)


if __name__ == "__main__":
    if "--child" in sys.argv[1:]:
        try:
            sys.exit(_child())
        except BenchError as exc:
            print(f"ERROR: {exc}")
            sys.exit(1)
    sys.exit(main())
