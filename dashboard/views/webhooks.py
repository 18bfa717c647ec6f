"""Webhooks (endpoints, their delivery log, replay) and a room's sessions with attendance
(CSV download). Pages translate: every change is one call into services.webhooks."""

from __future__ import annotations

import csv
import datetime as dt

from django.contrib import messages
from django.db.models import Count, Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Membership
from conferences import outbox
from conferences.models import (
    Attendance,
    RoomSession,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from conferences.services import webhooks as webhook_services
from conferences.services.errors import ServiceError

from .base import DashRequest, confirm_page, confirmed, dashboard_view, service_error
from .rooms import get_room

Role = Membership.Role
LOG_SIZE = 50


def _endpoint(request: DashRequest, endpoint_id: str) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.filter(tenant=request.dash.tenant, endpoint_id=endpoint_id)
        .select_related("room")
        .first()
    )
    if endpoint is None:
        raise Http404("No such endpoint")
    return endpoint


@dashboard_view(write=Role.ADMIN, nav="webhooks")
def webhook_list(request: DashRequest) -> HttpResponse:
    """The endpoints; POST registers one and shows its secret on this response only."""
    issued = None
    errors: dict[str, str] = {}
    values = {"url": "", "events": ["*"], "description": ""}
    status = 200
    if request.method == "POST":
        values = {
            "url": request.POST.get("url", ""),
            "events": request.POST.getlist("events") or [],
            "description": request.POST.get("description", ""),
        }
        try:
            issued = webhook_services.create_endpoint(tenant=request.dash.tenant, **values)
        except ServiceError as exc:
            errors[exc.field or "url"] = exc.message
            status = 400
        else:
            values = {"url": "", "events": ["*"], "description": ""}
    endpoints = (
        WebhookEndpoint.objects.filter(tenant=request.dash.tenant)
        .select_related("room")
        .order_by("room_id", "created_at")[:200]
    )
    return render(
        request,
        "dashboard/webhooks/list.html",
        {
            "endpoints": endpoints,
            "issued": issued,
            "errors": errors,
            "values": values,
            "event_types": outbox.EVENT_TYPES,
        },
        status=status,
    )


@require_GET
@dashboard_view(write=Role.ADMIN, nav="webhooks")
def webhook_detail(request: DashRequest, endpoint_id: str) -> HttpResponse:
    return _detail(request, _endpoint(request, endpoint_id))


def _detail(
    request: DashRequest, endpoint: WebhookEndpoint, *, secret: str = "", status: int = 200
) -> HttpResponse:
    wanted = request.GET.get("status", "")
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    if wanted in WebhookDelivery.Status.values:
        deliveries = deliveries.filter(status=wanted)
    log = (
        deliveries.select_related("event")
        .prefetch_related(
            Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("at", "pk"))
        )
        .order_by("-event_created_at", "-pk")[:LOG_SIZE]
    )
    return render(
        request,
        "dashboard/webhooks/detail.html",
        {
            "endpoint": endpoint,
            "deliveries": log,
            "secret": secret,
            "wanted": wanted,
            "statuses": WebhookDelivery.Status.values,
            "rotating": endpoint.previous_secret_expires_at is not None
            and endpoint.previous_secret_expires_at > timezone.now(),
            "since_default": (timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        },
        status=status,
    )


@require_POST
@dashboard_view(write=Role.ADMIN, nav="webhooks")
def webhook_rotate(request: DashRequest, endpoint_id: str) -> HttpResponse:
    issued = webhook_services.rotate_secret(endpoint=_endpoint(request, endpoint_id))
    return _detail(request, issued.endpoint, secret=issued.secret)


@require_POST
@dashboard_view(write=Role.ADMIN, nav="webhooks")
def webhook_test(request: DashRequest, endpoint_id: str) -> HttpResponse:
    event = webhook_services.send_test_event(endpoint=_endpoint(request, endpoint_id))
    messages.success(request, f"Test event {event.event_id} queued.")
    return redirect("dash:webhook", endpoint_id)


@require_POST
@dashboard_view(write=Role.ADMIN, nav="webhooks")
def webhook_toggle(request: DashRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    enable = request.POST.get("enabled") == "1"
    webhook_services.update_endpoint(endpoint=endpoint, data={"enabled": enable})
    messages.success(request, "Endpoint enabled." if enable else "Endpoint disabled.")
    return redirect("dash:webhook", endpoint_id)


@require_POST
@dashboard_view(write=Role.ADMIN, nav="webhooks")
def webhook_delete(request: DashRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    if not confirmed(request):
        return confirm_page(
            request,
            title="Delete this endpoint?",
            message=f"{endpoint.url} receives no more events; its delivery log is deleted.",
            action_label="Delete the endpoint",
            cancel_url=reverse("dash:webhook", args=[endpoint_id]),
        )
    try:
        webhook_services.delete_endpoint(endpoint=endpoint)
    except ServiceError as exc:
        service_error(request, exc)
        return redirect("dash:webhook", endpoint_id)
    messages.success(request, "Endpoint deleted.")
    return redirect("dash:webhooks")


@require_POST
@dashboard_view(write=Role.ADMIN, nav="webhooks")
def delivery_replay(request: DashRequest, endpoint_id: str, delivery_id: str) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint, delivery_id=delivery_id).first()
    if delivery is None:
        raise Http404("No such delivery")
    try:
        webhook_services.replay_delivery(delivery=delivery)
    except ServiceError as exc:
        service_error(request, exc)
    else:
        messages.success(request, "Delivery queued again.")
    return redirect("dash:webhook", endpoint_id)


@require_POST
@dashboard_view(write=Role.ADMIN, nav="webhooks")
def webhook_replay(request: DashRequest, endpoint_id: str) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    since = parse_datetime(request.POST.get("since", ""))
    if since is None:
        messages.error(request, "Give the time to replay failed deliveries from.")
        return redirect("dash:webhook", endpoint_id)
    if timezone.is_naive(since):
        since = timezone.make_aware(since, dt.UTC)
    count = webhook_services.replay_failed(endpoint=endpoint, since=since)
    messages.success(request, f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again.")
    return redirect("dash:webhook", endpoint_id)


# --- a room's sessions and attendance -------------------------------------------------------


@require_GET
@dashboard_view(nav="rooms")
def room_sessions(request: DashRequest, room_id: str) -> HttpResponse:
    room = get_room(request, room_id)
    sessions = list(
        RoomSession.objects.filter(room=room)
        .annotate(attendance_count=Count("attendances"))
        .order_by("-started_at")[:50]
    )
    chosen = request.GET.get("session") or (sessions[0].session_id if sessions else "")
    attendance = (
        list(
            Attendance.objects.filter(session__room=room, session__session_id=chosen).order_by(
                "joined_at", "pk"
            )
        )
        if chosen
        else []
    )
    now = timezone.now()
    rows = [
        {"att": a, "seconds": int(((a.left_at or now) - a.joined_at).total_seconds())}
        for a in attendance
    ]
    return render(
        request,
        "dashboard/rooms/sessions.html",
        {"room": room, "sessions": sessions, "chosen": chosen, "rows": rows},
    )


@require_GET
@dashboard_view(nav="rooms")
def attendance_csv(request: DashRequest, room_id: str, session_id: str) -> HttpResponse:
    room = get_room(request, room_id)
    session = RoomSession.objects.filter(room=room, session_id=session_id).first()
    if session is None:
        raise Http404("No such session")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="attendance-{room.room_id}-{session.session_id}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(["identity", "name", "joined_at", "left_at", "duration_seconds", "left_by"])
    now = timezone.now()
    for a in Attendance.objects.filter(session=session).order_by("joined_at", "pk"):
        writer.writerow(
            [
                _cell(a.identity),
                _cell(a.name),
                a.joined_at.isoformat(),
                a.left_at.isoformat() if a.left_at else "",
                int(((a.left_at or now) - a.joined_at).total_seconds()),
                a.left_by,
            ]
        )
    return response


def _cell(value: str) -> str:
    """No spreadsheet formulas from participant-chosen names (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
