"""Parley's production web server command: uvicorn with several worker processes, uvloop and
httptools, no access log (join tokens must not land in logs), proxy headers trusted from
nobody unless FORWARDED_ALLOW_IPS names the load balancer.

    .venv/bin/python scripts/serve.py            # what `make serve` and docker compose run
    .venv/bin/python scripts/serve.py --print    # show the command instead of running it

Environment (all optional):
    HOST (127.0.0.1), PORT (8000)
    WEB_CONCURRENCY      worker processes (default: the number of CPUs with REDIS_URL, else 1;
                         more than one needs REDIS_URL)
    FORWARDED_ALLOW_IPS  comma-separated proxy addresses whose X-Forwarded-For/-Proto are
                         believed; empty (the default): proxy headers are ignored
    WEB_BACKLOG          listen backlog (2048)
    WEB_KEEPALIVE        keep-alive timeout in seconds (5)

Every worker is a full ASGI process (HTTP + websockets); shared state lives in PostgreSQL
and Redis, so more processes (or hosts behind a load balancer) can be added freely.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(env: dict[str, str] | None = None) -> list[str]:
    """The uvicorn command line for `env` (default: os.environ)."""
    env = dict(os.environ if env is None else env)
    shared = bool(env.get("REDIS_URL"))
    workers = int(env.get("WEB_CONCURRENCY") or ((os.cpu_count() or 1) if shared else 1))
    if workers > 1 and not shared:
        # Without Redis the channel layer, rate limits and caches live in one process's
        # memory: a second worker would not hear the first's lobby or stage events.
        raise SystemExit("WEB_CONCURRENCY > 1 needs REDIS_URL (shared channel layer and cache)")
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "dashboard.asgi:application",
        "--host",
        env.get("HOST") or "127.0.0.1",
        "--port",
        env.get("PORT") or "8000",
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--lifespan",
        "off",
        "--no-access-log",
        "--no-server-header",
        "--backlog",
        str(int(env.get("WEB_BACKLOG") or 2048)),
        "--timeout-keep-alive",
        str(int(env.get("WEB_KEEPALIVE") or 5)),
    ]
    trusted = (env.get("FORWARDED_ALLOW_IPS") or "").strip()
    if trusted:
        args += ["--proxy-headers", "--forwarded-allow-ips", trusted]
    else:
        # uvicorn's own default trusts 127.0.0.1: a local client could claim any address.
        args += ["--no-proxy-headers"]
    return args


def main(argv: list[str]) -> int:
    args = command()
    if "--print" in argv:
        print(" ".join(args))
        return 0
    os.chdir(ROOT)
    os.execv(args[0], args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
