"""Real Celery worker and beat against Redis and PostgreSQL (the services pass of CI).

The worker and beat run as separate processes on the test database; LiveKit is the double.
Skipped on embedded defaults (the in-memory SQLite test database cannot be shared with
another process); with REQUIRE_SERVICES=1 a missing service fails instead.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from conferences.models import Occurrence, RoomSession
from conferences.services import rooms as room_services
from tests.conftest import REQUIRE_SERVICES
from tests.web_processes import stop_group

ROOT = Path(__file__).resolve().parent.parent
BROKER_DB = 1  # the test cache flushes Redis db 0; the broker lives next to it


def _require_services():
    redis_url = settings.REDIS_URL
    if connection.vendor != "postgresql" or not redis_url:
        if REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 needs PostgreSQL (DATABASE_URL) and REDIS_URL")
        pytest.skip("needs PostgreSQL and Redis (the services pass)")
    return redis_url.rsplit("/", 1)[0] + f"/{BROKER_DB}"


class Processes:
    """Worker and beat subprocesses sharing the test database and the LiveKit double."""

    def __init__(self, tmp_path: Path, broker: str, livekit) -> None:
        db = connection.settings_dict
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DATABASE_URL": (
                f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}"
                f":{db['PORT'] or 5432}/{db['NAME']}"
            ),
            "REDIS_URL": broker,
            "LIVEKIT_URL": livekit.ws_url,
            "LIVEKIT_API_KEY": livekit.api_key,
            "LIVEKIT_API_SECRET": livekit.api_secret,
            "LIVEKIT_TIMEOUT": "8",
            "SCHEDULE_TICK_SECONDS": "1",
            "SCHEDULE_REDISPATCH_SECONDS": "2",
            "LOG_LEVEL": "INFO",
        }
        self.tmp = tmp_path
        self.procs: dict[str, subprocess.Popen] = {}
        subprocess.run(
            [sys.executable, "-c", f"import redis; redis.Redis.from_url('{broker}').flushdb()"],
            check=True,
        )

    def start(self, name: str, *args: str) -> None:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "dashboard", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def worker(self, name: str = "worker") -> None:
        self.start(
            name,
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "-l",
            "INFO",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
        )
        self.wait_log(name, "ready.")

    def beat(self) -> None:
        self.start("beat", "beat", "-l", "INFO")

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def wait_log(self, name: str, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name):
                return
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"{name} did not log {text!r}:\n{self.log(name)[-3000:]}")

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            stop_group(self.procs.pop(name))


@pytest.fixture
def processes(transactional_db, livekit, tmp_path):
    broker = _require_services()
    procs = Processes(tmp_path, broker, livekit)
    yield procs
    procs.stop_all()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def scheduled_room(owner, *, start_in: float, length: float = 3600):
    start = (timezone.now() + dt.timedelta(seconds=start_in)).replace(microsecond=0)
    room = room_services.create_room(
        tenant=owner.tenant,
        data={
            "name": "On time",
            "room_type": "scheduled",
            "start_time": start,
            "end_time": start + dt.timedelta(seconds=length),
        },
    )
    return room, Occurrence.objects.get(room=room)


def test_worker_and_beat_start_a_room_on_time(processes, owner, livekit):
    processes.worker()
    processes.beat()
    # Beat is ticking (its first dispatch sent) before the room is scheduled, so the start
    # measures the scheduler, not how long two processes take to boot on a busy machine.
    processes.wait_log("beat", "Sending due task")
    room, occ = scheduled_room(owner, start_in=6)
    calls = wait_for(lambda: livekit.calls_to("CreateRoom"), timeout=40)
    assert calls, processes.log("worker")[-2000:] + processes.log("beat")[-2000:]
    assert [c.request.name for c in calls] == [room.room_id]
    # LiveKit sees CreateRoom inside the worker's transaction (claim and call share it); the
    # claim is visible here once that transaction commits, a moment later.
    wait_for(lambda: Occurrence.objects.filter(pk=occ.pk, status="live").exists(), timeout=10)
    occ.refresh_from_db()
    assert occ.status == "live"
    lateness = (occ.started_at - occ.start_time).total_seconds()
    # Not early, and at its own second rather than at a later look-ahead tick (a behaviour
    # bound, generous for a loaded machine; bench/run.py schedule measures lateness).
    assert -1.0 <= lateness < 5.0, lateness
    assert RoomSession.objects.filter(room=room).count() == 1


def test_duplicate_delivery_starts_once(processes, owner, livekit):
    from dashboard.celery import app

    room, occ = scheduled_room(owner, start_in=0)
    with app.connection_for_write(processes.env["REDIS_URL"]) as conn:
        for _ in range(5):
            app.send_task("conferences.start_occurrence", args=[occ.pk], connection=conn)
    processes.worker()
    assert wait_for(lambda: RoomSession.objects.filter(room=room).exists(), timeout=30)
    time.sleep(2)  # let every duplicate run
    assert RoomSession.objects.filter(room=room).count() == 1
    assert len(livekit.calls_to("CreateRoom")) == 1
    occ.refresh_from_db()
    assert occ.status == "live"


def test_worker_killed_mid_start_gives_exactly_one_start(processes, owner, livekit):
    livekit.set_latency(6)  # CreateRoom hangs long enough to kill the worker inside it
    processes.worker("first")
    processes.beat()
    room, occ = scheduled_room(owner, start_in=1)
    processes.wait_log("first", "conferences.start_occurrence", timeout=30)
    time.sleep(1.5)  # inside the LiveKit call, the claim not committed
    processes.kill("first")
    occ.refresh_from_db()
    assert occ.status == "scheduled" and not RoomSession.objects.filter(room=room).exists()
    livekit.set_latency(0)
    processes.worker("second")
    assert wait_for(lambda: RoomSession.objects.filter(room=room).exists(), timeout=40), (
        processes.log("second")[-3000:]
    )
    time.sleep(3)  # a late re-dispatch must not start it again
    assert RoomSession.objects.filter(room=room).count() == 1
    occ.refresh_from_db()
    assert occ.status == "live"


def test_livekit_down_then_up(processes, owner, livekit):
    livekit.down()
    processes.worker()
    processes.beat()
    room, occ = scheduled_room(owner, start_in=0)
    time.sleep(5)
    occ.refresh_from_db()
    assert occ.status == "scheduled" and not RoomSession.objects.filter(room=room).exists()
    livekit.up()
    assert wait_for(lambda: RoomSession.objects.filter(room=room).exists(), timeout=60), (
        processes.log("worker")[-3000:]
    )
    occ.refresh_from_db()
    assert occ.status == "live"
    assert [c.request.name for c in livekit.calls_to("CreateRoom")] == [room.room_id]


def test_a_burst_is_pre_created_ahead_then_started_at_its_second(processes, livekit):
    from tests.conftest import make_member

    member = make_member("Burst Co", plan="enterprise")  # no concurrent-room limit
    processes.worker()
    processes.beat()
    processes.wait_log("beat", "Sending due task")
    start = (timezone.now() + dt.timedelta(seconds=10)).replace(microsecond=0)
    pks = []
    for i in range(5):
        room = room_services.create_room(
            tenant=member.tenant,
            data={"name": f"Burst {i}", "room_type": "scheduled", "start_time": start},
        )
        pks.append(Occurrence.objects.get(room=room).pk)
    created = wait_for(lambda: len(livekit.calls_to("CreateRoom")) == 5, timeout=30)
    assert created, processes.log("worker")[-3000:]
    # Created in the look-ahead: before the start, and nothing is live yet.
    assert timezone.now() < start
    assert not Occurrence.objects.filter(pk__in=pks).exclude(status="scheduled").exists()
    assert wait_for(
        lambda: Occurrence.objects.filter(pk__in=pks, status="live").count() == 5, timeout=30
    ), processes.log("worker")[-3000:]
    for occ in Occurrence.objects.filter(pk__in=pks):
        assert -1.0 <= (occ.started_at - occ.start_time).total_seconds() < 3.0
    assert "conferences.start_occurrences" in processes.log("worker")
    time.sleep(2)  # a late re-dispatch must not start anything again
    assert RoomSession.objects.filter(occurrence__pk__in=pks).count() == 5
    assert len(livekit.calls_to("CreateRoom")) == 5
