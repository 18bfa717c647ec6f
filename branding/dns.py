"""DNS lookups for custom-domain verification: the only module that queries DNS.

`txt_records` asks the system's resolvers, or the ones named in DNS_NAMESERVERS
("host:port" entries; tests point it at a DNS double on 127.0.0.1), bounded by DNS_TIMEOUT.
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.resolver
from django.conf import settings


class DnsUnavailable(Exception):
    """No resolver answered in time."""


def _resolver() -> dns.resolver.Resolver:
    servers = list(getattr(settings, "DNS_NAMESERVERS", []) or [])
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = []
        for item in servers:
            host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
            resolver.nameservers.append(host)
            if port:
                resolver.port = int(port)
    resolver.lifetime = float(getattr(settings, "DNS_TIMEOUT", 5.0))
    resolver.timeout = resolver.lifetime
    return resolver


def txt_records(name: str) -> list[str]:
    """The TXT strings published at `name` (each record's strings joined); [] when the name
    or the record does not exist."""
    try:
        answer = _resolver().resolve(dns.name.from_text(name), "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout, dns.exception.Timeout):
        raise DnsUnavailable("DNS did not answer; try again in a minute") from None
    except dns.exception.DNSException as exc:
        raise DnsUnavailable(f"DNS lookup failed: {exc.__class__.__name__}") from None
    out = []
    for record in answer:
        out.append(b"".join(record.strings).decode("utf-8", "replace"))
    return out
