"""Joining a room from a browser: access checks, the server-side lobby, one-time codes, and
host actions.

Nothing here trusts the browser. Pages hand in what the visitor has proven (`Visitor`, built
from the session by the views) and every decision is made against the room as stored now.
No LiveKit token exists for a guest until the room's policy lets it in: at once for an open
room, on a host's admission for a room with a waiting room (the policy is checked again
then, against the evidence the guest joined with).

Hosts are the holders of the room's host link (its secret, or a session that presented it)
and the tenant's members (owner/admin/member). They never get LiveKit admin grants: every
host action is a call into this module, which checks the room's `host_controls` and then
calls the LiveKit gateway.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import signing_keys
from accounts.models import Membership, Tenant, User
from conferences import events, livekit
from conferences.models import (
    AccessAttempt,
    JoinCode,
    Occurrence,
    Participant,
    Room,
    WaitingEntry,
)
from conferences.roles import HOST_ROLES, Role

from . import rooms as room_services
from . import stage
from .errors import Forbidden, InvalidInput, InvalidState, NotFound, ServiceError, Unavailable

logger = logging.getLogger(__name__)

ATTEMPT_WINDOW = timedelta(minutes=15)
MAX_WRONG_PASSWORDS = 10  # per room and client per ATTEMPT_WINDOW
MAX_WRONG_CODES = 10
MAX_CODE_REQUESTS = 5
CODE_TTL = timedelta(minutes=10)
CODE_MAX_TRIES = 5  # wrong tries before one code is blocked
NAME_MAX = 50
PASSWORD_MAX = 128
LOBBY_MAX = 500  # guests waiting in one room at once
LOBBY_PER_CLIENT = 30  # lobby entries one address may create per room per ATTEMPT_WINDOW
LOBBY_SHOWN = 200  # entries a host's queue lists
LOBBY_MAX_AGE = timedelta(hours=12)  # older waiting entries are leftovers of a crash
# A waiting guest's page opens its socket at once; an entry whose socket never connected
# within this grace (the page was closed first, or a script asked) leaves the queue.
SOCKET_GRACE = timedelta(seconds=30)
ADMISSION_TTL = timedelta(minutes=30)  # an admitted guest must connect within this
STAGE_ACTIONS_PER_MINUTE = 30  # hand and invitation answers one identity may send


# --- errors -----------------------------------------------------------------------------------


class AccessRequired(ServiceError):
    """The visitor has not (or no longer) met the room's access policy. `code` says what is
    missing: PASSWORD_REQUIRED, EMAIL_VERIFICATION_REQUIRED, NOT_ON_GUEST_LIST, LOGIN_REQUIRED."""

    status = 403
    code = "ACCESS_REQUIRED"


class WrongCredentials(ServiceError):
    status = 403
    code = "WRONG_PASSWORD"


class LockedOut(ServiceError):
    status = 429
    code = "TOO_MANY_ATTEMPTS"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RoomFull(ServiceError):
    status = 409
    code = "ROOM_FULL"


class ControlDisabled(ServiceError):
    status = 403
    code = "HOST_CONTROL_DISABLED"


class Unauthorized(ServiceError):
    status = 401
    code = "UNAUTHORIZED"


# --- who is asking ----------------------------------------------------------------------------


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


def _vouched_for(room: Room, visitor: Visitor) -> Vouched | None:
    vouched = visitor.vouched
    return vouched if vouched is not None and vouched.room_pk == room.pk else None


def _keyed(purpose: str, value: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()[:40]


def password_fingerprint(room: Room) -> str:
    return _keyed(f"password:{room.room_id}", room.password_hash) if room.password_hash else ""


def host_fingerprint(room: Room) -> str:
    return _keyed(f"host:{room.room_id}", room.host_secret)


def client_key(address: str) -> str:
    """A client's key for attempt limits: a keyed hash, so addresses are never stored."""
    return _keyed("client", address or "unknown")


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


_PUBLIC_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_MEETING_ID = re.compile(r"[a-z]{4}-[a-z]{4}-[a-z]{4}")  # the VideoSDK-compatible roomId
_ENTRY_ID = re.compile(r"we_[A-Za-z0-9]{1,32}")


def _well_formed(pattern: re.Pattern[str], value: object) -> bool:
    # Ids come from URLs: anything outside their alphabet (a NUL byte, say) is simply not
    # found, and never reaches a query (PostgreSQL refuses NUL in text).
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def room_by_public_id(room_id: str) -> Room | None:
    """The room behind a join link (its public id is the credential-free part of the URL);
    its VideoSDK-compatible roomId (`abcd-efgh-ijkl`) names it too."""
    rooms = Room.objects.select_related("tenant")
    if _well_formed(_MEETING_ID, room_id):
        return rooms.filter(meeting_id=room_id).first()
    if not _well_formed(_PUBLIC_ID, room_id):
        return None
    return rooms.filter(room_id=room_id).first()


def host_secret_matches(room: Room, secret: str) -> bool:
    return _same(room.host_secret, secret or "")


def host_role(room: Room, visitor: Visitor) -> str | None:
    """The visitor's host role in `room`: HOST for the host link, OWNER for the tenant's
    members who may change things (not viewers), and holders of a signed participant token
    with `allow_mod`; None for everyone else."""
    vouched = _vouched_for(room, visitor)
    if vouched is not None and vouched.moderator:
        return Role.HOST
    if _same(visitor.host_fingerprint, host_fingerprint(room)):
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


# --- room state -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomState:
    status: str  # "scheduled" | "open" | "ended"
    starts_at: datetime | None  # next start of a scheduled room
    full: bool | None  # None: unknown (LiveKit unreachable)
    participants: int | None


def next_start(room: Room) -> datetime | None:
    """When a scheduled room opens next: its next scheduled occurrence, else its start_time."""
    now = timezone.now()
    upcoming = (
        Occurrence.objects.filter(room=room, status=Occurrence.Status.SCHEDULED)
        .filter(Q(end_time__isnull=True) | Q(end_time__gt=now))
        .order_by("start_time")
        .values_list("start_time", flat=True)
        .first()
    )
    return upcoming or room.start_time


def room_phase(room: Room) -> str:
    """ "scheduled", "open" or "ended", from the database alone (no LiveKit call)."""
    return _phase(room)


def _phase(room: Room) -> str:
    if room.status == Room.Status.COMPLETED or room.deactivated_at is not None:
        return "ended"
    if room.status == Room.Status.SCHEDULED and room.live_since is None:
        return "scheduled"
    return "open"


def _head_count(room: Room) -> int:
    """People LiveKit has in the room now (0 when it is not live). Raises Unavailable."""
    if room.live_since is None:
        return 0
    try:
        return len(livekit.list_participants(room=room.livekit_name))
    except livekit.LiveKitUnavailable:
        raise Unavailable("The media server is unavailable; try again shortly") from None


def room_state(room: Room) -> RoomState:
    """What a join page shows before anyone asks to join. Never raises for LiveKit trouble."""
    phase = _phase(room)
    full: bool | None = False
    count: int | None = 0
    if phase == "open":
        try:
            count = _head_count(room)
            full = count >= room.max_participants
        except Unavailable:
            count, full = None, None
    return RoomState(
        status=phase,
        starts_at=next_start(room) if phase == "scheduled" else None,
        full=full,
        participants=count,
    )


def _require_open(room: Room) -> None:
    phase = _phase(room)
    if phase == "scheduled":
        raise InvalidState("This room has not started yet", code="ROOM_NOT_STARTED")
    if phase == "ended":
        raise InvalidState("This room has ended", code="ROOM_ENDED")


def _require_space(room: Room) -> None:
    count = _head_count(room)
    if count >= room.max_participants:
        raise RoomFull(
            f"This room is full: {count} of {room.max_participants} people are in it. "
            "Try again when someone leaves."
        )


# --- access -----------------------------------------------------------------------------------


def access_problem(room: Room, visitor: Visitor) -> AccessRequired | None:
    """Why `visitor` may not join `room` under its current policy, or None when it may."""
    if _vouched_for(room, visitor) is not None:
        return None  # the tenant's server signed this participant in
    kind = room.access_type
    if kind == Room.AccessType.PUBLIC:
        return None
    if kind == Room.AccessType.PASSWORD:
        if _same(visitor.password_fingerprint, password_fingerprint(room)):
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
        if visitor.user is not None and visitor.user.is_authenticated and visitor.user.is_active:
            return None
        return AccessRequired("Sign in to join this room", code="LOGIN_REQUIRED")
    return AccessRequired("This room cannot be joined", code="ACCESS_REQUIRED")


def _wait_seconds(
    room: Room, kind: str, client: str, limit: int, now: datetime, *, failures_only: bool = True
) -> int | None:
    """Seconds until `client` may try `kind` on `room` again; None when it may now.
    A sliding window: the limit-th most recent attempt must have left the window."""
    attempts = AccessAttempt.objects.filter(
        room=room, kind=kind, client_key=client, created_at__gt=now - ATTEMPT_WINDOW
    )
    if failures_only:
        attempts = attempts.filter(succeeded=False)
    recent = list(attempts.order_by("-created_at").values_list("created_at", flat=True)[:limit])
    if len(recent) < limit:
        return None
    return max(1, math.ceil((recent[-1] + ATTEMPT_WINDOW - now).total_seconds()))


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _locked(what: str, wait: int) -> LockedOut:
    return LockedOut(
        f"Too many wrong {what} from your network for this room. Try again in {_minutes(wait)}.",
        retry_after=wait,
    )


def verify_password(*, room: Room, password: str, client: str) -> str:
    """Check `password` against the room's hash; returns the proof to keep in the session.

    At most MAX_WRONG_PASSWORDS wrong tries per room and client per ATTEMPT_WINDOW; past
    that every try (even a right one) answers LockedOut until the window slides."""
    if not isinstance(password, str) or not password:
        raise InvalidInput("Enter the password", field="password")
    now = timezone.now()
    with transaction.atomic():
        # The room row serialises concurrent tries, so the limit holds under a burst.
        room = Room.objects.select_for_update().get(pk=room.pk)
        if room.access_type != Room.AccessType.PASSWORD:
            raise InvalidState("This room does not use a password", code="NO_PASSWORD")
        wait = _wait_seconds(room, AccessAttempt.Kind.PASSWORD, client, MAX_WRONG_PASSWORDS, now)
        if wait is None:
            ok = len(password) <= PASSWORD_MAX and check_password(password, room.password_hash)
            AccessAttempt.objects.create(
                room=room, kind=AccessAttempt.Kind.PASSWORD, client_key=client, succeeded=ok
            )
            if ok:
                return password_fingerprint(room)
            wait = _wait_seconds(
                room, AccessAttempt.Kind.PASSWORD, client, MAX_WRONG_PASSWORDS, now
            )
            left = (
                MAX_WRONG_PASSWORDS
                - AccessAttempt.objects.filter(
                    room=room,
                    kind=AccessAttempt.Kind.PASSWORD,
                    client_key=client,
                    succeeded=False,
                    created_at__gt=now - ATTEMPT_WINDOW,
                ).count()
            )
    # Raised after the commit, so the attempt stays recorded.
    if wait is not None:
        raise _locked("passwords", wait)
    raise WrongCredentials(
        f"That password is not right. {left} {'try' if left == 1 else 'tries'} left.",
        field="password",
    )


def normalize_email(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("Enter your email address", field="email")
    email = raw.strip().lower()
    if not email:
        raise InvalidInput("Enter your email address", field="email")
    try:
        if len(email) > 254:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError:
        raise InvalidInput("Enter a valid email address", field="email") from None
    return email


def _code_hash(room: Room, email: str, code: str) -> str:
    return _keyed(f"code:{room.room_id}:{email}", code)


def request_code(*, room: Room, email: str, client: str) -> str:
    """Mail a one-time code proving `email` for this whitelist room; returns the address.

    Any address may ask (the list is only revealed to someone who proves an address), at
    most MAX_CODE_REQUESTS times per room and client per window. A new code replaces the
    address's previous ones."""
    email = normalize_email(email)
    now = timezone.now()
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        room = Room.objects.select_for_update().get(pk=room.pk)
        if room.access_type != Room.AccessType.WHITELIST:
            raise InvalidState("This room does not use email codes", code="NO_GUEST_LIST")
        _require_open(room)
        wait = _wait_seconds(
            room,
            AccessAttempt.Kind.CODE_REQUEST,
            client,
            MAX_CODE_REQUESTS,
            now,
            failures_only=False,
        )
        if wait is None:
            AccessAttempt.objects.create(
                room=room, kind=AccessAttempt.Kind.CODE_REQUEST, client_key=client, succeeded=True
            )
            JoinCode.objects.filter(
                room=room, email=email, used_at__isnull=True, revoked_at__isnull=True
            ).update(revoked_at=now)
            JoinCode.objects.create(
                room=room,
                email=email,
                code_hash=_code_hash(room, email, code),
                expires_at=now + CODE_TTL,
            )
            name, room_id = room.name, room.room_id
            transaction.on_commit(lambda: _send_code(email, code, name, room_id))
    if wait is not None:
        raise _locked("code requests", wait)
    return email


def _send_code(email: str, code: str, room_name: str, room_id: str) -> None:
    minutes = int(CODE_TTL.total_seconds() // 60)
    try:
        send_mail(
            subject=f"Your code to join {room_name}",
            message=(
                f"Your code to join “{room_name}” is {code}\n\n"
                f"It works once, for {minutes} minutes. If you did not ask for it, "
                "ignore this email.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    except Exception:  # the code is stored; the guest can ask again
        logger.exception("Could not send the join code for room %s", room_id)


def verify_code(*, room: Room, email: str, code: str, client: str) -> str:
    """Check a one-time code; returns the proven address. A code works once, within
    CODE_TTL, and only while it is the address's latest. Proving an address that is not on
    the room's list answers NOT_ON_GUEST_LIST (the code is still used up)."""
    email = normalize_email(email)
    if not isinstance(code, str):
        raise InvalidInput("Enter the 6-digit code from the email", field="code")
    code = "".join(ch for ch in code if not ch.isspace() and ch != "-")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        raise InvalidInput("Enter the 6-digit code from the email", field="code")
    now = timezone.now()
    with transaction.atomic():
        room = Room.objects.select_for_update().get(pk=room.pk)
        if room.access_type != Room.AccessType.WHITELIST:
            raise InvalidState("This room does not use email codes", code="NO_GUEST_LIST")
        wait = _wait_seconds(room, AccessAttempt.Kind.CODE, client, MAX_WRONG_CODES, now)
        outcome = "locked"
        if wait is None:
            found = (
                JoinCode.objects.filter(
                    room=room, email=email, code_hash=_code_hash(room, email, code)
                )
                .order_by("-created_at")
                .first()
            )
            if found is None:
                outcome = "invalid"
                latest = (
                    JoinCode.objects.filter(
                        room=room, email=email, used_at__isnull=True, revoked_at__isnull=True
                    )
                    .order_by("-created_at")
                    .first()
                )
                if latest is not None:
                    latest.failed_attempts += 1
                    if latest.failed_attempts >= CODE_MAX_TRIES:
                        latest.revoked_at = now
                    latest.save(update_fields=["failed_attempts", "revoked_at"])
            elif found.used_at is not None:
                outcome = "used"
            elif found.revoked_at is not None:
                outcome = "blocked" if found.failed_attempts >= CODE_MAX_TRIES else "replaced"
            elif found.expires_at <= now:
                outcome = "expired"
            else:
                claimed = JoinCode.objects.filter(pk=found.pk, used_at__isnull=True).update(
                    used_at=now
                )
                outcome = "ok" if claimed == 1 else "used"
            AccessAttempt.objects.create(
                room=room,
                kind=AccessAttempt.Kind.CODE,
                client_key=client,
                succeeded=outcome == "ok",
            )
        on_list = email in {e.lower() for e in room.whitelist_emails}
    messages = {
        "invalid": "That code is not right. Check the latest email we sent you.",
        "used": "That code has already been used. Ask for a new one.",
        "expired": "That code has expired. Ask for a new one.",
        "replaced": "A newer code was sent to this address. Use the latest one.",
        "blocked": "That code was blocked after too many wrong tries. Ask for a new one.",
    }
    if outcome == "locked":
        raise _locked("codes", wait or 1)
    if outcome != "ok":
        code_name = {"used": "CODE_USED", "expired": "CODE_EXPIRED"}.get(outcome, "CODE_INVALID")
        raise InvalidInput(messages[outcome], code=code_name, field="code")
    if not on_list:
        raise AccessRequired(f"{email} is not on this room's guest list", code="NOT_ON_GUEST_LIST")
    return email


# --- joining and the lobby --------------------------------------------------------------------


def clean_display_name(raw: object) -> str:
    """A display name as others will see it: 1-50 characters, whitespace collapsed, no
    control, format (except the emoji joiner) or private-use characters, and no < or >."""
    if not isinstance(raw, str):
        raise InvalidInput("Enter your name", field="name")
    name = " ".join(raw.split())
    if not name:
        raise InvalidInput("Enter your name so others know who you are", field="name")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"Names can be at most {NAME_MAX} characters long", field="name")
    if "<" in name or ">" in name:
        raise InvalidInput("Names cannot contain < or >", field="name")
    for ch in name:
        category = unicodedata.category(ch)
        if category in ("Cc", "Co", "Cs", "Cn") or (category == "Cf" and ch != "\u200d"):
            raise InvalidInput("Your name contains characters that cannot be shown", field="name")
    return name


@dataclass(frozen=True)
class JoinResult:
    """Either a token (the visitor may connect now) or a lobby entry (wait for a host)."""

    token: room_services.IssuedToken | None = None
    entry: WaitingEntry | None = None


def join(*, room: Room, name: str, visitor: Visitor) -> JoinResult:
    """Let a browser into `room`: hosts at once with their host role; others after the
    access policy, into the lobby when the room has a waiting room, else at once."""
    name = clean_display_name(name)
    room = Room.objects.get(pk=room.pk)
    vouched = _vouched_for(room, visitor)
    identity = vouched.participant_id if vouched is not None else None
    if (
        vouched is not None
        and room.status == Room.Status.COMPLETED
        and room.deactivated_at is None
        and room.live_since is None
    ):
        # A VideoSDK room holds one session after another until it is deactivated: the
        # tenant's signed token opens the next one, as its API key could.
        room = room_services.start_room(room=room)
    _require_open(room)
    role = host_role(room, visitor)
    if role is None:
        problem = access_problem(room, visitor)
        if problem is not None:
            raise problem
        _require_space(room)
        if room.waiting_room_enabled and vouched is None:
            return JoinResult(entry=_enter_lobby(room=room, name=name, visitor=visitor))
        # No role asked: a guest gets the room's default (a viewer in webinar mode).
        return JoinResult(token=room_services.issue_token(room=room, name=name, identity=identity))
    _require_space(room)
    return JoinResult(
        token=room_services.issue_token(room=room, name=name, identity=identity, role=role)
    )


def signed_participant(*, room: Room, token: object, client: str = "") -> Visitor:
    """The visitor a VideoSDK-style participant token proves for `room`: signed with an
    active signing key of the room's tenant, carrying `roomId` (this room's roomId or
    room_id) and `participantId`. A missing, forged, expired or revoked token, or one without
    those claims, is Unauthorized; a token whose roles exclude `rtc` is Forbidden; a valid
    token of another tenant or for another room is NotFound, as for a room nobody sees."""
    try:
        verified = signing_keys.verify_token(token)
    except signing_keys.TokenRejected as exc:
        if exc.status == 403:
            raise Forbidden(exc.message) from None
        raise Unauthorized(exc.message) from None
    if verified.room_id is None or verified.participant_id is None:
        raise Unauthorized("A participant token must carry roomId and participantId claims")
    if verified.tenant.pk != room.tenant_id or verified.room_id not in (
        room.meeting_id,
        room.room_id,
    ):
        raise NotFound("Room not found")
    if verified.roles is not None and "rtc" not in verified.roles:
        raise Forbidden("The token's roles do not allow joining a room (add 'rtc')")
    return Visitor(
        client=client,
        vouched=Vouched(
            room_pk=room.pk,
            participant_id=verified.participant_id,
            moderator="allow_mod" in verified.permissions,
        ),
    )


def _count_lobby_request(room: Room, client: str) -> None:
    """At most LOBBY_PER_CLIENT entries per room and address per window (fixed window in
    the cache), so a script cannot fill a lobby with entries that never open a socket."""
    window = int(ATTEMPT_WINDOW.total_seconds())
    key = f"lobby:{room.pk}:{client}:{int(timezone.now().timestamp()) // window}"
    cache.add(key, 0, timeout=window + 60)
    try:
        used = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=window + 60)
        used = 1
    if used > LOBBY_PER_CLIENT:
        raise LockedOut(
            "Too many requests to join this room from your network. Try again in a few minutes.",
            retry_after=window,
        )


@transaction.atomic
def _enter_lobby(*, room: Room, name: str, visitor: Visitor) -> WaitingEntry:
    waiting = _waiting(room).count()
    if waiting >= LOBBY_MAX:
        raise RoomFull("The waiting room is full. Try again in a few minutes.")
    _count_lobby_request(room, visitor.client)
    user = visitor.user if visitor.user is not None and visitor.user.is_authenticated else None
    entry = WaitingEntry.objects.create(
        room=room,
        identity=f"{Role.PARTICIPANT}-{secrets.token_hex(6)}",
        name=name,
        role=Role.PARTICIPANT,
        user=user,
        email=visitor.email,
        password_fingerprint=visitor.password_fingerprint,
    )
    events.emit_on_commit(
        "participant.waiting",
        tenant_id=room.tenant_id,
        room_id=room.room_id,
        data={"entry_id": entry.entry_id, "identity": entry.identity, "name": entry.name},
    )
    return entry


def _waiting(room: Room):
    return WaitingEntry.objects.filter(
        room=room,
        status=WaitingEntry.Status.WAITING,
        created_at__gt=timezone.now() - LOBBY_MAX_AGE,
    )


def _seen_key(entry_id: str) -> str:
    return f"lobby:seen:{entry_id}"


def lobby_socket_connected(*, entry_id: str) -> None:
    """The entry's page has its socket open (its closing then takes the entry out)."""
    cache.set(_seen_key(entry_id), 1, timeout=int(LOBBY_MAX_AGE.total_seconds()))


def waiting_list(*, room: Room) -> list[WaitingEntry]:
    """The room's queue, first come first (one query, one cache read). Entries whose page
    never connected its socket within SOCKET_GRACE are taken out on the way."""
    entries = list(_waiting(room).order_by("created_at", "pk")[:LOBBY_SHOWN])
    cutoff = timezone.now() - SOCKET_GRACE
    old = [e for e in entries if e.created_at < cutoff]
    if old:
        seen = cache.get_many([_seen_key(e.entry_id) for e in old])
        stale = {e.pk for e in old if _seen_key(e.entry_id) not in seen}
        if stale:
            WaitingEntry.objects.filter(pk__in=stale, status=WaitingEntry.Status.WAITING).update(
                status=WaitingEntry.Status.LEFT,
                reason="The page never connected",
                decided_at=timezone.now(),
            )
            entries = [e for e in entries if e.pk not in stale]
    return entries


def lobby_entry(*, room_id: str, entry_id: str) -> WaitingEntry | None:
    if not (_well_formed(_PUBLIC_ID, room_id) and _well_formed(_ENTRY_ID, entry_id)):
        return None
    return (
        WaitingEntry.objects.select_related("room")
        .filter(entry_id=entry_id, room__room_id=room_id)
        .first()
    )


@dataclass(frozen=True)
class Decision:
    entry_id: str
    name: str
    admitted: bool
    reason: str


def _decide(entry: WaitingEntry, room: Room, *, admit: bool, reason: str, now: datetime) -> None:
    entry.status = WaitingEntry.Status.ADMITTED if admit else WaitingEntry.Status.REJECTED
    entry.reason = reason[:200]
    entry.decided_at = now
    entry.save(update_fields=["status", "reason", "decided_at"])
    events.emit_on_commit(
        "participant.admitted" if admit else "participant.rejected",
        tenant_id=room.tenant_id,
        room_id=room.room_id,
        data={"entry_id": entry.entry_id, "identity": entry.identity, "name": entry.name},
    )
    events.notify_on_commit(
        events.lobby_group(entry.entry_id), {"type": "lobby.decided", "entry_id": entry.entry_id}
    )


def _pending(room: Room, entry_id: str | None) -> list[WaitingEntry]:
    if entry_id is not None and not _well_formed(_ENTRY_ID, entry_id):
        raise NotFound("No one with that id is waiting: they may have left or been let in")
    entries = _waiting(room).select_related("user").select_for_update(of=("self",))
    if entry_id is not None:
        entries = entries.filter(entry_id=entry_id)
    found = list(entries.order_by("created_at", "pk"))
    if entry_id is not None and not found:
        raise NotFound("No one with that id is waiting: they may have left or been let in")
    return found


@transaction.atomic
def admit(*, room: Room, entry_id: str | None = None) -> list[Decision]:
    """Let one waiting guest (or all) in. Each is checked against the room's access policy
    as it is now, with the evidence it joined with: one that no longer passes is turned
    away with the reason instead. The guest's page then gets its token over its socket."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    _require_open(room)
    now = timezone.now()
    decisions = []
    for entry in _pending(room, entry_id):
        evidence = Visitor(
            user=entry.user, password_fingerprint=entry.password_fingerprint, email=entry.email
        )
        problem = access_problem(room, evidence)
        reason = f"The room's access rules changed: {problem.message}" if problem else ""
        _decide(entry, room, admit=problem is None, reason=reason, now=now)
        decisions.append(Decision(entry.entry_id, entry.name, problem is None, reason))
    return decisions


@transaction.atomic
def reject(*, room: Room, entry_id: str | None = None) -> list[Decision]:
    """Turn one waiting guest (or all) away."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    now = timezone.now()
    reason = "The host did not let you in"
    decisions = []
    for entry in _pending(room, entry_id):
        _decide(entry, room, admit=False, reason=reason, now=now)
        decisions.append(Decision(entry.entry_id, entry.name, False, reason))
    return decisions


def leave_lobby(*, room_id: str, entry_id: str) -> bool:
    """The guest closed its page or gave up: its entry leaves the queue. Idempotent."""
    with transaction.atomic():
        entry = lobby_entry(room_id=room_id, entry_id=entry_id)
        if entry is None:
            return False
        left = WaitingEntry.objects.filter(pk=entry.pk, status=WaitingEntry.Status.WAITING).update(
            status=WaitingEntry.Status.LEFT, decided_at=timezone.now()
        )
        if left:
            events.emit_on_commit(
                "participant.left_lobby",
                tenant_id=entry.room.tenant_id,
                room_id=room_id,
                data={"entry_id": entry_id, "identity": entry.identity},
            )
    return bool(left)


def token_for_entry(*, room_id: str, entry_id: str) -> room_services.IssuedToken:
    """The LiveKit token of an admitted guest (asked for by its own page's socket)."""
    entry = lobby_entry(room_id=room_id, entry_id=entry_id)
    if entry is None:
        raise NotFound("Unknown waiting-room entry")
    if entry.status != WaitingEntry.Status.ADMITTED:
        raise InvalidState("You have not been let in", code="NOT_ADMITTED")
    if entry.decided_at is None or entry.decided_at < timezone.now() - ADMISSION_TTL:
        raise InvalidState("Your admission has expired: ask to join again", code="NOT_ADMITTED")
    room = Room.objects.get(pk=entry.room_id)
    _require_open(room)
    _require_space(room)
    # No role asked: the identity's stored role, else the room's default for guests.
    return room_services.issue_token(room=room, name=entry.name, identity=entry.identity)


# --- host actions -----------------------------------------------------------------------------


def authorize_host(
    *,
    room_id: str,
    tenant: Tenant | None = None,
    host_secret: str | None = None,
    user: User | None = None,
    write: bool = True,
) -> Room:
    """The room `room_id` if the caller may act as its host: the tenant's API key, the room's
    host secret, or a signed-in member of the tenant (viewers may read, not act). Anyone
    else gets NotFound, exactly as for a room that does not exist."""
    not_found = NotFound("Room not found")
    if not _well_formed(_PUBLIC_ID, room_id):
        raise not_found
    if tenant is not None:
        room = Room.objects.for_tenant(tenant).filter(room_id=room_id).first()
        if room is None:
            raise not_found
        return room
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


def host_room_for(*, room_id: str, visitor: Visitor) -> Room | None:
    """The room if `visitor` is its host (a page's session: host link or membership)."""
    room = room_by_public_id(room_id)
    if room is None or host_role(room, visitor) is None:
        return None
    return room


def _require_control(room: Room, key: str, label: str) -> None:
    if not (room.host_controls or {}).get(key, False):
        raise ControlDisabled(f"{label} is turned off for this room")


def _targets(room: Room, source: str) -> list[tuple[str, str]]:
    """(identity, track_sid) of unmuted `source` tracks of everyone but the hosts."""
    if room.live_since is None:
        return []
    try:
        people = livekit.list_participants(room=room.livekit_name)
    except livekit.LiveKitUnavailable:
        raise Unavailable("The media server is unavailable; try again shortly") from None
    return [
        (p["identity"], t["sid"])
        for p in people
        if p["attributes"].get("role") not in HOST_ROLES
        for t in p["tracks"]
        if t["source"] == source and not t["muted"]
    ]


def _mute(room: Room, tracks: list[tuple[str, str]]) -> int:
    try:
        return livekit.mute_published_tracks(room=room.livekit_name, tracks=tracks)
    except livekit.LiveKitUnavailable:
        raise Unavailable("The media server is unavailable; try again shortly") from None


def mute_all(*, room: Room) -> int:
    """Mute every microphone but the hosts'. People may unmute themselves afterwards
    (LiveKit never unmutes remotely). Returns how many tracks were muted."""
    _require_control(room, "mute_all", "Muting everyone")
    return _mute(room, _targets(room, livekit.MICROPHONE))


def disable_video(*, room: Room) -> int:
    """Turn off every camera but the hosts'. Returns how many tracks were muted."""
    _require_control(room, "disable_video", "Turning off everyone's video")
    return _mute(room, _targets(room, livekit.CAMERA))


def remove_participant(*, room: Room, identity: str) -> None:
    """Disconnect one participant from the room."""
    _require_control(room, "kick_participants", "Removing participants")
    if not identity or len(identity) > 128 or not identity.isprintable():
        raise NotFound("No such participant in this room")
    if room.live_since is None:
        raise NotFound("No such participant in this room")
    try:
        removed = livekit.remove_participant(room=room.livekit_name, identity=identity)
    except livekit.LiveKitUnavailable:
        raise Unavailable("The media server is unavailable; try again shortly") from None
    if not removed:
        raise NotFound("No such participant in this room")
    events.emit_on_commit(
        "participant.removed",
        tenant_id=room.tenant_id,
        room_id=room.room_id,
        data={"identity": identity},
    )


@transaction.atomic
def end_room(*, room: Room) -> Room:
    """End the room for everyone (LiveKit disconnects them) and close its lobby."""
    room = room_services.stop_room(room=room)
    _close_lobby(room)
    return room


@transaction.atomic
def deactivate_room(*, room: Room) -> Room:
    """Deactivate the room for good (a live session ends for everyone) and close its lobby."""
    room = room_services.deactivate_room(room=room)
    _close_lobby(room)
    return room


def _close_lobby(room: Room) -> None:
    now = timezone.now()
    for entry in _waiting(room).select_for_update():
        entry.status = WaitingEntry.Status.LEFT
        entry.reason = "The room ended"
        entry.decided_at = now
        entry.save(update_fields=["status", "reason", "decided_at"])
        events.notify_on_commit(
            events.lobby_group(entry.entry_id),
            {"type": "lobby.decided", "entry_id": entry.entry_id},
        )


def start_room(*, room: Room) -> Room:
    """Open the room now (a host starting a scheduled room early)."""
    return room_services.start_room(room=room)


# --- the stage, from a guest's page -----------------------------------------------------------
# A guest in a room proves who it is with the LiveKit join token Parley minted for it (or the
# refreshed one LiveKit handed its client): no session, no CSRF (the token is not ambient).


def stage_member(*, room_id: str, token: object) -> tuple[Room, str]:
    """The room and the identity a guest's join token proves. A missing, forged or expired
    token is Unauthorized; a valid token for another room (or a room that does not exist)
    is NotFound, exactly as for a room nobody can see."""
    if not isinstance(token, str) or not token or len(token) > 4096 or not token.isascii():
        raise Unauthorized("Send your join token: Authorization: Bearer <token>")
    try:
        identity, livekit_room = livekit.verify_client_token(token)
    except livekit.LiveKitError:
        raise Unauthorized("Your join token is not valid or has expired: join again") from None
    room = room_by_public_id(room_id)
    if room is None or livekit_room != room.livekit_name:
        raise NotFound("Room not found")
    return room, identity


def count_stage_action(*, room: Room, identity: str) -> None:
    """At most STAGE_ACTIONS_PER_MINUTE hand changes and invitation answers per identity and
    minute (each one is a LiveKit call and an event to the room)."""
    key = f"stage:{room.pk}:{_keyed('identity', identity)}:{int(timezone.now().timestamp()) // 60}"
    cache.add(key, 0, timeout=120)
    try:
        used = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=120)
        used = 1
    if used > STAGE_ACTIONS_PER_MINUTE:
        raise LockedOut("Too many changes at once: wait a minute and try again", retry_after=60)


def stage_socket_member(*, room_id: str, token: object) -> tuple[Room, str] | None:
    """(room, identity) for a guest page's stage socket: a valid token for this room whose
    identity is in the room now; None otherwise."""
    try:
        room, identity = stage_member(room_id=room_id, token=token)
    except ServiceError:
        return None
    if stage.present_participant(room=room, identity=identity) is None:
        return None
    return room, identity


def own_stage_state(*, room_id: str, identity: str) -> Participant | None:
    """The identity's stage state while it is in the room (re-read for every socket message);
    None once it left or was removed, or the room ended."""
    room = room_by_public_id(room_id)
    if room is None or _phase(room) == "ended":
        return None
    return stage.present_participant(room=room, identity=identity)


def remove_from_stage(*, room: Room, identity: str) -> Participant:
    """A host removes a participant from a stage room: the room's kick switch applies, as to
    any removal; the stage forgets their hand and invitation."""
    _require_control(room, "kick_participants", "Removing participants")
    return stage.remove(room=room, identity=identity)
