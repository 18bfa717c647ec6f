"""The overview: rooms live now (head counts update live), upcoming occurrences, this month's
usage against the plan; and the small JSON the page's script refreshes the live part from."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from conferences.api.fields import format_datetime
from conferences.models import Occurrence

from .. import usage
from .base import DashRequest, dashboard_view

UPCOMING_SHOWN = 8


@require_GET
@dashboard_view(nav="overview")
def overview(request: DashRequest) -> HttpResponse:
    tenant = request.dash.tenant
    now = timezone.now()
    live, reachable = usage.live_rooms(tenant)
    upcoming = list(
        Occurrence.objects.filter(
            room__tenant=tenant, status=Occurrence.Status.SCHEDULED, start_time__gte=now
        )
        .select_related("room")
        .only("occurrence_id", "start_time", "end_time", "room__room_id", "room__name")
        .order_by("start_time")[:UPCOMING_SHOWN]
    )
    return render(
        request,
        "dashboard/overview.html",
        {
            "live_rooms": live,
            "livekit_ok": reachable,
            "upcoming": upcoming,
            "meters": usage.plan_meters(tenant, now=now),
            "page_config": {"liveUrl": "/dashboard/live", "ws": "/ws/dashboard"},
        },
    )


@require_GET
@dashboard_view()
def live(request: DashRequest) -> JsonResponse:
    """The live rooms and their head counts, for the overview's script."""
    rooms, reachable = usage.live_rooms(request.dash.tenant)
    plan = request.dash.tenant.plan
    return JsonResponse(
        {
            "livekit": reachable,
            "limit": plan.max_concurrent_rooms,
            "rooms": [
                {
                    "room_id": r.room_id,
                    "name": r.name,
                    "participants": r.participants,
                    "max_participants": r.max_participants,
                    "live_since": format_datetime(r.live_since),
                    "url": f"/dashboard/rooms/{r.room_id}/",
                }
                for r in rooms
            ],
        },
        headers={"Cache-Control": "no-store"},
    )
