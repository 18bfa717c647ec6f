"""Writes for accounts: tenants, members and API keys. The only place that changes them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import ApiKey, Membership, Plan, Tenant, User

API_KEY_PREFIX = "pk_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AccountError(Exception):
    """A request that cannot be honoured; `field` names the offending input."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str  # the full key, shown once


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _split_key(raw: str) -> str | None:
    """Return the lookup prefix of a well-formed key, else None."""
    if not raw.startswith(API_KEY_PREFIX):
        return None
    body = raw[len(API_KEY_PREFIX) :]
    prefix, sep, secret = body.partition("_")
    if not sep or len(prefix) != 12 or len(secret) < 32:
        return None
    return prefix


@transaction.atomic
def create_api_key(*, tenant: Tenant, name: str) -> IssuedKey:
    """Create a key for `tenant`; the returned secret is never stored and never shown again."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AccountError("Key name must be 1-100 characters", field="name")
    prefix = secrets.token_hex(6)
    raw = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(tenant=tenant, name=name, prefix=prefix, key_hash=hash_key(raw))
    return IssuedKey(api_key=api_key, secret=raw)


def authenticate_api_key(raw: str) -> ApiKey | None:
    """Resolve a presented key to its active ApiKey (tenant and plan joined), or None.

    One SELECT; the last-used time is written at most once a minute per key.
    """
    prefix = _split_key(raw or "")
    if prefix is None:
        return None
    api_key = ApiKey.objects.active().select_related("tenant__plan").filter(prefix=prefix).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, hash_key(raw)):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


@dataclass(frozen=True)
class CreatedTenant:
    tenant: Tenant
    user: User
    password: str | None
    key: IssuedKey | None


def get_plan(code: str) -> Plan:
    try:
        return Plan.objects.get(code=code)
    except Plan.DoesNotExist:
        raise AccountError(f"Unknown plan '{code}'", field="plan") from None


@transaction.atomic
def create_tenant(
    *,
    name: str,
    plan_code: str = "free",
    owner: User,
    timezone_name: str = "UTC",
) -> Tenant:
    """Create a tenant owned by `owner`."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AccountError("Tenant name must be 1-100 characters", field="name")
    tenant = Tenant.objects.create(name=name, plan=get_plan(plan_code), timezone=timezone_name)
    Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
    return tenant


@transaction.atomic
def create_tenant_with_admin(
    *, name: str, plan_code: str, admin_email: str, with_key: bool = True
) -> CreatedTenant:
    """Create a tenant, its owner user (with a generated password) and one API key."""
    email = (admin_email or "").strip().lower()
    if not email or "@" not in email:
        raise AccountError("A valid admin email is required", field="admin_email")
    if User.objects.filter(email__iexact=email).exists():
        raise AccountError(f"A user with email {email} already exists", field="admin_email")
    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(username=_username_for(email), email=email, password=password)
    _mark_email_verified(user)
    tenant = create_tenant(name=name, plan_code=plan_code, owner=user)
    key = create_api_key(tenant=tenant, name="default") if with_key else None
    return CreatedTenant(tenant=tenant, user=user, password=password, key=key)


def _username_for(email: str) -> str:
    base = email.split("@")[0][:100] or "user"
    return f"{base}-{secrets.token_hex(4)}"


def _mark_email_verified(user: User) -> None:
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )


@transaction.atomic
def reset_password(*, user: User) -> str:
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.save(update_fields=["password"])
    return password
