"""Outbound webhook HTTP: signing, target safety (SSRF) and one bounded POST.

The only module that sends HTTP to tenants' endpoints. httpx (already a dependency) gives
per-phase timeouts, no redirects, no proxies from the environment, a streamed body we can
stop reading at 64 KiB, and the `sni_hostname` extension that lets us connect to the address
we vetted while TLS still verifies the endpoint's own host name (no DNS rebinding between the
check and the connection).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets as secrets_module
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from accounts import crypto

MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_BYTES = 1024
SIGNATURE_HEADER = "Parley-Signature"
EVENT_ID_HEADER = "Parley-Event-Id"
USER_AGENT = "Parley-Webhooks/1"


class UnsafeTarget(Exception):
    """The URL may not receive webhooks (scheme, or an address we refuse to reach)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def new_secret() -> str:
    """A signing secret: shown to the tenant once, stored only encrypted (`seal`)."""
    return "whsec_" + secrets_module.token_urlsafe(32)


def seal(secret: str) -> str:
    return crypto.encrypt(secret, purpose="webhook")


def unseal(token: str) -> str:
    return crypto.decrypt(token, purpose="webhook")


def signature_header(secrets: list[str], body: bytes, timestamp: int) -> str:
    """`t=<unix>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256 of "<t>.<body>" with each secret (two
    while a rotated secret is still valid)."""
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    for secret in secrets:
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)


def verify_signature(
    header: str, body: bytes, secret: str, *, tolerance: int = 300, now: float | None = None
) -> bool:
    """What a receiver does (documented in the README; used by the tests): true when one of
    the `v1` values is the HMAC of "<t>.<body>" with `secret` and `t` is recent."""
    items = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value for key, value in items if key == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, value) for key, value in items if key == "v1")


def _refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
    )


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def parse_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable endpoint URL; raises UnsafeTarget."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeTarget("The URL is not valid") from None
    scheme = parts.scheme.lower()
    allowed = {"https", "http"} if settings.WEBHOOK_ALLOW_HTTP else {"https"}
    if scheme not in allowed:
        raise UnsafeTarget("The URL must start with https://")
    if not parts.hostname:
        raise UnsafeTarget("The URL has no host")
    if parts.username or parts.password:
        raise UnsafeTarget("The URL may not carry a user name or password")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def resolve(url: str) -> Target:
    """Check the URL and resolve its host; every address must be public unless
    WEBHOOK_ALLOW_PRIVATE_TARGETS is on. Raises UnsafeTarget."""
    scheme, host, port = parse_url(url)
    try:
        literal = ipaddress.ip_address(host)
        addresses = [str(literal)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            raise UnsafeTarget(f"The host {host} could not be resolved") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeTarget(f"The host {host} could not be resolved")
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            if _refused(ipaddress.ip_address(address.split("%", 1)[0])):
                raise UnsafeTarget(
                    "The URL resolves to a loopback, private, link-local or multicast address"
                )
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=tuple(addresses))


def check_url(url: str) -> None:
    """For registration (and for other code that stores a webhook URL, such as a room's
    `webhook_url`): raises UnsafeTarget with a message for the user."""
    resolve(url)


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no HTTP answer
    excerpt: str  # the first KiB of the answer, or empty
    latency_ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def new_client() -> httpx.Client:
    timeout = settings.WEBHOOK_TIMEOUT
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,  # never through a proxy from the environment
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
    )


def post(client: httpx.Client, target: Target, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST `body` to the first vetted address of `target`; at most WEBHOOK_TIMEOUT seconds,
    no redirects, the answer read up to 64 KiB."""
    address = target.addresses[0]
    host_in_url = f"[{address}]" if ":" in address else address
    parts = urlsplit(target.url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    url = f"{target.scheme}://{host_in_url}:{target.port}{path}"
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    started = time.monotonic()
    deadline = started + settings.WEBHOOK_TIMEOUT
    try:
        with client.stream(
            "POST",
            url,
            content=body,
            headers={**headers, "Host": host_header, "Accept-Encoding": "identity"},
            extensions=extensions,
        ) as response:
            received = bytearray()
            for chunk in response.iter_raw():
                received += chunk
                if len(received) >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                    break
            status = response.status_code
    except httpx.TimeoutException:
        return Outcome(None, "", _ms(started), error="timed out")
    except httpx.HTTPError as exc:
        return Outcome(None, "", _ms(started), error=f"{type(exc).__name__}: {exc}"[:200])
    excerpt = bytes(received[:EXCERPT_BYTES]).decode("utf-8", errors="replace")
    return Outcome(status, excerpt, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
