"""Reads of rooms reused by several interfaces: room state, the waiting room's queue, the
stage's lineup and hand queue, one participant's stage state, sessions with who attended.
Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import Tenant
from conferences import access, livekit
from conferences.models import (
    Attendance,
    Occurrence,
    Participant,
    Room,
    RoomSession,
    WaitingEntry,
)
from conferences.roles import Role
from conferences.services.errors import InvalidState, RoomFull, Unavailable

LOBBY_SHOWN = 200  # entries a host's queue lists
LOBBY_MAX_AGE = timedelta(hours=12)  # older waiting entries are leftovers of a crash
# A waiting guest's page opens its socket at once; an entry whose socket never connected
# within this grace (the page was closed first, or a script asked) leaves the queue.
SOCKET_GRACE = timedelta(seconds=30)
HANDS_SHOWN = 200


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
    if room.status == Room.Status.COMPLETED or room.deactivated_at is not None:
        return "ended"
    if room.status == Room.Status.SCHEDULED and room.live_since is None:
        return "scheduled"
    return "open"


# A webinar's audience arriving at once must not ask LiveKit for the whole participant list
# on every page load and every join: a count well below the room's limit is reused for
# HEAD_COUNT_TTL seconds (shared through the cache by every web process). Near the limit
# (within HEAD_COUNT_SLACK places) LiveKit is asked each time; LiveKit itself enforces the
# room's max_participants (given at CreateRoom) in any case.
HEAD_COUNT_TTL = 2
HEAD_COUNT_SLACK = 50


def head_count(room: Room) -> int:
    """People LiveKit has in the room now (0 when it is not live). Raises Unavailable."""
    if room.live_since is None:
        return 0
    key = f"head-count:{room.pk}:{room.live_since.timestamp()}"
    cached = cache.get(key)
    if isinstance(cached, int) and cached < room.max_participants - HEAD_COUNT_SLACK:
        return cached
    count = len(livekit.list_participants(room=room.livekit_name))
    cache.set(key, count, HEAD_COUNT_TTL)
    return count


def room_state(room: Room) -> RoomState:
    """What a join page shows before anyone asks to join. Never raises for LiveKit trouble."""
    phase = room_phase(room)
    full: bool | None = False
    count: int | None = 0
    if phase == "open":
        try:
            count = head_count(room)
            full = count >= room.max_participants
        except Unavailable:
            count, full = None, None
    return RoomState(
        status=phase,
        starts_at=next_start(room) if phase == "scheduled" else None,
        full=full,
        participants=count,
    )


def require_open(room: Room) -> None:
    phase = room_phase(room)
    if phase == "scheduled":
        raise InvalidState("This room has not started yet", code="ROOM_NOT_STARTED")
    if phase == "ended":
        raise InvalidState("This room has ended", code="ROOM_ENDED")


def require_space(room: Room) -> None:
    count = head_count(room)
    if count >= room.max_participants:
        raise RoomFull(
            f"This room is full: {count} of {room.max_participants} people are in it. "
            "Try again when someone leaves."
        )


# --- the waiting room -------------------------------------------------------------------------


def waiting(room: Room) -> QuerySet[WaitingEntry]:
    return WaitingEntry.objects.filter(
        room=room,
        status=WaitingEntry.Status.WAITING,
        created_at__gt=timezone.now() - LOBBY_MAX_AGE,
    )


def seen_key(entry_id: str) -> str:
    """Cache key set while a waiting guest's page has its socket open."""
    return f"lobby:seen:{entry_id}"


@dataclass(frozen=True)
class LobbyQueue:
    entries: list[WaitingEntry]  # first come first, pages connected (or within the grace)
    unconnected: list[int] = field(default_factory=list)  # pks whose page never connected


def lobby_queue(room: Room) -> LobbyQueue:
    """The room's queue (one query, one cache read). Entries whose page never connected its
    socket within SOCKET_GRACE are left out and named in `unconnected` (the lobby service's
    `drop_unconnected` takes them out of the queue; this read does not)."""
    entries = list(waiting(room).order_by("created_at", "pk")[:LOBBY_SHOWN])
    cutoff = timezone.now() - SOCKET_GRACE
    old = [e for e in entries if e.created_at < cutoff]
    if not old:
        return LobbyQueue(entries=entries)
    seen = cache.get_many([seen_key(e.entry_id) for e in old])
    stale = {e.pk for e in old if seen_key(e.entry_id) not in seen}
    return LobbyQueue(entries=[e for e in entries if e.pk not in stale], unconnected=sorted(stale))


def waiting_list(*, room: Room) -> list[WaitingEntry]:
    """The room's queue without the entries whose page never connected. Read only."""
    return lobby_queue(room).entries


def lobby_entry(*, room_id: str, entry_id: str) -> WaitingEntry | None:
    if not (access.well_formed_room_id(room_id) and access.well_formed(access.ENTRY_ID, entry_id)):
        return None
    return (
        WaitingEntry.objects.select_related("room")
        .filter(entry_id=entry_id, room__room_id=room_id)
        .first()
    )


# --- the stage --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hand:
    identity: str
    name: str
    raised_at: datetime
    position: int


def hand_queue(*, room: Room, limit: int | None = None) -> list[Hand]:
    """Raised hands, first raised first (the first `limit` of them). One query."""
    rows = (
        Participant.objects.present()
        .filter(room=room, hand_raised_at__isnull=False)
        .order_by("hand_raised_at", "pk")
        .values_list("identity", "name", "hand_raised_at")
    )
    if limit is not None:
        rows = rows[:limit]
    # hand_raised_at is not null in these rows (filtered above).
    return [
        Hand(identity=i, name=n, raised_at=at, position=k + 1)  # type: ignore[arg-type]
        for k, (i, n, at) in enumerate(rows)
    ]


@dataclass(frozen=True)
class Lineup:
    """What a host's stage panel shows: the hand queue (its first HANDS_SHOWN), who is on
    stage as a speaker, and who has an invitation they have not answered yet."""

    hands: list[Hand]
    hands_total: int
    speakers: list[Participant]
    invited: list[Participant]


def lineup(*, room: Room) -> Lineup:
    """The room's stage at a glance. Two queries (three past HANDS_SHOWN raised hands)."""
    hands = hand_queue(room=room, limit=HANDS_SHOWN)
    total = len(hands)
    if total == HANDS_SHOWN:
        total = (
            Participant.objects.present().filter(room=room, hand_raised_at__isnull=False).count()
        )
    people = list(
        Participant.objects.present()
        .filter(room=room)
        .filter(Q(role=Role.SPEAKER) | Q(invited_at__isnull=False))
        .order_by("pk")[: 2 * HANDS_SHOWN]
    )
    return Lineup(
        hands=hands,
        hands_total=total,
        speakers=[p for p in people if p.role == Role.SPEAKER],
        invited=[p for p in people if p.role != Role.SPEAKER and p.invited_at is not None],
    )


def present_participant(*, room: Room, identity: str) -> Participant | None:
    """`identity`'s stage state in `room` while it is in the room; None once it left."""
    return Participant.objects.present().filter(room=room, identity=identity).first()


def stored_participant(*, room: Room, identity: str) -> Participant | None:
    """`identity`'s stored role and stage state in `room`, present or not."""
    return Participant.objects.filter(room=room, identity=identity).first()


def own_stage_state(*, room_id: str, identity: str) -> Participant | None:
    """The identity's stage state while it is in the room (re-read for every socket message);
    None once it left or was removed, or the room ended."""
    room = access.room_by_public_id(room_id)
    return None if room is None else stage_state_in(room=room, identity=identity)


def present_guest(*, room_id: str, livekit_room: str, identity: str) -> Participant | None:
    """`identity`'s stage state (with its room) if it is in the room behind the join link
    `room_id`, that room is LiveKit's `livekit_room` (its join token's room) and has not
    ended; else None. One query: a guest's stage socket asks this as it connects."""
    rooms = access.link_rooms(room_id)
    if rooms is None:
        return None
    participant = (
        Participant.objects.present()
        .select_related("room")
        .filter(room__in=rooms, identity=identity)
        .first()
    )
    if participant is None or participant.room.livekit_name != livekit_room:
        return None
    if room_phase(participant.room) == "ended":
        return None
    return participant


def stage_state_in(*, room: Room, identity: str) -> Participant | None:
    """`own_stage_state` for a room already read: None once the identity left or the room
    ended. One query."""
    if room_phase(room) == "ended":
        return None
    return present_participant(room=room, identity=identity)


# --- sessions and attendance ------------------------------------------------------------------


def tenant_sessions(tenant: Tenant) -> QuerySet[RoomSession]:
    """The sessions of the tenant's own rooms (Room.objects.listed(): direct calls are not
    the tenant's rooms), as one query with a subquery."""
    return RoomSession.objects.filter(room__in=Room.objects.for_tenant(tenant).listed())


def with_attendance(sessions: QuerySet[RoomSession]) -> QuerySet[RoomSession]:
    """The sessions with their room (joined) and their attendances in join order (one
    prefetch query for the whole page, whatever its length)."""
    return sessions.select_related("room").prefetch_related(
        Prefetch("attendances", queryset=Attendance.objects.order_by("joined_at", "pk"))
    )


@dataclass(frozen=True)
class Attendee:
    identity: str
    name: str  # the name of the latest stay that had one
    stays: list[Attendance]  # in join order; a rejoin is another stay


def attendees(session: RoomSession) -> list[Attendee]:
    """Who was in the session, one entry per identity in order of first join. Reads
    `session.attendances.all()`: no query when it was prefetched (with_attendance)."""
    by_identity: dict[str, list[Attendance]] = {}
    for stay in session.attendances.all():
        by_identity.setdefault(stay.identity, []).append(stay)
    return [
        Attendee(
            identity=identity,
            name=next((s.name for s in reversed(stays) if s.name), ""),
            stays=stays,
        )
        for identity, stays in by_identity.items()
    ]
