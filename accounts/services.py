"""Writes for accounts: tenants, members and API keys. The only place that changes them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from parley import hotcache
from parley.errors import ServiceError

from .models import ApiKey, Invitation, Membership, Plan, Tenant, UsageDay, User

API_KEY_PREFIX = "pk_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AccountError(ServiceError):
    """A request that cannot be honoured; `field` names the offending input (the project's
    one error base, `parley.errors.ServiceError`)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str  # the full key, shown once


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_prefix(raw: str) -> str | None:
    """Return the lookup prefix of a well-formed key, else None."""
    if not raw.startswith(API_KEY_PREFIX):
        return None
    body = raw[len(API_KEY_PREFIX) :]
    prefix, sep, secret = body.partition("_")
    if not sep or len(prefix) != 12 or len(secret) < 32 or "\x00" in raw:
        return None
    if any(c not in "0123456789abcdef" for c in prefix):
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

    One SELECT, or none while the key sits in the process's hot cache (parley.hotcache: up
    to HOT_CACHE_SECONDS, dropped everywhere as soon as the tenant's keys change); the
    last-used time is written at most once a minute per key.
    """
    prefix = api_key_prefix(raw or "")
    if prefix is None:
        return None
    api_key = hotcache.get("apikey", prefix)
    if api_key is None:
        api_key = (
            ApiKey.objects.active().select_related("tenant__plan").filter(prefix=prefix).first()
        )
        if api_key is not None:
            # The generation is read after the row: a revoke committed in between leaves
            # this copy valid for at most HOT_CACHE_SECONDS.
            generation = hotcache.generation(api_key.tenant_id)
            hotcache.put(
                "apikey", prefix, api_key, tenant_id=api_key.tenant_id, generation=generation
            )
    if api_key is None or not hmac.compare_digest(api_key.key_hash, hash_key(raw)):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


@transaction.atomic
def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    """Revoke the key: refused by every web process from the commit on (hot cache dropped)."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        hotcache.invalidate_tenant(api_key.tenant_id)
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


# --- Dashboard: roles, tenant switching, members and invitations ------------------------------

Role = Membership.Role
# Who may do what in the dashboard: viewers read, members run rooms, admins run the workspace
# (keys, members, branding), owners also manage owners.
ROLE_RANK: dict[str, int] = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}
INVITATION_TTL = timedelta(days=7)


class NotAllowed(AccountError):
    """The caller's role does not allow this change (HTTP 403)."""


def role_at_least(role: str, minimum: str) -> bool:
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[minimum]


def memberships_of(user: User) -> list[Membership]:
    """Every membership of `user` with its tenant and plan, oldest first. One query."""
    return list(Membership.objects.filter(user=user).select_related("tenant__plan").order_by("pk"))


def pick_membership(memberships: list[Membership], tenant_public_id: str | None) -> Membership:
    """The membership of the tenant the session chose, else the oldest one."""
    for membership in memberships:
        if membership.tenant.public_id == tenant_public_id:
            return membership
    return memberships[0]


def switch_tenant(*, user: User, tenant_public_id: str) -> Membership:
    """The membership `user` switches to; a tenant they do not belong to is unknown."""
    membership = (
        Membership.objects.filter(user=user, tenant__public_id=tenant_public_id)
        .select_related("tenant")
        .first()
    )
    if membership is None:
        raise AccountError("No such workspace", field="tenant")
    return membership


def _require(actor: Membership, minimum: str, what: str) -> None:
    if not role_at_least(actor.role, minimum):
        raise NotAllowed(f"Your role ({actor.role}) cannot {what}")


def _check_role(role: str) -> str:
    if role not in ROLE_RANK:
        raise AccountError("Choose owner, admin, member or viewer", field="role")
    return role


@transaction.atomic
def update_tenant(*, actor: Membership, tenant: Tenant, name: str, timezone_name: str) -> Tenant:
    """Rename the workspace and set its time zone (admins and owners)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    _require(actor, Role.ADMIN, "change workspace settings")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AccountError("Workspace name must be 1-100 characters", field="name")
    try:
        ZoneInfo(timezone_name or "")
    except (ZoneInfoNotFoundError, ValueError):
        raise AccountError("Choose a time zone from the list", field="timezone") from None
    Tenant.objects.filter(pk=tenant.pk).update(name=name, timezone=timezone_name)
    hotcache.invalidate_tenant(tenant.pk)
    tenant.name, tenant.timezone = name, timezone_name
    return tenant


@transaction.atomic
def create_workspace(*, user: User, name: str) -> Tenant:
    """A new tenant on the Free plan owned by `user` (a user may belong to several)."""
    return create_tenant(name=name, plan_code="free", owner=user)


def _owners(tenant_id: int) -> int:
    return Membership.objects.filter(tenant_id=tenant_id, role=Role.OWNER).count()


@transaction.atomic
def change_role(*, actor: Membership, membership: Membership, role: str) -> Membership:
    """Give `membership` a new role. Admins manage admins, members and viewers; only owners
    make or unmake owners; the last owner stays an owner."""
    role = _check_role(role)
    _require(actor, Role.ADMIN, "change roles")
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if Role.OWNER in (role, membership.role) and actor.role != Role.OWNER:
        raise NotAllowed("Only an owner can make or change an owner")
    # Lock the tenant's memberships so two demotions cannot both pass the last-owner check.
    list(Membership.objects.select_for_update().filter(tenant_id=membership.tenant_id))
    if membership.role == Role.OWNER and role != Role.OWNER and _owners(membership.tenant_id) == 1:
        raise AccountError("A workspace needs at least one owner", field="role")
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
        _tell_sockets(membership.pk)
    return membership


@transaction.atomic
def remove_member(*, actor: Membership, membership: Membership) -> None:
    """Take `membership` out of its tenant. Anyone may leave; removing others needs admin
    (owner for an owner); the last owner cannot go."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.pk != actor.pk:
        _require(actor, Role.ADMIN, "remove members")
        if membership.role == Role.OWNER and actor.role != Role.OWNER:
            raise NotAllowed("Only an owner can remove an owner")
    list(Membership.objects.select_for_update().filter(tenant_id=membership.tenant_id))
    if membership.role == Role.OWNER and _owners(membership.tenant_id) == 1:
        raise AccountError("A workspace needs at least one owner; make someone else owner first")
    pk = membership.pk
    membership.delete()
    _tell_sockets(pk)


def _tell_sockets(membership_pk: int) -> None:
    """After commit, the membership's open dashboard sockets re-check it (and close if it is
    gone or no longer allowed to listen), in whichever process holds them."""
    from conferences import events

    events.notify_on_commit(events.membership_group(membership_pk), {"type": "membership.changed"})


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # only ever in the email's link
    url: str


def normalize_email(raw: str) -> str:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    email = (raw or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError("Enter a valid email address", field="email") from None
    return email


@transaction.atomic
def invite_member(
    *, actor: Membership, tenant: Tenant, email: str, role: str, base_url: str
) -> IssuedInvitation:
    """Invite `email` to `tenant` with `role` and mail the link (after commit). A newer
    invitation for the same address replaces the pending one."""
    _require(actor, Role.ADMIN, "invite people")
    email = normalize_email(email)
    role = _check_role(role)
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise NotAllowed("Only an owner can invite an owner")
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise AccountError(f"{email} is already a member", field="email")
    now = timezone.now()
    Invitation.objects.pending(now).filter(tenant=tenant, email=email).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=hash_key(token),
        invited_by=actor.user,
        expires_at=now + INVITATION_TTL,
    )
    url = f"{base_url.rstrip('/')}/dashboard/invitations/{token}/"
    inviter = actor.user.get_full_name() or actor.user.email
    transaction.on_commit(lambda: _send_invitation(invitation, url, inviter))
    return IssuedInvitation(invitation=invitation, token=token, url=url)


def _send_invitation(invitation: Invitation, url: str, inviter: str) -> None:
    from django.core.mail import send_mail
    from django.template.loader import render_to_string

    from branding.dashboard_selectors import email_brand, email_sender
    from parley.mail import header_text

    brand = email_brand(invitation.tenant)
    context = {"invitation": invitation, "url": url, "inviter": inviter, "brand": brand}
    subject = header_text(render_to_string("dashboard/email/invitation_subject.txt", context))
    body = render_to_string("dashboard/email/invitation.txt", context)
    send_mail(subject, body, email_sender(brand), [invitation.email])


def find_invitation(token: str) -> Invitation | None:
    """The pending invitation a link's token names, with its tenant; None otherwise."""
    if not token or len(token) > 100:
        return None
    return (
        Invitation.objects.pending(timezone.now())
        .select_related("tenant", "invited_by")
        .filter(token_hash=hash_key(token))
        .first()
    )


def _user_emails(user: User) -> set[str]:
    from allauth.account.models import EmailAddress

    emails = {
        e.lower()
        for e in EmailAddress.objects.filter(user=user, verified=True).values_list(
            "email", flat=True
        )
    }
    return emails


@transaction.atomic
def accept_invitation(*, token: str, user: User) -> Membership:
    """Join the invitation's tenant with its role. The signed-in user must own the invited
    address (verified); an existing member keeps their role."""
    invitation = find_invitation(token)
    if invitation is None:
        raise AccountError("This invitation is no longer valid", field="token")
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.email.lower() not in _user_emails(user):
        raise NotAllowed(
            f"This invitation is for {invitation.email}; sign in with that (verified) address"
        )
    membership, _ = Membership.objects.get_or_create(
        user=user, tenant_id=invitation.tenant_id, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


@transaction.atomic
def revoke_invitation(*, actor: Membership, invitation: Invitation) -> Invitation:
    _require(actor, Role.ADMIN, "revoke invitations")
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


# --- Dashboard: API keys ----------------------------------------------------------------------


@transaction.atomic
def issue_api_key(*, actor: Membership, name: str) -> IssuedKey:
    _require(actor, Role.ADMIN, "create API keys")
    return create_api_key(tenant=actor.tenant, name=name)


@transaction.atomic
def rename_api_key(*, actor: Membership, api_key: ApiKey, name: str) -> ApiKey:
    _require(actor, Role.ADMIN, "rename API keys")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AccountError("Key name must be 1-100 characters", field="name")
    api_key.name = name
    api_key.save(update_fields=["name"])
    return api_key


@transaction.atomic
def revoke_key(*, actor: Membership, api_key: ApiKey) -> ApiKey:
    _require(actor, Role.ADMIN, "revoke API keys")
    return revoke_api_key(api_key=api_key)


# --- Metered usage ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageSample:
    tenant_id: int
    participants: int  # people in the tenant's live rooms at the sample
    live_rooms: int


@transaction.atomic
def record_usage(*, day, samples: list[UsageSample], minutes: int = 1) -> int:  # type: ignore[no-untyped-def]
    """Add `minutes` of each sample to its tenant's day: participant-minutes, room-minutes,
    and the day's peak. Rows are created on first use. Returns how many tenants changed."""
    from django.db.models.functions import Greatest

    changed = 0
    for sample in samples:
        if sample.participants <= 0 and sample.live_rooms <= 0:
            continue
        UsageDay.objects.get_or_create(tenant_id=sample.tenant_id, day=day)
        UsageDay.objects.filter(tenant_id=sample.tenant_id, day=day).update(
            participant_minutes=F("participant_minutes") + sample.participants * minutes,
            room_minutes=F("room_minutes") + sample.live_rooms * minutes,
            peak_participants=Greatest("peak_participants", sample.participants),
        )
        changed += 1
    return changed
