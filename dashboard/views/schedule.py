"""The schedule: a week or month calendar of the tenant's occurrences, in its time zone."""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from conferences.models import Occurrence, Schedule
from conferences.services import schedule as schedule_services

from .base import DashRequest, dashboard_view

MAX_SHOWN = 2000  # occurrences drawn in one calendar page
MAX_AHEAD = dt.timedelta(days=366)  # how far ahead series are expanded on demand
MAX_EXPANDED = 200  # schedules expanded per page view
# Days the calendar may show: start times are stored for years 1970-9998 (the API's range),
# and a month's grid reaches a week either side.
FIRST_DAY = dt.date(1970, 2, 1)
LAST_DAY = dt.date(9998, 11, 30)


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


@require_GET
@dashboard_view(nav="schedule")
def schedule(request: DashRequest) -> HttpResponse:
    tenant = request.dash.tenant
    zone = _zone(tenant.timezone)
    today = timezone.now().astimezone(zone).date()
    view = request.GET.get("view", "month")
    view = view if view in ("month", "week") else "month"
    anchor, status = _anchor(request.GET.get("date"), today)
    if status == 400:
        messages.error(
            request,
            f"The date must be a day between {FIRST_DAY:%Y-%m-%d} and {LAST_DAY:%Y-%m-%d} "
            "(YYYY-MM-DD); showing today.",
        )
    if view == "month":
        first = anchor.replace(day=1)
        start = first - dt.timedelta(days=first.weekday())
        last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        end = last + dt.timedelta(days=7 - last.weekday())
        prev_anchor = (first - dt.timedelta(days=1)).replace(day=1)
        next_anchor = last + dt.timedelta(days=1)
        title = first.strftime("%B %Y")
    else:
        start = anchor - dt.timedelta(days=anchor.weekday())
        end = start + dt.timedelta(days=7)
        prev_anchor, next_anchor = start - dt.timedelta(days=7), end
        title = f"Week of {start.strftime('%-d %B %Y')}"

    lo = dt.datetime.combine(start, dt.time(), zone)
    hi = dt.datetime.combine(end, dt.time(), zone)
    _expand(tenant, until=min(hi, timezone.now() + MAX_AHEAD))
    occurrences = list(
        Occurrence.objects.filter(room__tenant=tenant, start_time__gte=lo, start_time__lt=hi)
        .exclude(status=Occurrence.Status.CANCELLED)
        .select_related("room")
        .only(
            "occurrence_id", "start_time", "end_time", "status", "room__room_id", "room__name"
        )  # fmt: skip
        .order_by("start_time", "pk")[: MAX_SHOWN + 1]
    )
    truncated = len(occurrences) > MAX_SHOWN
    by_day: dict[dt.date, list[dict]] = {}
    for occurrence in occurrences[:MAX_SHOWN]:
        local = occurrence.start_time.astimezone(zone)
        by_day.setdefault(local.date(), []).append(
            {
                "time": local.strftime("%H:%M"),
                "end": occurrence.end_time.astimezone(zone).strftime("%H:%M")
                if occurrence.end_time
                else "",
                "name": occurrence.room.name,
                "room_id": occurrence.room.room_id,
                "status": occurrence.status,
            }
        )
    days = []
    day = start
    while day < end:
        days.append(
            {
                "date": day,
                "items": by_day.get(day, []),
                "today": day == today,
                "outside": view == "month" and day.month != anchor.month,
            }
        )
        day += dt.timedelta(days=1)
    weeks = [days[i : i + 7] for i in range(0, len(days), 7)]
    return render(
        request,
        "dashboard/schedule.html",
        {
            "view": view,
            "title": title,
            "weeks": weeks,
            "days": days,
            "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            "prev": prev_anchor.isoformat(),
            "next": next_anchor.isoformat(),
            "anchor": anchor.isoformat(),
            "today": today.isoformat(),
            "zone": tenant.timezone,
            "count": min(len(occurrences), MAX_SHOWN),
            "truncated": truncated,
        },
        status=status,
    )


def _anchor(raw: str | None, today: dt.date) -> tuple[dt.date, int]:
    """The day the calendar shows and the page's status: a day that is not a date, or whose
    calendar would reach outside the years datetimes are stored in, is a 400 (today shown)."""
    if not raw:
        return today, 200
    try:
        anchor = dt.date.fromisoformat(raw)
    except ValueError:
        return today, 400
    if not FIRST_DAY <= anchor <= LAST_DAY:
        return today, 400
    return anchor, 200


def _expand(tenant, *, until: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """Store the occurrences of the tenant's open series up to `until` (beyond the rolling
    window, when the calendar looks further ahead)."""
    stale = Schedule.objects.filter(
        room__tenant=tenant, open_ended=True, generated_until__lt=until
    ).order_by("generated_until")[:MAX_EXPANDED]
    for item in stale:
        schedule_services.materialize(item, until=until)
