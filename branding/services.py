"""Writes of branding: the brand's look, the uploaded logo, the custom domain.

Admins and owners only (`accounts.services.NotAllowed` otherwise). Colours must keep text
readable: white text on the primary colour needs WCAG AA contrast (4.5:1).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Tenant
from accounts.services import AccountError, NotAllowed, role_at_least
from parley import hotcache

from . import dns
from .dashboard_selectors import challenge_name, challenge_value, forget_host
from .models import Brand, BrandLogo, CustomDomain

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
MIN_PRIMARY_CONTRAST = 4.5  # white text on primary buttons: WCAG AA for normal text
MIN_ACCENT_CONTRAST = 3.0  # accent on white: WCAG AA for UI components (a warning only)
MAX_LOGO_BYTES = 512 * 1024
LOGO_TYPES = {  # magic bytes -> content type; SVG is refused (it can carry script)
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class BrandingError(AccountError):
    pass


def _require_admin(actor: Membership) -> None:
    if not role_at_least(actor.role, Membership.Role.ADMIN):
        raise NotAllowed(f"Your role ({actor.role}) cannot change branding")


# --- colours ----------------------------------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""
    la, lb = _luminance(a), _luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def _colour(value: str, field: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    if not HEX.match(value):
        raise BrandingError("Use a colour like #2f5bea", field=field)
    return value.lower()


# --- the brand --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrandInput:
    product_name: str
    primary_color: str
    accent_color: str
    white_label: bool
    logo_url: str | None  # None: keep the logo as it is (an uploaded one, say)


@transaction.atomic
def update_brand(*, actor: Membership, tenant: Tenant, data: BrandInput) -> Brand:
    """Validate and store the brand. The primary colour must carry white text (4.5:1)."""
    _require_admin(actor)
    name = (data.product_name or "").strip()
    if len(name) > 60:
        raise BrandingError("Product name must be at most 60 characters", field="product_name")
    primary = _colour(data.primary_color, "primary_color")
    accent = _colour(data.accent_color, "accent_color")
    if primary and contrast(primary, "#ffffff") < MIN_PRIMARY_CONTRAST:
        raise BrandingError(
            f"White text on {primary} has a contrast of {contrast(primary, '#ffffff'):.1f}:1; "
            f"pick a darker colour (at least {MIN_PRIMARY_CONTRAST}:1)",
            field="primary_color",
        )
    brand, _ = Brand.objects.select_for_update().get_or_create(tenant=tenant)
    brand.product_name = name
    brand.primary_color = primary
    brand.accent_color = accent
    brand.white_label = bool(data.white_label)
    if data.logo_url is not None:
        url = data.logo_url.strip()
        if url and (not re.match(r"^https?://[^\s/$.?#][^\s]*$", url) or len(url) > 500):
            raise BrandingError("The logo URL must be an http(s) URL", field="logo_url")
        if url != brand.logo_url:
            BrandLogo.objects.filter(tenant=tenant).delete()  # a URL replaces an upload
        brand.logo_url = url
    brand.save()
    hotcache.invalidate_tenant(tenant.pk)  # join pages' cached brand
    return brand


def sniff_image(data: bytes) -> str | None:
    for magic, content_type in LOGO_TYPES.items():
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@transaction.atomic
def upload_logo(*, actor: Membership, tenant: Tenant, data: bytes, base_url: str) -> Brand:
    """Store an uploaded PNG, JPEG, GIF or WebP (at most 512 KB) and point the brand's logo
    at it."""
    _require_admin(actor)
    if not data:
        raise BrandingError("Choose an image file", field="logo")
    if len(data) > MAX_LOGO_BYTES:
        raise BrandingError("The logo must be at most 512 KB", field="logo")
    content_type = sniff_image(data)
    if content_type is None:
        raise BrandingError("The logo must be a PNG, JPEG, GIF or WebP image", field="logo")
    sha = hashlib.sha256(data).hexdigest()
    BrandLogo.objects.update_or_create(
        tenant=tenant, defaults={"data": data, "content_type": content_type, "sha": sha}
    )
    brand, _ = Brand.objects.select_for_update().get_or_create(tenant=tenant)
    brand.logo_url = f"{base_url.rstrip('/')}/brand/logo/{sha}"
    brand.save(update_fields=["logo_url", "updated_at"])
    hotcache.invalidate_tenant(tenant.pk)  # join pages' cached brand
    return brand


@transaction.atomic
def remove_logo(*, actor: Membership, tenant: Tenant) -> None:
    _require_admin(actor)
    BrandLogo.objects.filter(tenant=tenant).delete()
    Brand.objects.filter(tenant=tenant).update(logo_url="", updated_at=timezone.now())
    hotcache.invalidate_tenant(tenant.pk)  # join pages' cached brand


# --- the custom domain ------------------------------------------------------------------------


def normalize_domain(raw: str) -> str:
    value = (raw or "").strip().lower().rstrip(".")
    value = re.sub(r"^https?://", "", value).split("/")[0]
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise BrandingError("Enter a domain name like meet.example.com", field="domain") from None
    if not DOMAIN.match(value):
        raise BrandingError("Enter a domain name like meet.example.com", field="domain")
    return value


@transaction.atomic
def set_domain(*, actor: Membership, tenant: Tenant, domain: str) -> CustomDomain:
    """Claim `domain` for the tenant (replacing its previous one) with a fresh TXT token.
    Nothing answers on it until `verify_domain` finds the record."""
    from django.conf import settings
    from django.http.request import validate_host

    _require_admin(actor)
    domain = normalize_domain(domain)
    if validate_host(domain, settings.ALLOWED_HOSTS):
        raise BrandingError("That is this service's own host name", field="domain")
    if (
        CustomDomain.objects.filter(domain=domain, verified_at__isnull=False)
        .exclude(tenant=tenant)
        .exists()
    ):
        raise BrandingError("Another workspace has verified this domain", field="domain")
    old = CustomDomain.objects.filter(tenant=tenant).first()
    if old is not None:
        forget_host(old.domain)
        old.delete()
    return CustomDomain.objects.create(tenant=tenant, domain=domain)


@dataclass(frozen=True)
class Verification:
    domain: CustomDomain
    verified: bool
    message: str


def verify_domain(*, actor: Membership, tenant: Tenant) -> Verification:
    """Look up the TXT record (outside any transaction: DNS may take seconds), then record
    the result. The first tenant to prove a name gets it."""
    _require_admin(actor)
    claim = CustomDomain.objects.filter(tenant=tenant).first()
    if claim is None:
        raise BrandingError("Add a domain first", field="domain")
    name, wanted = challenge_name(claim.domain), challenge_value(claim.token)
    try:
        found = dns.txt_records(name)
    except dns.DnsUnavailable as exc:
        return _record_check(claim, verified=False, message=str(exc))
    if wanted not in found:
        message = (
            f"No TXT record {wanted} at {name} yet. DNS changes can take a while to show."
            if not found
            else f"{name} has TXT records, but none is {wanted}."
        )
        return _record_check(claim, verified=False, message=message)
    return _record_check(claim, verified=True, message="Verified")


@transaction.atomic
def _record_check(claim: CustomDomain, *, verified: bool, message: str) -> Verification:
    claim = CustomDomain.objects.select_for_update().get(pk=claim.pk)
    now = timezone.now()
    claim.checked_at = now
    claim.last_error = "" if verified else message[:200]
    if verified and claim.verified_at is None:
        claim.verified_at = now
        try:
            with transaction.atomic():
                claim.save()
        except IntegrityError:
            raise BrandingError(
                "Another workspace has verified this domain", field="domain"
            ) from None
        forget_host(claim.domain)
        return Verification(claim, True, message)
    claim.save(update_fields=["checked_at", "last_error"])
    return Verification(claim, claim.verified_at is not None, message)


@transaction.atomic
def remove_domain(*, actor: Membership, tenant: Tenant) -> None:
    _require_admin(actor)
    claim = CustomDomain.objects.filter(tenant=tenant).first()
    if claim is not None:
        forget_host(claim.domain)
        claim.delete()
