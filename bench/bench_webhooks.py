"""Outbound webhook outbox: events delivered per second to a loopback receiver, and the lag
from commit to delivery (p50/p99) at 1,000 events.

Each event is a room created through `rooms.create_room` in its own transaction (a
`room.created` event: the outbox row is written in that transaction and a delivery task is
queued on commit). A real Celery worker (`--pool=threads`, BENCH_WEBHOOK_CONCURRENCY threads,
default 4) and beat (the sweeper) deliver them to one endpoint: a threaded HTTP receiver on
127.0.0.1 answering 200, which records when each `Parley-Event-Id` arrived and checks every
signature. One endpoint means one delivery at a time, in event order (the outbox's per-endpoint
ordering): this is the ordered throughput a single receiver sees.

Scenarios:
* ``burst`` -- 1,000 events committed as fast as the bench can (BENCH_WEBHOOK_EVENTS); events/s
  = events / (last arrival - first commit); lag = arrival - commit of each event.
* ``backlog`` -- 1,000 events committed in one transaction (they all commit and queue at
  once): the delivery rate of a backlog, and how long its last event waits.
* ``paced`` (only with BENCH_WEBHOOK_RATE set) -- 1,000 events at that many per second.

Modes: with DATABASE_URL (PostgreSQL) the database ``parley_bench_webhooks`` next to the one
named (created if missing); otherwise a temporary SQLite file. With REDIS_URL set, that Redis
database (flushed first) is the broker; otherwise the filesystem broker in the temporary
directory, which polls about once a second (so lags are about a second there). The body runs
in a child process (``--child``) so django.setup() never leaks into another bench.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    ROOT,
    BenchError,
    _is_postgres,
    _percentile,
    _redact,
    ensure_postgres_database,
    env_int,
    write_results,
)

DB_NAME = "parley_bench_webhooks"


def _database(tmp: Path) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url and _is_postgres(url):
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
        ensure_postgres_database(url)
        return url
    return f"sqlite:///{tmp / 'bench.sqlite3'}"


class Receiver:
    def __init__(self, secret_box: dict[str, str]) -> None:
        self.arrivals: dict[str, float] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time()
                from conferences import webhook_http

                ok = webhook_http.verify_signature(
                    self.headers.get("Parley-Signature", ""), body, secret_box["secret"]
                )
                with owner.lock:
                    owner.arrivals.setdefault(self.headers.get("Parley-Event-Id", ""), at)
                    owner.bad_signatures += 0 if ok else 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(_percentile(ordered, 50) * 1000, 1),
        "p99_ms": round(_percentile(ordered, 99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1) if ordered else 0.0,
    }


def _scenario(name: str, *, tenant: Any, receiver: Receiver, events: int, rate: float | None):
    from django.db import transaction

    from conferences.models import WebhookEvent
    from conferences.services import rooms as room_services

    committed: dict[str, float] = {}
    interval = 1.0 / rate if rate else 0.0
    started = time.time()
    if name == "backlog":  # all in one transaction: they commit (and queue) at one instant
        with transaction.atomic():
            ids = [
                room_services.create_room(tenant=tenant, data={"name": f"{name} {i}"}).room_id
                for i in range(events)
            ]
        at = time.time()
        committed = dict.fromkeys(ids, at)
    for i in range(events if name != "backlog" else 0):
        if interval:
            delay = started + i * interval - time.time()
            if delay > 0:
                time.sleep(delay)
        with transaction.atomic():
            room = room_services.create_room(tenant=tenant, data={"name": f"{name} {i}"})
        committed[room.room_id] = time.time()
    event_ids = dict(
        WebhookEvent.objects.filter(room_id__in=list(committed)).values_list("event_id", "room_id")
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        with receiver.lock:
            done = sum(1 for e in event_ids if e in receiver.arrivals)
        if done == len(event_ids):
            break
        time.sleep(0.05)
    with receiver.lock:
        arrivals = {e: receiver.arrivals[e] for e in event_ids if e in receiver.arrivals}
    lags = [arrivals[e] - committed[event_ids[e]] for e in arrivals]
    first_commit = min(committed.values())
    last_arrival = max(arrivals.values()) if arrivals else first_commit
    span = max(last_arrival - first_commit, 1e-9)
    return {
        "scenario": name,
        "events": events,
        "delivered": len(arrivals),
        "commit_rate_per_s": round(events / max(max(committed.values()) - started, 1e-9), 1),
        "delivered_per_s": round(len(arrivals) / span, 1),
        **{f"lag_{k}": v for k, v in _stats(lags).items()},
    }


def _child() -> int:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import secrets

    from accounts import services as account_services
    from conferences.services import webhooks as webhook_services

    created = account_services.create_tenant_with_admin(
        name="Bench hooks",
        plan_code="enterprise",
        admin_email=f"bench-{secrets.token_hex(4)}@hooks.test",
    )
    box: dict[str, str] = {}
    receiver = Receiver(box)
    issued = webhook_services.create_endpoint(
        tenant=created.tenant, url=receiver.url, events=["room.created"]
    )
    box["secret"] = issued.secret
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings", "LOG_LEVEL": "WARNING"}
    tmp = Path(os.environ["PARLEY_VAR_DIR"])
    concurrency = str(env_int("BENCH_WEBHOOK_CONCURRENCY", 4))
    celery = str(ROOT / ".venv/bin/celery")
    procs = []
    for name, args in (
        ("worker", ["worker", "--pool=threads", f"--concurrency={concurrency}", "-l", "WARNING",
                    "--without-gossip", "--without-mingle"]),
        ("beat", ["beat", "-l", "WARNING", "-s", str(tmp / "beat-schedule")]),
    ):  # fmt: skip
        log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        procs.append(
            subprocess.Popen(
                [celery, "-A", "dashboard", *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        )
    try:
        time.sleep(6)  # worker ready
        events = env_int("BENCH_WEBHOOK_EVENTS", 1000)
        rate = float(os.environ.get("BENCH_WEBHOOK_RATE") or 0)
        results = [
            _scenario("burst", tenant=created.tenant, receiver=receiver, events=events, rate=None),
            _scenario(
                "backlog", tenant=created.tenant, receiver=receiver, events=events, rate=None
            ),
        ]
        if rate:
            results.append(
                _scenario(
                    "paced", tenant=created.tenant, receiver=receiver, events=events, rate=rate
                )
            )
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    print(json.dumps({"results": results, "bad_signatures": receiver.bad_signatures}))
    return 0


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="parley-bench-webhooks-"))
    try:
        database = _database(tmp)
        env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DATABASE_URL": database,
            "PARLEY_VAR_DIR": str(tmp),
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
            "WEBHOOK_SWEEP_SECONDS": "1",
            "LOG_LEVEL": "WARNING",
        }
        if env.get("REDIS_URL"):
            import redis

            redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        print(
            f"database {_redact(database)}; broker {_redact(env.get('REDIS_URL') or 'filesystem')}"
        )
        run = subprocess.run(
            [sys.executable, __file__, "--child"], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=900,
        )  # fmt: skip
        if run.returncode != 0:
            raise BenchError(f"child failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
        payload = json.loads(run.stdout.strip().splitlines()[-1])
        rows = payload["results"]
        header = ("scenario", "events", "delivered", "commits/s", "delivered/s", "lag p50 ms",
                  "lag p99 ms", "max ms")  # fmt: skip
        print(f"{header[0]:<8} " + " ".join(f"{h:>11}" for h in header[1:]))
        for r in rows:
            keys = ("events", "delivered", "commit_rate_per_s", "delivered_per_s", "lag_p50_ms",
                    "lag_p99_ms", "lag_max_ms")  # fmt: skip
            print(f"{r['scenario']:<8} " + " ".join(f"{r[k]:>11}" for k in keys))
        print(f"bad signatures: {payload['bad_signatures']}")
        write_results("webhooks", {"database": _redact(database), **payload})
        failed = payload["bad_signatures"] or any(r["delivered"] != r["events"] for r in rows)
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if "--child" in sys.argv:
        sys.path.insert(0, str(ROOT))
        sys.exit(_child())
    sys.exit(main())
