"""Joining a room from a browser and its waiting room (lobby).

Nothing here trusts the browser. Pages hand in what the visitor has proven (`Visitor`, built
from the session by the views) and every decision is made against the room as stored now.
No LiveKit token exists for a guest until the room's policy lets it in: at once for an open
room, on a host's admission for a room with a waiting room (the policy is checked again
then, against the evidence the guest joined with).
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from conferences import access, events, selectors
from conferences.access import Visitor
from conferences.models import Room, WaitingEntry
from conferences.roles import Role
from parley import hotcache, ratelimit

from . import rooms as room_services
from .errors import Forbidden, InvalidInput, InvalidState, LockedOut, NotFound, RoomFull

NAME_MAX = 50
LOBBY_MAX = 500  # guests waiting in one room at once
LOBBY_PER_CLIENT = 30  # lobby entries one address may create per room per LOBBY_WINDOW
LOBBY_WINDOW = timedelta(minutes=15)
ADMISSION_TTL = timedelta(minutes=30)  # an admitted guest must connect within this


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


def join(*, room: Room, name: object, visitor: Visitor) -> JoinResult:
    """Let a browser into `room`: hosts at once with their host role; others after the
    access policy, into the lobby when the room has a waiting room, else at once. A visitor
    the tenant's server vouched for (a signed participant token) joins with that identity,
    skips the waiting room, and reopens an ended (not deactivated) room.

    `room` may come from the hot cache (access.room_for_join_page: every room service
    invalidates it on commit, in every process), as the API's token path uses it: a webinar's
    thousand joins then read no room row. Writes re-read it (start_room locks the row)."""
    name = clean_display_name(name)
    vouched = access.vouched_for(room, visitor)
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
    selectors.require_open(room)
    role = access.host_role(room, visitor)
    if role is None:
        problem = access.access_problem(room, visitor)
        if problem is not None:
            raise problem
        if vouched is None and banned(room=room, visitor=visitor):
            raise Forbidden(
                "A host removed you from this room: you cannot ask to join again until it ends",
                code="BANNED",
            )
        selectors.require_space(room)
        if room.waiting_room_enabled and vouched is None:
            return JoinResult(entry=_enter_lobby(room=room, name=name, visitor=visitor))
        # No role asked: a guest gets the room's default (a viewer in webinar mode).
        return JoinResult(token=room_services.issue_token(room=room, name=name, identity=identity))
    selectors.require_space(room)
    return JoinResult(
        token=room_services.issue_token(room=room, name=name, identity=identity, role=role)
    )


def banned(*, room: Room, visitor: Visitor) -> bool:
    """Whether a host banned this visitor from `room` during its current live session: by
    the browser's own earlier entries, its address, its account or its proven email.

    The session's bans are few and every join asks: they are read once per hot-cached room
    (access.derived; a ban invalidates the tenant's hot cache on commit, end_admissions)
    and matched here, so a webinar's thousand joins do not each query them."""
    since = room.live_since or room.started_at

    def load() -> list[tuple[str, str, int | None, str]]:
        rows = WaitingEntry.objects.filter(room=room, status=WaitingEntry.Status.BANNED)
        if since is not None:
            rows = rows.filter(decided_at__gte=since)
        return [
            (entry_id, client_key, user_id, email.upper())
            for entry_id, client_key, user_id, email in rows.values_list(
                "entry_id", "client_key", "user_id", "email"
            )
        ]

    bans = access.derived(room, "bans", load)
    user = visitor.user if visitor.user is not None and visitor.user.is_authenticated else None
    email = visitor.email.upper()
    for entry_id, client_key, user_id, banned_email in bans:
        if (
            entry_id in visitor.entries
            or (visitor.client and client_key == visitor.client)
            or (user is not None and user_id == user.pk)
            or (email and banned_email == email)
        ):
            return True
    return False


def end_admissions(*, room: Room, identity: str, ban: bool) -> int:
    """A host removed `identity`: its admission is over (its page gets no new token, its
    lobby socket is told), and with `ban` it may not ask again during this live session.
    Runs inside the caller's transaction (moderation.remove_participant)."""
    entries = list(
        WaitingEntry.objects.select_for_update().filter(
            room=room,
            identity=identity,
            status__in=[WaitingEntry.Status.ADMITTED, WaitingEntry.Status.REMOVED],
        )
    )
    if ban:
        reason = "A host removed you from this room and you cannot ask to join again"
        _settle(entries, WaitingEntry.Status.BANNED, reason)
        hotcache.invalidate_tenant(room.tenant_id)  # banned()'s cached list of the bans
    else:
        _settle(entries, WaitingEntry.Status.REMOVED, "A host removed you from this room")
    return len(entries)


def _settle(entries: list[WaitingEntry], status: str, reason: str) -> None:
    """Give `entries` their final `status` and tell their pages (their lobby sockets)."""
    now = timezone.now()
    for entry in entries:
        entry.status = status
        entry.reason = reason
        entry.decided_at = now
        entry.save(update_fields=["status", "reason", "decided_at"])
        events.notify_on_commit(
            events.lobby_group(entry.entry_id),
            {"type": "lobby.decided", "entry_id": entry.entry_id},
        )


def admission_ended(*, room: Room, identity: str) -> bool:
    """Whether a host removed `identity` after letting it in through the waiting room."""
    return WaitingEntry.objects.filter(
        room=room,
        identity=identity,
        status__in=[WaitingEntry.Status.REMOVED, WaitingEntry.Status.BANNED],
    ).exists()


def _count_lobby_request(room: Room, client: str) -> None:
    """At most LOBBY_PER_CLIENT entries per room and address per window, so a script cannot
    fill a lobby with entries that never open a socket."""
    seconds = int(LOBBY_WINDOW.total_seconds())
    if ratelimit.hit(ratelimit.window("lobby", f"{room.pk}:{client}", seconds=seconds)) > (
        LOBBY_PER_CLIENT
    ):
        raise LockedOut(
            "Too many requests to join this room from your network. Try again in a few minutes.",
            retry_after=seconds,
        )


def count_join_request(*, room: Room, client: str) -> None:
    """The join page's per-address limit for `room` (LOBBY_PER_CLIENT per window), for join
    paths without a page: the public Callaba helpers count against the same budget."""
    _count_lobby_request(room, client)


@transaction.atomic
def _enter_lobby(*, room: Room, name: str, visitor: Visitor) -> WaitingEntry:
    if selectors.waiting(room).count() >= LOBBY_MAX:
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
        client_key=visitor.client,
    )
    events.emit_on_commit(
        "participant.waiting",
        tenant_id=room.tenant_id,
        room_id=room.room_id,
        data={"entry_id": entry.entry_id, "identity": entry.identity, "name": entry.name},
    )
    return entry


def lobby_socket_connected(*, entry_id: str) -> None:
    """The entry's page has its socket open (its closing then takes the entry out)."""
    cache.set(selectors.seen_key(entry_id), 1, timeout=int(selectors.LOBBY_MAX_AGE.total_seconds()))


def drop_unconnected(*, entry_pks: list[int]) -> int:
    """Take entries whose page never connected its socket (selectors.lobby_queue names them)
    out of the queue. Returns how many left."""
    if not entry_pks:
        return 0
    return WaitingEntry.objects.filter(pk__in=entry_pks, status=WaitingEntry.Status.WAITING).update(
        status=WaitingEntry.Status.LEFT,
        reason="The page never connected",
        decided_at=timezone.now(),
    )


def queue_for_host(*, room: Room) -> selectors.LobbyQueue:
    """The queue as a host sees it now: entries whose page never connected leave it first
    (the only write; `selectors.lobby_queue` itself only reads)."""
    queue = selectors.lobby_queue(room)
    drop_unconnected(entry_pks=queue.unconnected)
    return queue


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
    gone = "No one with that id is waiting: they may have left or been let in"
    if entry_id is not None and not access.well_formed(access.ENTRY_ID, entry_id):
        raise NotFound(gone)
    entries = selectors.waiting(room).select_related("user").select_for_update(of=("self",))
    if entry_id is not None:
        entries = entries.filter(entry_id=entry_id)
    found = list(entries.order_by("created_at", "pk"))
    if entry_id is not None and not found:
        raise NotFound(gone)
    return found


@transaction.atomic
def admit(*, room: Room, entry_id: str | None = None) -> list[Decision]:
    """Let one waiting guest (or all) in. Each is checked against the room's access policy
    as it is now, with the evidence it joined with: one that no longer passes is turned
    away with the reason instead. The guest's page then gets its token over its socket."""
    room = Room.objects.select_for_update().get(pk=room.pk)
    selectors.require_open(room)
    now = timezone.now()
    decisions = []
    for entry in _pending(room, entry_id):
        evidence = Visitor(
            user=entry.user, password_fingerprint=entry.password_fingerprint, email=entry.email
        )
        problem = access.access_problem(room, evidence)
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


def withdraw(*, room_id: str, entry_id: str) -> bool:
    """The browser asks to join again: its earlier entry leaves the queue, and an earlier
    admission of it ends (its old page or socket gets no token any more)."""
    WaitingEntry.objects.filter(
        entry_id=entry_id, room__room_id=room_id, status=WaitingEntry.Status.ADMITTED
    ).update(status=WaitingEntry.Status.LEFT, decided_at=timezone.now())
    return leave_lobby(room_id=room_id, entry_id=entry_id)


def leave_lobby(*, room_id: str, entry_id: str) -> bool:
    """The guest closed its page or gave up: its entry leaves the queue. Idempotent."""
    with transaction.atomic():
        entry = selectors.lobby_entry(room_id=room_id, entry_id=entry_id)
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


def close(*, room: Room, reason: str = "The room ended") -> int:
    """Everyone still waiting leaves the queue (the room ended); their pages are told.
    Runs inside the caller's transaction (rooms.stop_room)."""
    entries = list(selectors.waiting(room).select_for_update())
    _settle(entries, WaitingEntry.Status.LEFT, reason)
    return len(entries)


def token_for_entry(*, room_id: str, entry_id: str, client: str) -> room_services.IssuedToken:
    """The LiveKit token of an admitted guest, asked for by its own page's socket from the
    address that asked to join (`client`, access.client_key): a session cookie copied to
    another device gets nothing."""
    entry = selectors.lobby_entry(room_id=room_id, entry_id=entry_id)
    if entry is None:
        raise NotFound("Unknown waiting-room entry")
    if entry.status != WaitingEntry.Status.ADMITTED:
        raise InvalidState("You have not been let in", code="NOT_ADMITTED")
    if not access.same(entry.client_key, client):
        raise InvalidState(
            "You were let in on another device or network: ask to join again",
            code="NOT_ADMITTED",
        )
    if entry.decided_at is None or entry.decided_at < timezone.now() - ADMISSION_TTL:
        raise InvalidState("Your admission has expired: ask to join again", code="NOT_ADMITTED")
    room = Room.objects.get(pk=entry.room_id)
    selectors.require_open(room)
    selectors.require_space(room)
    # No role asked: the identity's stored role, else the room's default for guests.
    return room_services.issue_token(room=room, name=entry.name, identity=entry.identity)
