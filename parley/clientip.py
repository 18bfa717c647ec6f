"""The client's address, read one way everywhere: from the peer, or, when the peer is one of
`settings.PARLEY_TRUSTED_PROXIES`, from its `X-Forwarded-For`.

Only a proxy on that list is believed. `X-Forwarded-For` is read right to left (the nearest
hop first), skipping addresses that are themselves trusted proxies; the first address that is
not is the client. With the list empty (the default) the header is ignored: a client cannot
choose its own address, so per-address limits hold. Run uvicorn with `--no-proxy-headers`
(or `--forwarded-allow-ips ''`) so the server does not rewrite the peer address itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(getattr(settings, "PARLEY_TRUSTED_PROXIES", ()) or ()))


def _parse(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address: Address, nets: Iterable[Network]) -> bool:
    return any(address in net for net in nets)


def resolve(peer: str, forwarded_for: str = "") -> str:
    """The client address given the peer's address and its X-Forwarded-For header."""
    nets = trusted_networks()
    current = _parse(peer or "")
    if current is None:
        return peer or ""
    if not nets or not _trusted(current, nets) or not forwarded_for:
        return str(current)
    for hop in reversed(forwarded_for.split(",")):
        address = _parse(hop)
        if address is None:
            break  # a garbled hop: stop at the last address a trusted proxy vouched for
        current = address
        if not _trusted(address, nets):
            break
    return str(current)


def client_ip(request: Any) -> str:
    """The client address of a Django (or DRF) request."""
    meta: Mapping[str, str] = request.META
    return resolve(meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""))


def scope_client_ip(scope: Mapping[str, Any]) -> str:
    """The client address of an ASGI (websocket) scope, by the same rules."""
    peer = (scope.get("client") or ("", 0))[0] or ""
    forwarded = ",".join(
        value.decode("latin1")
        for name, value in scope.get("headers") or ()
        if name.lower() == b"x-forwarded-for"
    )
    return resolve(peer, forwarded)
