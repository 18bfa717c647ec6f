"""Parley's production server command (scripts/serve.py) as real subprocesses on loopback
ports, sharing the test database (PostgreSQL) and Redis with the test: the services pass's
way to check what only shows with several processes (connection pools, caches invalidated
across processes, channel-layer fan-out).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parent.parent
# 50+ random characters of more than 5 kinds: the production settings' check passes.
PRODUCTION_SECRET = "test-only-production-secret-" + "abcdefghijklmnopqrstuvwxyz0123456789"


def require_services() -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 needs PostgreSQL (DATABASE_URL) and REDIS_URL")
        pytest.skip("needs PostgreSQL and Redis (the services pass)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}"
        f":{db['PORT'] or 5432}/{db['NAME']}"
    )


class WebProcesses:
    """`scripts/serve.py` processes (DEBUG=0) on the test database, Redis and LiveKit double."""

    def __init__(self, tmp_path: Path, livekit) -> None:
        self.tmp = tmp_path
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DEBUG": "0",
            "SECRET_KEY": PRODUCTION_SECRET,
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "LIVEKIT_URL": livekit.ws_url,
            "LIVEKIT_API_KEY": livekit.api_key,
            "LIVEKIT_API_SECRET": livekit.api_secret,
            "LOG_LEVEL": "WARNING",
            "HOST": "127.0.0.1",
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}

    def start(self, name: str, *, workers: int = 1, **env: str) -> str:
        """Start one server (`workers` processes on one port); returns its base URL."""
        port = free_port()
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "serve.py")],
            cwd=ROOT,
            env={**self.env, "PORT": str(port), "WEB_CONCURRENCY": str(workers), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                break
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    self.urls[name] = url
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"{name} did not start:\n{self.log(name)[-3000:]}")

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for name in list(self.procs):
            stop_group(self.procs.pop(name))


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group `proc` leads (started with start_new_session), then SIGKILL
    it if it has not exited within 15 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)
    # The leader has exited; children left in its group (a Celery pool, server workers) must
    # not outlive it and keep working on the next test's database.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
