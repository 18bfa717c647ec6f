"""Reads of branding for the pages that show it (join page, host page)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from conferences.models import Room

from .models import Brand

DEFAULT_PRIMARY = "#2f5bea"
DEFAULT_ACCENT = "#14b8a6"
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class PageBrand:
    product_name: str
    logo_url: str  # empty: no logo
    primary_color: str  # always a #rrggbb value, safe to put in a style attribute
    accent_color: str
    white_label: bool


def _colour(value: str, default: str) -> str:
    # Colours end up in CSS, where HTML escaping does not protect: only #rrggbb gets through.
    return value if value and _HEX.match(value) else default


def _http_url(value: str) -> str:
    if not value:
        return ""
    try:
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return ""
    return value if scheme in ("http", "https") else ""


def brand_for_room(room: Room) -> PageBrand:
    """The tenant's brand, with the room's custom_logo_url taking precedence for the logo.
    One query."""
    brand = Brand.objects.filter(tenant_id=room.tenant_id).first()
    white_label = bool(brand and brand.white_label)
    return PageBrand(
        product_name=(brand.product_name if brand else "") or ("" if white_label else "Parley"),
        logo_url=_http_url(room.custom_logo_url) or _http_url(brand.logo_url if brand else ""),
        primary_color=_colour(brand.primary_color if brand else "", DEFAULT_PRIMARY),
        accent_color=_colour(brand.accent_color if brand else "", DEFAULT_ACCENT),
        white_label=white_label,
    )


def cached_brand_for_room(room: Room) -> PageBrand:
    """`brand_for_room`, once per hot-cached room (conferences.access.derived): the join
    page of a webinar is loaded by everyone at once, and the brand is the same for all of
    them. Branding services invalidate the tenant's hot cache, so an edit shows at once."""
    from conferences.access import derived

    return derived(room, "brand", lambda: brand_for_room(room))
