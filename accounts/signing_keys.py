"""VideoSDK-style signing keys: create, revoke, and verify the JWTs signed with them.

A tenant's server signs short-lived HS256 JWTs with the key's secret and names the key in the
`apikey` claim, as VideoSDK's servers expect. Verifying needs the secret itself, so it is
stored encrypted at rest (accounts.crypto, purpose "videosdk") and shown once, at creation.
This module is the only writer of SigningKey rows and the one place tokens are checked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from django.db import transaction
from django.utils import timezone

from parley.errors import ServiceError

from . import crypto
from .models import Membership, SigningKey, Tenant
from .services import LAST_USED_RESOLUTION, AccountError, _require

CRYPTO_PURPOSE = "videosdk"
MAX_LIFETIME = timedelta(hours=24)  # exp may be at most this long after iat
LEEWAY = timedelta(seconds=30)  # clock skew tolerated on exp / iat
MAX_TOKEN_LENGTH = 8192
JOIN_PERMISSIONS = frozenset({"allow_join", "allow_mod"})
KNOWN_PERMISSIONS = JOIN_PERMISSIONS | {"ask_join"}
KNOWN_ROLES = frozenset({"crawler", "rtc"})


@dataclass(frozen=True)
class IssuedSigningKey:
    key: SigningKey
    secret: str  # shown once, never again


class TokenRejected(ServiceError):
    """A token that does not authenticate (401) or does not allow what it is used for (403).
    A service error like every other (parley.errors), so any interface can translate it."""

    status = 401
    code = "UNAUTHORIZED"

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message, code="UNAUTHORIZED" if status == 401 else "FORBIDDEN")
        self.status = status


@dataclass(frozen=True)
class VerifiedToken:
    key: SigningKey
    tenant: Tenant
    permissions: frozenset[str]
    roles: frozenset[str] | None  # None: the token names no roles (API and joining)
    room_id: str | None  # participant tokens: the room and identity they are for
    participant_id: str | None

    @property
    def is_participant_token(self) -> bool:
        return self.room_id is not None or self.participant_id is not None


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AccountError("Key name must be 1-100 characters", field="name")
    return name


@transaction.atomic
def create_signing_key(*, tenant: Tenant, name: str) -> IssuedSigningKey:
    """A new key pair for `tenant`; the returned secret is stored only encrypted."""
    secret = secrets.token_hex(32)  # 256 bits, as VideoSDK's hex secrets
    key = SigningKey.objects.create(
        tenant=tenant,
        name=_clean_name(name),
        secret_encrypted=crypto.encrypt(secret, purpose=CRYPTO_PURPOSE),
    )
    return IssuedSigningKey(key=key, secret=secret)


@transaction.atomic
def issue_signing_key(*, actor: Membership, name: str) -> IssuedSigningKey:
    _require(actor, Membership.Role.ADMIN, "create signing keys")
    return create_signing_key(tenant=actor.tenant, name=name)


@transaction.atomic
def revoke_signing_key(*, actor: Membership, key: SigningKey) -> SigningKey:
    """Tokens signed with the key fail at once (they are checked against the row each time)."""
    _require(actor, Membership.Role.ADMIN, "revoke signing keys")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def _string_list(claims: dict[str, Any], name: str, known: frozenset[str]) -> frozenset[str]:
    value = claims.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TokenRejected(f"The token's '{name}' claim must be a list of strings")
    unknown = sorted(set(value) - known)
    if unknown:
        raise TokenRejected(f"The token's '{name}' claim has an unknown value '{unknown[0][:40]}'")
    return frozenset(value)


def _optional_id(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isprintable():
        raise TokenRejected(f"The token's '{name}' claim must be a string of 1-64 characters")
    return value


def verify_token(token: object) -> VerifiedToken:
    """Check a VideoSDK-style JWT: HS256, signed with an active key of some tenant (named by
    `apikey`), `exp` present, not expired and at most 24 h after `iat`, `permissions`
    holding allow_join or allow_mod, `version` 2 when given. Raises TokenRejected."""
    if (
        not isinstance(token, str)
        or not token
        or len(token) > MAX_TOKEN_LENGTH
        or not token.isascii()
        or token.count(".") != 2
    ):
        raise TokenRejected("Send a JWT signed with your signing key in the Authorization header")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        raise TokenRejected("The token is not a well-formed JWT") from None
    if header.get("alg") != "HS256":
        raise TokenRejected("The token must be signed with HS256")
    key_id = unverified.get("apikey")
    if not isinstance(key_id, str) or not key_id or len(key_id) > 64:
        raise TokenRejected("The token has no 'apikey' claim")
    key = SigningKey.objects.active().select_related("tenant__plan").filter(key_id=key_id).first()
    if key is None:
        raise TokenRejected("Unknown or revoked apikey")
    try:
        secret = crypto.decrypt(key.secret_encrypted, purpose=CRYPTO_PURPOSE)
    except crypto.DecryptionError:
        raise TokenRejected("Unknown or revoked apikey") from None
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp"], "verify_aud": False},
            leeway=LEEWAY,
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("The token has expired") from None
    except jwt.MissingRequiredClaimError:
        raise TokenRejected("The token has no 'exp' claim: it must expire") from None
    except jwt.InvalidSignatureError:
        raise TokenRejected("The token's signature does not match the apikey's secret") from None
    except jwt.PyJWTError:
        raise TokenRejected("The token is not valid") from None
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise TokenRejected("The token's 'exp' claim must be a number")
    issued = iat if isinstance(iat, int | float) and not isinstance(iat, bool) else None
    start = issued if issued is not None else timezone.now().timestamp()
    if exp - start > (MAX_LIFETIME + (LEEWAY if issued is None else timedelta())).total_seconds():
        raise TokenRejected("The token must expire at most 24 hours after it was issued")
    version = claims.get("version")
    if version is not None and version not in (2, "2"):
        raise TokenRejected("The token's 'version' claim must be 2")
    if "permissions" not in claims:
        raise TokenRejected("The token has no 'permissions' claim")
    permissions = _string_list(claims, "permissions", KNOWN_PERMISSIONS)
    if not permissions & JOIN_PERMISSIONS:
        raise TokenRejected(
            "The token's permissions must include allow_join or allow_mod", status=403
        )
    roles = _string_list(claims, "roles", KNOWN_ROLES) if "roles" in claims else None
    verified = VerifiedToken(
        key=key,
        tenant=key.tenant,
        permissions=permissions,
        roles=roles,
        room_id=_optional_id(claims, "roomId"),
        participant_id=_optional_id(claims, "participantId"),
    )
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        SigningKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return verified
