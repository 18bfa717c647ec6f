"""Users, tenants, plans, memberships and API keys."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


def new_public_id() -> str:
    return secrets.token_urlsafe(9)  # 12 URL-safe characters, 72 bits


class User(AbstractUser):
    email = models.EmailField("email address", unique=True)


class Plan(models.Model):
    """Limits a tenant pays for. `None` means unlimited."""

    code = models.SlugField(unique=True)
    name = models.CharField(max_length=50)
    requests_per_hour = models.PositiveIntegerField(null=True, blank=True)
    max_concurrent_rooms = models.PositiveIntegerField(null=True, blank=True)
    max_participants_per_room = models.PositiveIntegerField()
    # Minutes of recording and HLS egress a tenant may use per calendar month (UTC).
    recording_minutes_per_month = models.PositiveIntegerField(null=True, blank=True, default=0)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order"]

    def __str__(self) -> str:
        return self.name


class Tenant(models.Model):
    public_id = models.CharField(max_length=16, unique=True, default=new_public_id, editable=False)
    name = models.CharField(max_length=100)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    timezone = models.CharField(max_length=64, default="UTC")
    # Per-tenant room counter: the public integer `id` of the v1 API is the n-th room of the
    # tenant, so no global database key ever leaves the database.
    room_seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"
        VIEWER = "viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A tenant's API key: shown once, stored as a lookup prefix plus a SHA-256 hash."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# --- VideoSDK-style signing keys -----------------------------------------------------------


def new_signing_key_id() -> str:
    return str(uuid.uuid4())


class SigningKeyQuerySet(models.QuerySet["SigningKey"]):
    def active(self) -> SigningKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class SigningKey(models.Model):
    """A VideoSDK-style key pair: the tenant's server signs HS256 JWTs with the secret and
    names the key by `key_id` (the JWT's `apikey` claim). Verifying needs the secret itself,
    so it is stored encrypted (accounts.crypto, purpose "videosdk"), never in plain text; it
    is shown once, when created."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="signing_keys")
    name = models.CharField(max_length=100)
    key_id = models.CharField(max_length=36, unique=True, default=new_signing_key_id)
    secret_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = SigningKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"


# --- Dashboard: invitations and metered usage -------------------------------------------------


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def pending(self, now) -> InvitationQuerySet:  # type: ignore[no-untyped-def]
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)


class Invitation(models.Model):
    """An email invited to join a tenant with a role. The link's token is stored as a SHA-256
    hash; the token itself is only in the email."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    public_id = models.CharField(max_length=16, unique=True, default=new_public_id, editable=False)
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "email"])]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant} ({self.role})"


class UsageDay(models.Model):
    """Metered usage of one tenant on one UTC day: participant-minutes (sampled once a minute
    from LiveKit), room-minutes and the day's peak of simultaneous participants."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    participant_minutes = models.PositiveIntegerField(default=0)
    room_minutes = models.PositiveIntegerField(default=0)
    peak_participants = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day"], name="unique_usage_day"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} on {self.day}"
