"""Proving access to a room from a browser: its password, or a one-time code mailed to an
address on its guest list. Each try is recorded (AccessAttempt) and limited per room and
client over a sliding ATTEMPT_WINDOW; the views keep the returned proof in the session.
A participant token the tenant's server signed (VideoSDK-style) proves a visitor without a
session: `signed_participant`."""

from __future__ import annotations

import logging
import math
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from accounts import signing_keys
from conferences import access, selectors
from conferences.models import AccessAttempt, JoinCode, Room
from parley import ratelimit
from parley.mail import header_text

from .errors import (
    AccessRequired,
    Forbidden,
    InvalidInput,
    InvalidState,
    LockedOut,
    NotFound,
    Unauthorized,
    Unavailable,
    WrongCredentials,
)

logger = logging.getLogger(__name__)

ATTEMPT_WINDOW = timedelta(minutes=15)
MAX_WRONG_PASSWORDS = 10  # per room and client per ATTEMPT_WINDOW
MAX_WRONG_CODES = 10
MAX_CODE_REQUESTS = 5  # per room and client per ATTEMPT_WINDOW
CODES_PER_ADDRESS_HOUR = 5  # codes asked for one email address, all rooms together
CODES_PER_ROOM_HOUR = 60
CODE_TTL = timedelta(minutes=10)
CODE_MAX_TRIES = 5  # wrong tries before one code is blocked
PASSWORD_MAX = 128
# Room-wide slow-down of wrong passwords, across every client: after ROOM_FREE_FAILURES in
# ATTEMPT_WINDOW each wrong one delays the next try 1, 2, 4 ... up to ROOM_MAX_DELAY seconds.
ROOM_FREE_FAILURES = 20
ROOM_MAX_DELAY = 30


def room_backoff(room: Room) -> ratelimit.Backoff:
    return ratelimit.Backoff(
        scope="pw-room",
        subject=str(room.pk),
        free=ROOM_FREE_FAILURES,
        cap=ROOM_MAX_DELAY,
        seconds=int(ATTEMPT_WINDOW.total_seconds()),
    )


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


def verify_password(*, room: Room, password: object, client: str) -> str:
    """Check `password` against the room's hash; returns the proof to keep in the session.

    At most MAX_WRONG_PASSWORDS wrong tries per room and client per ATTEMPT_WINDOW; past
    that every try (even a right one) answers LockedOut until the window slides. Across all
    clients, the room's slow-down (`room_backoff`) spaces tries out once many were wrong;
    its wait is short and always ends, so the right password gets in."""
    if not isinstance(password, str) or not password:
        raise InvalidInput("Enter the password", field="password")
    backoff = room_backoff(room)
    room_wait = ratelimit.backoff_wait(backoff)
    if room_wait:
        raise LockedOut(
            "This room is getting many wrong passwords: "
            f"try again in {room_wait} second{'s' if room_wait != 1 else ''}.",
            retry_after=room_wait,
            code="ROOM_SLOW_DOWN",
        )
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
                return access.password_fingerprint(room)
            ratelimit.backoff_fail(backoff)
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
    return access.keyed(f"code:{room.room_id}:{email}", code)


def _count_code_request(room: Room, email: str) -> None:
    """At most CODES_PER_ADDRESS_HOUR requests per address (all rooms) and
    CODES_PER_ROOM_HOUR per room, each hour, listed or not (so the caps reveal no list)."""
    hour = 3600
    by_address = ratelimit.window("code-address", access.keyed("email", email), seconds=hour)
    by_room = ratelimit.window("code-room", room.pk, seconds=hour)
    for w, limit, whose in (
        (by_address, CODES_PER_ADDRESS_HOUR, "this address"),
        (by_room, CODES_PER_ROOM_HOUR, "this room"),
    ):
        if ratelimit.hit(w) > limit:
            raise LockedOut(
                f"Too many codes were asked for {whose} this hour. "
                f"Try again in {_minutes(w.reset - int(time.time()))}.",
                retry_after=max(1, w.reset - int(time.time())),
            )


def request_code(*, room: Room, email: object, client: str) -> str:
    """Mail a one-time code proving `email` for this whitelist room; returns the address.

    The answer is the same whether the address is on the room's list or not, but only a
    listed address gets a mail (nobody can make Parley mail a stranger, nor probe the list).
    At most MAX_CODE_REQUESTS per room and client per window, and the hourly caps of
    `_count_code_request`. A new code replaces the address's previous ones."""
    email = normalize_email(email)
    now = timezone.now()
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        room = Room.objects.select_for_update().get(pk=room.pk)
        if room.access_type != Room.AccessType.WHITELIST:
            raise InvalidState("This room does not use email codes", code="NO_GUEST_LIST")
        selectors.require_open(room)
        wait = _wait_seconds(
            room,
            AccessAttempt.Kind.CODE_REQUEST,
            client,
            MAX_CODE_REQUESTS,
            now,
            failures_only=False,
        )
        if wait is None:
            _count_code_request(room, email)
            AccessAttempt.objects.create(
                room=room, kind=AccessAttempt.Kind.CODE_REQUEST, client_key=client, succeeded=True
            )
        on_list = email in {e.lower() for e in room.whitelist_emails}
        if wait is None and on_list:
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
    """Mail the code; raises Unavailable (EMAIL_NOT_SENT) when the mail server refuses it, so
    the caller hears it failed instead of "sent". The code is stored: asking again works."""
    minutes = int(CODE_TTL.total_seconds() // 60)
    try:
        send_mail(
            subject=header_text(f"Your code to join {room_name}"),
            message=(
                f"Your code to join “{room_name}” is {code}\n\n"
                f"It works once, for {minutes} minutes. If you did not ask for it, "
                "ignore this email.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    except Exception:
        logger.exception("Could not send the join code for room %s", room_id)
        raise Unavailable(
            "The email with your code could not be sent; try again in a few minutes",
            code="EMAIL_NOT_SENT",
            field="email",
        ) from None


def verify_code(*, room: Room, email: object, code: object, client: str) -> str:
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


def signed_participant(*, room: Room, token: object, client: str = "") -> access.Visitor:
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
        raise NotFound(access.ROOM_NOT_FOUND)
    if verified.roles is not None and "rtc" not in verified.roles:
        raise Forbidden("The token's roles do not allow joining a room (add 'rtc')")
    return access.Visitor(
        client=client,
        vouched=access.Vouched(
            room_pk=room.pk,
            participant_id=verified.participant_id,
            moderator="allow_mod" in verified.permissions,
        ),
    )
