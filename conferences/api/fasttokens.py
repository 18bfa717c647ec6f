"""The join-token routes answered without Django's request, DRF and middleware machinery
when everything succeeds on the first try (parley.asgi.LeanHandler asks here first):

* v1 `POST /api/v1/rooms/{room_id}/tokens` (RoomTokensView);
* Interactive Show `POST /api/rooms/join` for a viewer of a live show (JoinView).

It calls exactly what the route's view calls, in the same order: the failed-authentication
throttle, `authenticate_api_key`, the plan's allowance (`consume_requests`), the view's own
body rule and room lookup (`token_input` + `access.room_for_token`; `join_input` +
`access.open_room_named`), `room_services.issue_tokens` and the view's answer. It only ever
answers 200. Anything else -- no key or a bad one, an address over its failed-authentication
budget, a tenant over its allowance, a body the view might refuse, an unknown room, a room
that must go live first or be created, a show's host, an Accept header that is not JSON, an
unexpected error -- returns None, and the request goes through the full Django path, which
writes the one canonical answer (the route's error shape and status). The allowance counted
here travels with the request (scope[auth.RATE_SCOPE_KEY]), so a request is counted once
whichever path answers it.

Requests that arrived together are answered together (`respond_many`): one INCRBY per tenant
for the allowance and one statement for all their participant rows (`issue_tokens`).

The answer's static headers (Content-Security-Policy, HSTS, Allow, ...) are the ones the full
path's middleware wrote on its last 200 for the same route, host and scheme (`learn`),
relearnt every HOT_CACHE_SECONDS by one request (`_headers_for`); for a host never seen, or
one whose relearning did not succeed, the full path answers.
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

from accounts.models import Tenant
from accounts.services import api_key_prefix, authenticate_api_key
from conferences import access, shapes
from conferences.api.compat import interactive_show as show
from conferences.middleware import new_request_id
from conferences.models import Room
from conferences.roles import Role
from conferences.services import rooms as room_services
from conferences.services.errors import NotFound
from conferences.services.rooms import IssuedToken, TokenRequest
from parley import cache as shared
from parley import hotcache, jsontext
from parley.asgi import Answer, Headers, Scope, keep_sqlite_connection
from parley.clientip import scope_client_ip

from .auth import RATE_SCOPE_KEY, RateState, consume_requests, failing_wait, failure_window

PATH = re.compile(r"/api/v1/rooms/([^/]+)/tokens/?")
SHOW_PATH = "/api/rooms/join"
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


class Route:
    """One join route the fast path answers: what its view would ask `issue_tokens` for,
    and the body of its 200."""

    name: str

    def matches(self, path: str) -> bool:
        raise NotImplementedError

    def token_request(self, scope: Scope, data: Any, tenant: Tenant) -> TokenRequest | None:
        """The view's token request when it would answer 200 (None: the full path answers)."""
        raise NotImplementedError

    def answer(self, issued: IssuedToken, data: Any) -> Any:
        raise NotImplementedError


def _live_room(room: Room | None) -> Room | None:
    """The room when it is open and live; going live (plan limit, LiveKit) is the full
    path's business."""
    if room is None or room.status != Room.Status.ACTIVE or room.live_since is None:
        return None
    return room


class V1Tokens(Route):
    """`POST /api/v1/rooms/{room_id}/tokens` (RoomTokensView)."""

    name = "v1"

    def matches(self, path: str) -> bool:
        return PATH.fullmatch(path) is not None

    def token_request(self, scope: Scope, data: Any, tenant: Tenant) -> TokenRequest | None:
        parsed = token_input(data)
        if parsed is None:
            return None
        room_id = PATH.fullmatch(scope["path"]).group(1)  # type: ignore[union-attr]
        try:
            room = _live_room(access.room_for_token(tenant=tenant, room_id=room_id))
        except NotFound:
            return None
        if room is None:
            return None
        name, identity, role = parsed
        return TokenRequest(room=room, name=name, identity=identity, role=role)

    def answer(self, issued: IssuedToken, data: Any) -> Any:
        return shapes.token_json(issued)


class ShowJoin(Route):
    """Interactive Show's `POST /api/rooms/join` (interactive_show.JoinView) for a viewer of
    a show that is live. A host's join (the one-host check) and a show's first join (which
    creates its room) are the full path's."""

    name = "show"

    def matches(self, path: str) -> bool:
        return path == SHOW_PATH

    def token_request(self, scope: Scope, data: Any, tenant: Tenant) -> TokenRequest | None:
        try:
            room_name, participant_name, role = show.join_input(data)
        except show.ShowError:
            return None
        if role != "viewer":
            return None
        room = _live_room(access.open_room_named(tenant=tenant, name=room_name, cached=True))
        if room is None:
            return None
        return TokenRequest(
            room=room, name=participant_name, identity=participant_name, role=Role.VIEWER
        )

    def answer(self, issued: IssuedToken, data: Any) -> Any:
        return show.join_answer(issued, show.join_input(data)[0], "viewer")


ROUTES: tuple[Route, ...] = (V1Tokens(), ShowJoin())


@dataclass(frozen=True)
class _Request:
    route: Route
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
        self._refreshing: dict[tuple[Any, ...], float] = {}  # when a relearning was sent
        self._lock = threading.Lock()

    @staticmethod
    def route(scope: Scope) -> Route | None:
        if scope["method"] != "POST":
            return None
        return next((r for r in ROUTES if r.matches(scope["path"])), None)

    def handles(self, scope: Scope) -> bool:
        return self.route(scope) is not None

    def _host_key(self, scope: Scope) -> tuple[Any, ...]:
        route = self.route(scope)
        return (
            route.name if route else "",
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
        """The host's learnt headers, or None: the full path answers (and teaches them).
        Once they are HOT_CACHE_SECONDS old, one request goes to the full path to relearn
        them while the others keep the old ones for at most HOT_CACHE_SECONDS more; then,
        if no 200 has refreshed them (the host is no longer served), the full path answers
        every request. So headers are never older than twice HOT_CACHE_SECONDS, and under
        load a refresh costs one request, not every request of the moment."""
        key = self._host_key(scope)
        found = self._static.get(key)
        if found is None:
            return None
        expires, static = found
        now = time.monotonic()
        if now < expires:
            return static
        seconds = float(getattr(settings, "HOT_CACHE_SECONDS", 1.0))
        with self._lock:
            if now >= expires + seconds or self._refreshing.get(key, 0.0) < expires:
                if len(self._refreshing) >= MAX_HOSTS:
                    self._refreshing.clear()
                self._refreshing[key] = now  # this request relearns them
                return None
        return static

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
                return self._answers(prepared)
        except Exception:
            return [None] * len(requests)
        finally:
            keep_sqlite_connection()
            signals.request_finished.send(sender=self.__class__)

    def _prepare(self, scope: Scope, body: bytes) -> _Request | None:
        route = self.route(scope)
        static = self._headers_for(scope) if route is not None else None
        if route is None or static is None:
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
        return _Request(route, scope, body, headers, static, raw_key, address, keys)

    def _answers(self, prepared: list[_Request | None]) -> list[Answer | None]:
        """The view's steps for each request, in its order, with the batch's writes shared:
        one INCRBY per tenant for the allowance, one statement for the participant rows."""
        answers: list[Answer | None] = [None] * len(prepared)
        by_tenant: dict[int, list[tuple[int, _Request, Tenant]]] = {}
        for i, request in enumerate(prepared):
            if request is None or failing_wait(request.address) is not None:
                continue
            api_key = authenticate_api_key(request.raw_key)
            if api_key is None:
                continue
            by_tenant.setdefault(api_key.tenant_id, []).append((i, request, api_key.tenant))
        issuing: list[tuple[int, _Request, RateState, TokenRequest, Any]] = []
        for admitted in by_tenant.values():
            tenant = admitted[0][2]
            for (i, request, _), (allowed, rate) in zip(
                admitted, consume_requests(tenant, len(admitted)), strict=True
            ):
                request.scope[RATE_SCOPE_KEY] = (allowed, rate)  # from here on, counted
                if not allowed:
                    continue
                try:
                    data = jsontext.loads(request.body)
                except jsontext.InvalidJSON:
                    continue
                wanted = request.route.token_request(request.scope, data, tenant)
                if wanted is not None:
                    issuing.append((i, request, rate, wanted, data))
        if not issuing:
            return answers
        issued = room_services.issue_tokens([wanted for _, _, _, wanted, _ in issuing])
        for (i, request, rate, _, data), token in zip(issuing, issued, strict=True):
            content = json.dumps(
                request.route.answer(token, data), ensure_ascii=False, separators=(",", ":")
            ).encode()
            sent_id = request.headers.get(b"x-request-id", b"").decode("latin-1")
            answers[i] = (
                200,
                [
                    *request.static,
                    *((k.lower().encode(), v.encode()) for k, v in rate.headers().items()),
                    (b"x-request-id", new_request_id(sent_id).encode()),
                    (b"content-length", str(len(content)).encode()),
                ],
                content,
            )
        return answers
