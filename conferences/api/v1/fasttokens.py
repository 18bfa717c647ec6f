"""`POST /api/v1/rooms/{room_id}/tokens` answered without Django's request, DRF and middleware
machinery when everything succeeds on the first try (parley.asgi.LeanHandler asks here first).

It calls exactly what RoomTokensView's route calls, in the same order: the failed-
authentication throttle, `authenticate_api_key`, the plan's allowance (`consume_request`),
`access.room_for_token`, `room_services.issue_token` and `shapes.token_json`. It only ever
answers 200. Anything else -- no key or a bad one, an address over its failed-authentication
budget, a tenant over its allowance, a body the serializer might refuse, an unknown room, a
room that must go live first, an Accept header that is not JSON, an unexpected error --
returns None, and the request goes through the full Django path, which writes the one
canonical answer (the error envelope and its status). The allowance counted here travels with
the request (scope[auth.RATE_SCOPE_KEY]), so a request is counted once whichever path answers it.

The answer's static headers (Content-Security-Policy, HSTS, Allow, ...) are the ones the full
path's middleware wrote on its last 200 for the same host and scheme (`learn`), kept at most
HOT_CACHE_SECONDS; until then, and for a host never seen, the full path answers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signals
from django.db import connection, transaction

from accounts.services import api_key_prefix, authenticate_api_key
from conferences import access, shapes
from conferences.middleware import new_request_id
from conferences.models import Room
from conferences.roles import Role
from conferences.services import rooms as room_services
from conferences.services.errors import NotFound
from parley import cache as shared
from parley import hotcache, jsontext
from parley.asgi import Answer, Headers, Scope, keep_sqlite_connection
from parley.clientip import scope_client_ip

from ..auth import RATE_SCOPE_KEY, consume_request, failing_wait, failure_window

PATH = re.compile(r"/api/v1/rooms/([^/]+)/tokens/?")
FIELDS = frozenset({"name", "identity", "role"})
ROLES = frozenset(Role.values)
# Headers every answer computes afresh; everything else the middleware wrote is per host.
DYNAMIC = frozenset(
    {
        b"x-request-id",
        b"x-ratelimit-limit",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
        b"content-length",
    }
)
# What the middleware's headers may depend on besides settings: the host and the scheme.
HOST_HEADERS = frozenset(
    {b"host", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port", b"forwarded"}
)
MAX_HOSTS = 1000


def token_input(data: Any) -> tuple[str, str | None, str | None] | None:
    """(name, identity, role) when TokenInputSerializer would accept `data` with exactly
    these values, else None (the serializer then says what is wrong). Stricter, never looser:
    tests/test_fast_tokens.py checks this against the serializer on generated bodies."""
    if not isinstance(data, dict) or not FIELDS.issuperset(data):
        return None
    name = data.get("name")
    if not isinstance(name, str):
        return None
    name = name.strip()
    if not 1 <= len(name) <= 100 or "\x00" in name:
        return None
    identity = data.get("identity")
    if "identity" in data:
        if not isinstance(identity, str):
            return None
        identity = identity.strip()
        if not 1 <= len(identity) <= 128:
            return None
        if not all(c.isalnum() or c in "-_.@:" for c in identity):
            return None
    role = data.get("role")
    if "role" in data and not (isinstance(role, str) and role in ROLES):
        return None
    return name, identity, role


@dataclass(frozen=True)
class _Request:
    scope: Scope
    body: bytes
    headers: dict[bytes, bytes]
    static: Headers
    raw_key: str
    address: str
    keys: list[str]  # the shared values its checks read


def _accepts_json(accept: str) -> bool:
    if not accept:
        return True
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(kinds & {"application/json", "application/*", "*/*"})


class FastTokens:
    def __init__(self) -> None:
        self._static: dict[tuple[Any, ...], tuple[float, Headers]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def handles(scope: Scope) -> bool:
        return scope["method"] == "POST" and PATH.fullmatch(scope["path"]) is not None

    @staticmethod
    def _host_key(scope: Scope) -> tuple[Any, ...]:
        return (
            scope.get("scheme", "http"),
            tuple(sorted((n, v) for n, v in scope.get("headers", ()) if n in HOST_HEADERS)),
        )

    def learn(self, scope: Scope, status: int, headers: Headers) -> None:
        """Remember the static headers of a 200 the full path wrote for this host."""
        if status != 200 or any(n.lower() == b"set-cookie" for n, _ in headers):
            return
        static = [(n.lower(), v) for n, v in headers if n.lower() not in DYNAMIC]
        seconds = float(getattr(settings, "HOT_CACHE_SECONDS", 1.0))
        with self._lock:
            if len(self._static) >= MAX_HOSTS:
                self._static.clear()
            self._static[self._host_key(scope)] = (time.monotonic() + seconds, static)

    def _headers_for(self, scope: Scope) -> Headers | None:
        found = self._static.get(self._host_key(scope))
        if found is None or time.monotonic() >= found[0]:
            return None
        return found[1]

    def respond_many(self, requests: list[tuple[Scope, bytes]]) -> list[Answer | None]:
        """Each request's 200, or None where the full path must answer it. The requests
        arrived together (parley.asgi.LeanHandler batches those waiting for the thread):
        one request_started/finished pair and one Redis round trip for the shared values
        every check reads (each address's failed-authentication count, each known key's
        tenant generation), then each request on its own."""
        prepared = [self._prepare(scope, body) for scope, body in requests]
        keys = sorted({key for p in prepared if p is not None for key in p.keys})
        if not keys:
            return [None] * len(requests)
        signals.request_started.send(sender=self.__class__, scope=requests[0][0])
        try:
            # On PostgreSQL, one transaction for the batch's participant rows: one commit (one
            # WAL flush) instead of one per token. SQLite's commits are cheap, but a batch
            # would hold its one write lock while the other processes wait: one per token.
            # Any error: Django answers each request of the batch (and says what went wrong);
            # its participant writes are the same upserts, so nothing is written twice.
            batch = transaction.atomic() if connection.vendor == "postgresql" else nullcontext()
            with shared.prefetched(keys), batch:
                return [self._checked(p) if p is not None else None for p in prepared]
        except Exception:
            return [None] * len(requests)
        finally:
            keep_sqlite_connection()
            signals.request_finished.send(sender=self.__class__)

    def _prepare(self, scope: Scope, body: bytes) -> _Request | None:
        static = self._headers_for(scope)
        if static is None:
            return None
        headers = {n.lower(): v for n, v in scope.get("headers", ())}
        raw_key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if (
            not raw_key
            or content_type.split(";")[0].strip() != "application/json"
            or not _accepts_json(headers.get(b"accept", b"").decode("latin-1"))
        ):
            return None
        address = scope_client_ip(scope)
        keys = [failure_window(address).key]
        prefix = api_key_prefix(raw_key)
        tenant_id = hotcache.tenant_of("apikey", prefix) if prefix else None
        if tenant_id is not None:
            keys.append(hotcache.generation_key(tenant_id))
        return _Request(scope, body, headers, static, raw_key, address, keys)

    def _checked(self, request: _Request) -> Answer | None:
        scope, headers, static = request.scope, request.headers, request.static
        raw_key, body, address = request.raw_key, request.body, request.address
        if failing_wait(address) is not None:
            return None
        api_key = authenticate_api_key(raw_key)
        if api_key is None:
            return None
        tenant = api_key.tenant
        allowed, rate = consume_request(tenant)
        scope[RATE_SCOPE_KEY] = (allowed, rate)  # from here on, the request is counted
        if not allowed:
            return None
        try:
            parsed = token_input(jsontext.loads(body))
        except jsontext.InvalidJSON:
            return None
        if parsed is None:
            return None
        room_id = PATH.fullmatch(scope["path"]).group(1)  # type: ignore[union-attr]
        try:
            room = access.room_for_token(tenant=tenant, room_id=room_id)
        except NotFound:
            return None
        if room.status != Room.Status.ACTIVE or room.live_since is None:
            return None  # going live (plan limit, LiveKit) is the full path's business
        name, identity, role = parsed
        issued = room_services.issue_token(room=room, name=name, identity=identity, role=role)
        content = json.dumps(
            shapes.token_json(issued), ensure_ascii=False, separators=(",", ":")
        ).encode()
        sent_id = headers.get(b"x-request-id", b"").decode("latin-1")
        answer = [
            *static,
            *((k.lower().encode(), v.encode()) for k, v in rate.headers().items()),
            (b"x-request-id", new_request_id(sent_id).encode()),
            (b"content-length", str(len(content)).encode()),
        ]
        return 200, answer, content
