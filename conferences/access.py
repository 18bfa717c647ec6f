"""Room access: the one place that turns a credential into a room.

One function per kind of credential, each answering NotFound ("Room not found") alike for a
room that does not exist and for one the credential does not open, so nobody can tell the two
apart:

* `room_for_tenant`: the tenant itself (X-API-Key, a dashboard member's current tenant);
  `room_for_token`, the same from a short-lived cache, for the join-token path;
* `room_for_host`: a host (the tenant's API key, the room's host secret, a signed-in member;
  viewers may read, not act), and `room_for_host_visitor` for a page's session;
* `room_for_join_link`: anyone holding the room's public join link;
* `room_for_guest_token`: a guest proving itself with the LiveKit join token Parley minted;
* `open_room_named`: the Interactive Show facade's rooms, addressed by name within a tenant.

It also holds what a visitor has proven (`Visitor`) and the room's access policy
(`access_problem`). Reads only: nothing here writes.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db.models import QuerySet

from accounts.models import Membership, Tenant, User
from conferences import livekit
from conferences.models import Room
from conferences.roles import Role
from conferences.services.errors import AccessRequired, Forbidden, NotFound, Unauthorized
from parley import hotcache

T = TypeVar("T")

ROOM_NOT_FOUND = "Room not found"

_PUBLIC_ID = re.compile(r"[A-Za-z0-9]{1,32}")
MEETING_ID = re.compile(r"[a-z]{4}-[a-z]{4}-[a-z]{4}")  # the VideoSDK-compatible roomId
ENTRY_ID = re.compile(r"we_[A-Za-z0-9]{1,32}")


def well_formed(pattern: re.Pattern[str], value: object) -> bool:
    # Ids come from URLs: anything outside their alphabet (a NUL byte, say) is simply not
    # found, and never reaches a query (PostgreSQL refuses NUL in text).
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def well_formed_room_id(value: object) -> bool:
    return well_formed(_PUBLIC_ID, value)


# --- proofs -------------------------------------------------------------------------------------


def keyed(purpose: str, value: str) -> str:
    """A keyed hash (HMAC of SECRET_KEY) of `value` for `purpose`."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()[:40]


@functools.lru_cache(maxsize=4096)
def _client_key(secret: str, address: str) -> str:
    return keyed("client", address)


def same(a: str, b: str) -> bool:
    """Both set and equal, compared in constant time."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def password_fingerprint(room: Room) -> str:
    return keyed(f"password:{room.room_id}", room.password_hash) if room.password_hash else ""


def host_fingerprint(room: Room) -> str:
    return keyed(f"host:{room.room_id}", room.host_secret)


def client_key(address: str) -> str:
    """A client's key for attempt limits: a keyed hash, so addresses are never stored."""
    return _client_key(settings.SECRET_KEY, address or "unknown")


@dataclass(frozen=True)
class Vouched:
    """A participant token the tenant's own server signed (VideoSDK-style `roomId` +
    `participantId`): the tenant vouches for this identity in this room, in place of the
    room's access checks and waiting room; `allow_mod` makes it a host."""

    room_pk: int
    participant_id: str
    moderator: bool


@dataclass(frozen=True)
class Visitor:
    """What a browser has proven, as its session and sign-in record it (views build it).

    Fingerprints are keyed hashes of the room's current password hash / host secret, so
    changing the password or the host secret invalidates every proof made with the old one."""

    user: User | None = None
    password_fingerprint: str = ""
    email: str = ""
    host_fingerprint: str = ""
    client: str = ""  # client_key() of its address, for per-client limits
    vouched: Vouched | None = None  # a signed participant token (no session involved)
    entries: tuple[str, ...] = ()  # lobby entries this browser's session created in the room
    host_since: float = 0  # unix time the host link was opened in this session


def vouched_for(room: Room, visitor: Visitor) -> Vouched | None:
    """The visitor's signed participant token if it is for `room`, else None."""
    vouched = visitor.vouched
    return vouched if vouched is not None and vouched.room_pk == room.pk else None


def host_secret_matches(room: Room, secret: str) -> bool:
    return same(room.host_secret, secret or "")


HOST_SESSION_MAX = 24 * 3600  # seconds a host link's session lasts at most


def host_proof_current(room: Room, since: float) -> bool:
    """A session made a host by the host link stays one for the room's life: until the room
    ends after the link was opened (its next run needs the link again), and never longer
    than HOST_SESSION_MAX. Rotating the link (a new secret) voids it at once."""
    now = time.time()
    if since <= 0 or since > now + 60 or now - since > HOST_SESSION_MAX:
        return False
    return room.ended_at is None or room.ended_at.timestamp() <= since


def host_role(room: Room, visitor: Visitor) -> str | None:
    """The visitor's host role in `room`: HOST for the host link, OWNER for the tenant's
    members who may change things (not viewers), and holders of a signed participant token
    with `allow_mod`; None for everyone else."""
    vouched = vouched_for(room, visitor)
    if vouched is not None and vouched.moderator:
        return Role.HOST
    if same(visitor.host_fingerprint, host_fingerprint(room)) and host_proof_current(
        room, visitor.host_since
    ):
        return Role.HOST
    if visitor.user is not None and visitor.user.is_authenticated:
        role = (
            Membership.objects.filter(user=visitor.user, tenant_id=room.tenant_id)
            .values_list("role", flat=True)
            .first()
        )
        if role is not None and role != Membership.Role.VIEWER:
            return Role.OWNER
    return None


def access_problem(room: Room, visitor: Visitor) -> AccessRequired | None:
    """Why `visitor` may not join `room` under its current policy, or None when it may."""
    if vouched_for(room, visitor) is not None:
        return None  # the tenant's server signed this participant in
    kind = room.access_type
    if kind == Room.AccessType.PUBLIC:
        return None
    if kind == Room.AccessType.PASSWORD:
        if same(visitor.password_fingerprint, password_fingerprint(room)):
            return None
        return AccessRequired("Enter the room's password to join", code="PASSWORD_REQUIRED")
    if kind == Room.AccessType.WHITELIST:
        if not visitor.email:
            return AccessRequired(
                "This room is for invited guests: confirm your email address to join",
                code="EMAIL_VERIFICATION_REQUIRED",
            )
        if visitor.email.lower() not in {e.lower() for e in room.whitelist_emails}:
            return AccessRequired(
                f"{visitor.email} is not on this room's guest list", code="NOT_ON_GUEST_LIST"
            )
        return None
    if kind == Room.AccessType.AUTHENTICATED:
        user = visitor.user
        if user is None or not user.is_authenticated or not user.is_active:
            return AccessRequired("Sign in to join this room", code="LOGIN_REQUIRED")
        if member_or_allowed_domain(room, user):
            return None
        return AccessRequired(
            "This room is for members of its workspace: your account cannot join it",
            code="NOT_A_MEMBER",
        )
    return AccessRequired("This room cannot be joined", code="ACCESS_REQUIRED")


def member_or_allowed_domain(room: Room, user: User) -> bool:
    """An "authenticated" room admits signed-in members of its own tenant, and accounts with
    a verified address in one of the room's `allowed_email_domains`; no other account."""
    if Membership.objects.filter(user=user, tenant_id=room.tenant_id).exists():
        return True
    domains = set(room.allowed_email_domains or [])
    if not domains:
        return False
    verified = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    return any(email.rpartition("@")[2].lower() in domains for email in verified)


# --- rooms by credential --------------------------------------------------------------------


def room_by_public_id(room_id: str) -> Room | None:
    """The room behind a join link (its public id is the credential-free part of the URL);
    its VideoSDK-compatible roomId (`abcd-efgh-ijkl`) names it too. Rooms behind direct calls
    are joined only with the handshake's tokens, never by link."""
    rooms = link_rooms(room_id)
    return None if rooms is None else rooms.select_related("tenant").first()


def link_rooms(room_id: str) -> QuerySet[Room] | None:
    """The rooms (at most one) a join link's `room_id` names, as a query to build on; None
    when it cannot name one."""
    rooms = Room.objects.listed()
    if well_formed(MEETING_ID, room_id):
        return rooms.filter(meeting_id=room_id)
    if not well_formed_room_id(room_id):
        return None
    return rooms.filter(room_id=room_id)


def room_for_join_link(*, room_id: str) -> Room:
    room = room_by_public_id(room_id)
    if room is None:
        raise NotFound(ROOM_NOT_FOUND)
    return room


def room_for_join_page(*, room_id: str) -> Room:
    """`room_for_join_link` from the process's hot cache (parley.hotcache: at most
    HOT_CACHE_SECONDS old, dropped everywhere when a service changes one of the tenant's
    rooms), for the join page and its join and state calls, which a webinar's viewers all
    make within seconds. READ-ONLY: pass it to services that only decide on it (lobby.join,
    as the token path passes `room_for_token`'s to issue_token); services that write re-read
    and lock the row. The tenant is known only once the room is read, so its generation is
    read after the row: a change committed in between is seen within HOT_CACHE_SECONDS (as
    one made outside the services)."""
    room = _cached_room(f"link:{room_id}", lambda: room_by_public_id(room_id))
    if room is None:
        raise NotFound(ROOM_NOT_FOUND)
    return room


def derived(room: Room, name: str, compute: Callable[[], T]) -> T:
    """`compute()`, kept on this `room` instance under `name`: what a join page derives from
    its room (the brand, the session's bans) is computed once per hot-cached instance
    (`room_for_join_page`) instead of once per viewer. The instance is replaced as soon as
    the tenant's hot-cache generation moves (a room, brand or ban change through the
    services), so a derived value never outlives what it was derived from; on a room read
    for one request it lives as long as that request."""
    memo: dict[str, Any] = room.__dict__.setdefault("_parley_derived", {})
    if name not in memo:
        memo[name] = compute()
    return memo[name]


def room_for_tenant(*, tenant: Tenant, room_id: str) -> Room:
    """The tenant's room; another tenant's room and a missing one look the same."""
    room = None
    if well_formed_room_id(room_id):
        room = Room.objects.for_tenant(tenant).filter(room_id=room_id).first()
    if room is None:
        raise NotFound(ROOM_NOT_FOUND)
    return room


def room_for_token(*, tenant: Tenant, room_id: str) -> Room:
    """`room_for_tenant` for the join-token path, served from the process's hot cache
    (parley.hotcache: at most HOT_CACHE_SECONDS old, dropped everywhere when a service
    changes one of the tenant's rooms). READ-ONLY: pass it to `issue_token`, never to a
    service that writes the room."""
    if not well_formed_room_id(room_id):
        raise NotFound(ROOM_NOT_FOUND)
    room = _cached_room(
        f"room:{tenant.pk}:{room_id}",
        lambda: Room.objects.for_tenant(tenant).filter(room_id=room_id).first(),
        tenant=tenant,
    )
    if room is None:
        raise NotFound(ROOM_NOT_FOUND)
    return room


def _cached_room(
    key: str, load: Callable[[], Room | None], *, tenant: Tenant | None = None
) -> Room | None:
    """`load()`'s room from the hot cache, or loaded and cached (a miss is not cached). The
    tenant's generation is read before the row when the tenant is known, else (a join link:
    the room names its tenant) right after it."""
    room: Room | None = hotcache.get("room", key)
    if room is None:
        generation = hotcache.generation(tenant.pk) if tenant is not None else None
        room = load()
        if room is not None:
            if tenant is not None:
                room.tenant = tenant
            if generation is None:
                generation = hotcache.generation(room.tenant_id)
            hotcache.put("room", key, room, tenant_id=room.tenant_id, generation=generation)
    return room


def room_for_host(
    *,
    room_id: str,
    tenant: Tenant | None = None,
    host_secret: str | None = None,
    user: User | None = None,
    write: bool = True,
) -> Room:
    """The room `room_id` if the caller may act as its host: the tenant (its API key), the
    room's host secret, or a signed-in member of the tenant (viewers may read, not act:
    Forbidden). Anyone else gets NotFound, exactly as for a room that does not exist."""
    if tenant is not None:
        return room_for_tenant(tenant=tenant, room_id=room_id)
    not_found = NotFound(ROOM_NOT_FOUND)
    if not well_formed_room_id(room_id):
        raise not_found
    if host_secret is not None:
        room = room_by_public_id(room_id)
        if room is None or not host_secret_matches(room, host_secret):
            raise not_found
        return room
    if user is not None and user.is_authenticated:
        membership = (
            Membership.objects.filter(user=user, tenant__rooms__room_id=room_id)
            .values_list("role", "tenant_id")
            .first()
        )
        if membership is None:
            raise not_found
        role, tenant_id = membership
        if write and role == Membership.Role.VIEWER:
            raise Forbidden("Viewers can see rooms but not change them")
        return Room.objects.get(tenant_id=tenant_id, room_id=room_id)
    raise not_found


def room_for_host_visitor(*, room_id: str, visitor: Visitor) -> Room | None:
    """The room if `visitor` (a page's session: host link or membership) is its host."""
    room = room_by_public_id(room_id)
    if room is None or host_role(room, visitor) is None:
        return None
    return room


def room_for_guest_token(*, room_id: str, token: object) -> tuple[Room, str]:
    """The room and the identity a guest's join token proves. A missing, forged or expired
    token is Unauthorized; a valid token for another room (or a room that does not exist)
    is NotFound, exactly as for a room nobody can see."""
    identity, livekit_room = guest_token_claims(token)
    return guest_token_room(room_id=room_id, livekit_room=livekit_room), identity


def guest_token_claims(token: object) -> tuple[str, str]:
    """(identity, LiveKit room name) of a guest's join token Parley minted; no database.
    A missing, forged or expired token is Unauthorized. The room is not checked yet: pair it
    with `guest_token_room` (as `room_for_guest_token` does) before trusting the identity."""
    if not isinstance(token, str) or not token or len(token) > 4096 or not token.isascii():
        raise Unauthorized("Send your join token: Authorization: Bearer <token>")
    try:
        return livekit.verify_client_token(token)
    except livekit.LiveKitError:
        raise Unauthorized("Your join token is not valid or has expired: join again") from None


def guest_token_room(*, room_id: str, livekit_room: str) -> Room:
    """The room behind the join link `room_id` if a token for `livekit_room` is for it;
    NotFound otherwise (another room's token, or no such room). One query."""
    room = room_by_public_id(room_id)
    if room is None or livekit_room != room.livekit_name:
        raise NotFound(ROOM_NOT_FOUND)
    return room


def open_room_named(*, tenant: Tenant, name: str, cached: bool = False) -> Room | None:
    """The tenant's newest room of that name that has not ended (Interactive Show's rooms).
    `cached`: from the hot cache, as `room_for_token` (read-only, for the token path)."""

    def load() -> Room | None:
        return (
            Room.objects.for_tenant(tenant)
            .listed()
            .filter(name=name)
            .exclude(status=Room.Status.COMPLETED)
            .order_by("-pk")
            .first()
        )

    return _cached_room(f"show:{tenant.pk}:{name}", load, tenant=tenant) if cached else load()
