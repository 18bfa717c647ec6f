"""Security headers of every answer: Content-Security-Policy, Permissions-Policy, and
`Cache-Control: no-store` on API answers.

* **CSP** (django-csp, settings.CONTENT_SECURITY_POLICY): scripts from this origin only (no
  inline script, no `eval`), styles from this origin plus the page's nonce (the tenant's
  colours), `connect-src` this origin and its websockets (`ws(s)://<the request's host>`,
  which also covers a tenant's custom domain). A view whose page reads media or connects
  elsewhere (an S3 recording, the egress template's LiveKit) widens the policy for that
  answer only with `allow()`.
* **Permissions-Policy**: camera, microphone and screen capture are refused everywhere
  except on pages whose view is wrapped in `@media_page` (the join and host pages, the API
  tester's audio test), where they are allowed for this origin only; those pages also get
  the LiveKit URL browsers use (LIVEKIT_PUBLIC_URL) in `connect-src`.
* **Cache-Control: no-store** on every API answer (`/api/`, `/v2/`) that did not set its
  own: they carry join tokens, host links and keys, which no cache may keep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase

PERMISSIONS_DENIED = "camera=(), microphone=(), display-capture=()"
PERMISSIONS_MEDIA = "camera=(self), microphone=(self), display-capture=(self)"
NO_STORE_PREFIXES = ("/api/", "/v2/")
R = TypeVar("R", bound=HttpResponseBase)


def origin(url: str | None) -> str | None:
    """`scheme://host[:port]` of `url`, or None when it has none."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def livekit_sources(url: str | None) -> list[str]:
    """What a page connecting to LiveKit at `url` needs in `connect-src`: its websocket
    origin, and the same host over HTTP(S), which livekit-client asks after a failed connect
    (`/rtc/validate`)."""
    found = origin(url)
    if found is None:
        return []
    scheme, rest = found.split("://", 1)
    http = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    socket = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    return sorted({f"{socket}://{rest}", f"{http}://{rest}"})


def allow(
    response: R,
    *,
    connect: Iterable[str | None] = (),
    media: Iterable[str | None] = (),
    img: Iterable[str | None] = (),
) -> R:
    """Widen this answer's CSP by these sources (full URLs are cut to their origins)."""
    update: dict[str, list[str]] = dict(getattr(response, "_csp_update", None) or {})
    for directive, urls in (("connect-src", connect), ("media-src", media), ("img-src", img)):
        sources = sorted({o for o in (origin(u) for u in urls) if o})
        if sources:
            update[directive] = [*update.get(directive, []), *sources]
    response._csp_update = update  # type: ignore[attr-defined]
    return response


def media_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view's pages join LiveKit: they may use the camera, microphone and screen capture
    (this origin only) and connect to LIVEKIT_PUBLIC_URL."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = view(request, *args, **kwargs)
        response["Permissions-Policy"] = PERMISSIONS_MEDIA
        return allow(response, connect=livekit_sources(settings.LIVEKIT_PUBLIC_URL))

    return wrapped


class SecurityHeadersMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:  # the 400 for an unknown host: no websockets to name
            return parts
        update = dict(parts.update or {})
        sockets = [f"ws://{host}", f"wss://{host}"]
        update["connect-src"] = [*update.get("connect-src", []), *sockets]
        parts.update = update
        return parts

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response = super().process_response(request, response)
        if "Permissions-Policy" not in response:
            response["Permissions-Policy"] = PERMISSIONS_DENIED
        if request.path_info.startswith(NO_STORE_PREFIXES) and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response
