"""Usage of a tenant against its plan, and the metering that feeds it.

Reads (selectors) for the overview and the plan page, each a fixed number of queries:
`plan_meters` (this month's usage against the plan's limits), `daily_minutes` (participant-
minutes per UTC day, from attendance: `participant_seconds`), `live_rooms` (the tenant's
live rooms with LiveKit's head counts, one ListRooms call). `meter` samples LiveKit once a
minute (a beat task) for room-minutes and the day's peak head count; participant-minutes
come from attendance, exact to the second.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db.models import Q, Sum
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Tenant, UsageDay
from conferences import events, livekit
from conferences.models import Attendance, Room
from conferences.services import recordings as recording_services
from parley import ratelimit

logger = logging.getLogger(__name__)
LIVE_SHOWN = 50  # live rooms listed on the overview


@dataclass(frozen=True)
class Meter:
    label: str
    used: int
    limit: int | None  # None: unlimited
    unit: str = ""
    note: str = ""
    planned: bool = True  # False: a figure the plan does not limit

    @property
    def limit_text(self) -> str:
        if self.limit is not None:
            return f"{self.used:,} / {self.limit:,}"
        return f"{self.used:,} / unlimited" if self.planned else f"{self.used:,}"

    @property
    def percent(self) -> int:
        if not self.limit:
            return 0
        return min(100, round(100 * self.used / self.limit))

    @property
    def level(self) -> str:
        """ok | warn | full: the bar's colour."""
        if self.limit is None:
            return "ok"
        if self.used >= self.limit:
            return "full"
        return "warn" if self.percent >= 80 else "ok"


def requests_this_hour(tenant: Tenant, now: float | None = None) -> int:
    """API requests counted in the current fixed hourly window (the API throttle's counter)."""
    moment = timezone.now().timestamp() if now is None else now
    return ratelimit.used(ratelimit.api_window(tenant.pk, now=moment))


def month_start(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date().replace(day=1)


def participant_seconds(
    tenant: Tenant, *, first: dt.date, last: dt.date, now: dt.datetime | None = None
) -> dict[dt.date, int]:
    """Participant-seconds of each UTC day from `first` to `last` (inclusive), from
    attendance: every stay split at midnight, a stay still open counted up to `now`. One
    query. The plan page, the usage chart and GET /api/v1/usage all read this."""
    now = now or timezone.now()
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    out = {first + dt.timedelta(days=i): 0 for i in range((last - first).days + 1)}
    stays = (
        Attendance.objects.filter(tenant=tenant, joined_at__lt=end)
        .filter(Q(left_at__isnull=True) | Q(left_at__gt=start))
        .values_list("joined_at", "left_at")
    )
    for joined, left in stays:
        lo = max(joined, start)
        hi = min(left or now, end, now)
        while lo < hi:
            midnight = dt.datetime.combine(
                lo.astimezone(dt.UTC).date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC
            )
            piece_end = min(hi, midnight)
            out[lo.astimezone(dt.UTC).date()] += int((piece_end - lo).total_seconds())
            lo = piece_end
    return out


def to_minutes(seconds: int) -> int:
    """Whole participant-minutes of a number of seconds (rounded to the nearest minute)."""
    return (seconds + 30) // 60


def plan_meters(tenant: Tenant, *, now: dt.datetime | None = None) -> list[Meter]:
    """This month's usage against the plan: 5 queries (live rooms, rooms, the month's
    attendance, the month's room-minutes, the month's recordings)."""
    now = now or timezone.now()
    plan = tenant.plan
    rooms = Room.objects.for_tenant(tenant)
    live = rooms.live().count()
    total = rooms.count()
    today = now.astimezone(dt.UTC).date()
    seconds = participant_seconds(tenant, first=month_start(now), last=today, now=now)
    month = UsageDay.objects.filter(tenant=tenant, day__gte=month_start(now)).aggregate(
        room_minutes=Sum("room_minutes")
    )
    month["minutes"] = sum(to_minutes(s) for s in seconds.values())
    return [
        Meter("Rooms live now", live, plan.max_concurrent_rooms, "rooms"),
        Meter(
            "API requests this hour", requests_this_hour(tenant), plan.requests_per_hour, "requests"
        ),  # fmt: skip
        Meter(
            "Participant-minutes this month",
            month["minutes"] or 0,
            None,
            "minutes",
            note=f"{month['room_minutes'] or 0:,} room-minutes",
            planned=False,
        ),  # fmt: skip
        Meter("Rooms", total, None, "rooms", planned=False),
        Meter(
            "Recording minutes this month",
            recording_services.minutes_used(tenant, now),
            plan.recording_minutes_per_month,
            "minutes",
            note="" if plan.recording_minutes_per_month != 0 else "Not included in your plan",
        ),
    ]


@dataclass(frozen=True)
class DayUsage:
    day: dt.date
    minutes: int
    peak: int


def daily_minutes(tenant: Tenant, *, days: int = 30, now: dt.datetime | None = None):
    """Participant-minutes (from attendance) of each of the last `days` UTC days, oldest
    first (zeros filled), with the sampled peak head count. Two queries."""
    now = now or timezone.now()
    today = now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    seconds = participant_seconds(tenant, first=first, last=today, now=now)
    stored = {
        row["day"]: row
        for row in UsageDay.objects.filter(tenant=tenant, day__gte=first).values(
            "day", "peak_participants"
        )
    }
    out: list[DayUsage] = []
    for i in range(days):
        day = first + dt.timedelta(days=i)
        row = stored.get(day)
        out.append(DayUsage(day, to_minutes(seconds[day]), row["peak_participants"] if row else 0))
    return out


@dataclass(frozen=True)
class LiveRoom:
    room_id: str
    name: str
    live_since: dt.datetime
    participants: int | None  # None: LiveKit did not answer
    max_participants: int


def live_rooms(tenant: Tenant) -> tuple[list[LiveRoom], bool]:
    """The tenant's live rooms with LiveKit's head counts (one query, one ListRooms call),
    and whether LiveKit answered."""
    rooms = list(
        Room.objects.for_tenant(tenant)
        .live()
        .order_by("-live_since")
        .only("room_id", "name", "live_since", "max_participants")[:LIVE_SHOWN]
    )
    counts: dict[str, int] = {}
    reachable = True
    if rooms:
        try:
            counts = {
                r["name"]: r["num_participants"]
                for r in livekit.list_rooms(names=[room.livekit_name for room in rooms])
            }
        except livekit.LiveKitError:
            reachable = False
    return [
        LiveRoom(
            room_id=room.room_id,
            name=room.name,
            live_since=room.live_since,  # type: ignore[arg-type]  # live() rooms have one
            participants=counts.get(room.livekit_name, 0) if reachable else None,
            max_participants=room.max_participants,
        )
        for room in rooms
    ], reachable


# --- metering ---------------------------------------------------------------------------------

METER_CHUNK = 500  # room names per ListRooms call


def meter(*, now: dt.datetime | None = None) -> int:
    """Sample every live room once for the current minute and add it to the tenants' usage.

    The minute is claimed in the cache (add is atomic), so a duplicated beat or a second
    worker samples it once. Tenants whose head count changed hear about it on their Channels
    group. Returns how many tenants were recorded."""
    now = now or timezone.now()
    minute = now.replace(second=0, microsecond=0)
    if not cache.add(f"usage:meter:{minute.isoformat()}", 1, timeout=180):
        return 0
    live = list(Room.objects.live().values_list("tenant_id", "room_id"))
    if not live:
        return 0
    by_name = dict((room_id, tenant_id) for tenant_id, room_id in live)
    names = list(by_name)
    counts: dict[str, int] = {}
    try:
        for i in range(0, len(names), METER_CHUNK):
            for info in livekit.list_rooms(names=names[i : i + METER_CHUNK]):
                counts[info["name"]] = info["num_participants"]
    except livekit.LiveKitError:
        logger.warning("Usage metering skipped a minute: LiveKit unavailable")
        cache.delete(f"usage:meter:{minute.isoformat()}")
        return 0
    per_tenant: dict[int, list[int]] = {}
    for name, tenant_id in by_name.items():
        people, rooms = per_tenant.setdefault(tenant_id, [0, 0])
        per_tenant[tenant_id] = [people + counts.get(name, 0), rooms + 1]
    samples = [
        account_services.UsageSample(tenant_id=t, participants=p, live_rooms=r)
        for t, (p, r) in per_tenant.items()
    ]
    recorded = account_services.record_usage(day=minute.date(), samples=samples)
    _announce(per_tenant, counts, by_name)
    return recorded


def _announce(
    per_tenant: dict[int, list[int]], counts: dict[str, int], by_name: dict[str, int]
) -> None:
    """Tell each tenant's dashboards the fresh head counts (one group message per tenant)."""
    layer = get_channel_layer()
    if layer is None:
        return
    rooms_of: dict[int, dict[str, int]] = {}
    for name, tenant_id in by_name.items():
        rooms_of.setdefault(tenant_id, {})[name] = counts.get(name, 0)
    for tenant_id, rooms in rooms_of.items():
        try:
            async_to_sync(layer.group_send)(
                events.tenant_group(tenant_id),
                {
                    "type": "parley.event",
                    "event": "usage.sampled",
                    "room_id": "",
                    "at": timezone.now().isoformat(),
                    "data": {"participants": rooms},
                },
            )
        except Exception:  # a lost notice must not undo the metering
            logger.exception("Could not announce usage to tenant %s", tenant_id)
