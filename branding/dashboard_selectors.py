"""Reads of branding for the dashboard, emails and custom-domain routing. (Join pages read
theirs through `branding.selectors`.)"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.cache import cache

from accounts.models import Tenant

from .models import Brand, CustomDomain

HOST_CACHE_SECONDS = 60
CHALLENGE_PREFIX = "_parley-challenge"
CHALLENGE_VALUE = "parley-verification="


@dataclass(frozen=True)
class EmailBrand:
    product_name: str
    white_label: bool


def email_brand(tenant: Tenant) -> EmailBrand:
    """How emails about `tenant` name the product: its product name, or Parley unless the
    tenant is white-labelled. One query."""
    brand = Brand.objects.filter(tenant=tenant).first()
    white = bool(brand and brand.white_label)
    name = (brand.product_name if brand else "") or ("" if white else "Parley")
    return EmailBrand(product_name=name or tenant.name, white_label=white)


def email_sender(brand: EmailBrand) -> str:
    """DEFAULT_FROM_EMAIL with the tenant's product name as the display name (a
    white-labelled tenant's emails never show "Parley"); the address stays the configured
    one."""
    from email.utils import formataddr, parseaddr

    from django.conf import settings

    from parley.mail import header_text

    name = header_text(brand.product_name)  # a line break would make Django refuse the mail
    return formataddr((name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))


def verified_domain(tenant: Tenant) -> str | None:
    return (
        CustomDomain.objects.filter(tenant=tenant, verified_at__isnull=False)
        .values_list("domain", flat=True)
        .first()
    )


def join_base_url(tenant: Tenant, default: str) -> str:
    """Base of the tenant's join links: its verified custom domain (same scheme as
    `default`), else `default`."""
    domain = verified_domain(tenant)
    if not domain:
        return default
    scheme = urlsplit(default).scheme or "https"
    return f"{scheme}://{domain}"


def challenge_name(domain: str) -> str:
    return f"{CHALLENGE_PREFIX}.{domain}"


def challenge_value(token: str) -> str:
    return f"{CHALLENGE_VALUE}{token}"


def _host_key(host: str) -> str:
    return f"branding:host:{host}"


def tenant_for_host(host: str) -> int | None:
    """The tenant whose verified custom domain `host` is (cached a minute; negative answers
    too, so unknown hosts cost one query a minute)."""
    key = _host_key(host)
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    tenant_id = (
        CustomDomain.objects.filter(domain=host, verified_at__isnull=False)
        .values_list("tenant_id", flat=True)
        .first()
    )
    cache.set(key, tenant_id or 0, HOST_CACHE_SECONDS)
    return tenant_id


def forget_host(host: str) -> None:
    cache.delete(_host_key(host))
