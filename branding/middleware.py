"""Custom domains: a tenant's verified domain serves its join pages.

`CustomDomainMiddleware` (first in MIDDLEWARE) looks at a request whose Host is none of
ALLOWED_HOSTS: if it is a tenant's verified custom domain, the request is accepted for that
host (Django's host check is satisfied for it alone), but only join pages of that tenant's
rooms, static files and brand logos answer there; anything else is 404. Unknown hosts go on
to Django, which refuses them (400) as before. Requests for the product's own hosts cost
nothing more than a host comparison.

`CustomDomainOriginValidator` does the same for websockets: a socket opened from a page on
a verified custom domain is accepted only on the join page's live channels of that tenant's
own rooms (`/ws/rooms/<room_id>/status|lobby/<entry>|host|stage`), never on the dashboard
socket, the videochat socket or another tenant's rooms.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.http.request import split_domain_port, validate_host

from .dashboard_selectors import tenant_for_host

ROOM_PATH = re.compile(r"^/room/([A-Za-z0-9]{1,32})(/|$)")
# The join page's sockets (conferences/routing.py): the only ones a custom domain may open.
ROOM_SOCKET_PATH = re.compile(
    r"^/ws/rooms/([A-Za-z0-9]{1,32})/(status|host|stage|lobby/[A-Za-z0-9_-]{1,64})$"
)
OPEN_PREFIXES = ("/static/", "/brand/logo/", "/healthz")


def allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def custom_host(raw_host: str) -> str | None:
    """The host name of a request whose Host is not one of ours, else None."""
    domain, _port = split_domain_port(raw_host or "")
    if not domain or validate_host(domain, allowed_hosts()):
        return None
    return domain


def _room_of_tenant(room_id: str, tenant_id: int) -> bool:
    from conferences.models import Room

    return Room.objects.filter(room_id=room_id, tenant_id=tenant_id).exists()


def _decide(path: str, host: str) -> tuple[int | None, bool]:
    """(tenant id, whether `path` may be served on `host`)."""
    tenant_id = tenant_for_host(host)
    if tenant_id is None:
        return None, False
    if path.startswith(OPEN_PREFIXES):
        return tenant_id, True
    match = ROOM_PATH.match(path)
    return tenant_id, bool(match and _room_of_tenant(match.group(1), tenant_id))


def _accept(request: HttpRequest, host: str, tenant_id: int) -> None:
    raw = request.META.get("HTTP_HOST", "")
    request.custom_domain = host  # type: ignore[attr-defined]
    request.custom_domain_tenant_id = tenant_id  # type: ignore[attr-defined]
    # The verified domain is a valid host for this request only.
    request.get_host = lambda: raw  # type: ignore[method-assign]


class CustomDomainMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        host = custom_host(request.META.get("HTTP_HOST", ""))
        if host is None:
            return self.get_response(request)
        tenant_id, ok = _decide(request.path_info, host)
        return self._route(request, host, tenant_id, ok)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        host = custom_host(request.META.get("HTTP_HOST", ""))
        if host is None:
            return await self.get_response(request)
        tenant_id, ok = await sync_to_async(_decide)(request.path_info, host)
        result = self._route(request, host, tenant_id, ok)
        return await result if not isinstance(result, HttpResponse) else result

    def _route(self, request: HttpRequest, host: str, tenant_id: int | None, ok: bool) -> Any:
        if tenant_id is None:
            return self.get_response(request)  # not ours: Django answers 400
        if not ok:
            return HttpResponseNotFound(b"Not found", content_type="text/plain")
        _accept(request, host, tenant_id)
        return self.get_response(request)


class CustomDomainOriginValidator:
    """Websocket Origin check (as channels' AllowedHostsOriginValidator): the Origin's host
    must be one of ALLOWED_HOSTS, or a verified custom domain opening a join-page socket of
    one of its own tenant's rooms; else the socket is denied (403 at the handshake)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                try:
                    origin = urlparse(value.decode("latin1"))
                except (UnicodeDecodeError, ValueError):
                    origin = None
        if await self.valid(origin, scope.get("path", "")):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

    async def valid(self, origin: Any, path: str) -> bool:
        host = (origin.hostname or "") if origin is not None else ""
        if not host:
            return False
        if validate_host(host, allowed_hosts()):
            return True
        match = ROOM_SOCKET_PATH.match(path)
        if match is None:
            return False  # a custom domain serves join pages only: no dashboard socket
        return await sync_to_async(_room_socket_of_domain)(host, match.group(1))


def _room_socket_of_domain(host: str, room_id: str) -> bool:
    """Whether `host` is a verified custom domain and `room_id` one of its tenant's rooms."""
    tenant_id = tenant_for_host(host)
    return tenant_id is not None and _room_of_tenant(room_id, tenant_id)
