"""Calls: the tenant's direct calls (the videochat handshake) — who called whom, when, how
long — and one call's people and ringing history. Read-only; every role may look."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from conferences.models import Call, CallMember, CallRequest
from conferences.services import calls as call_services

from .base import dashboard_view

PAGE_SIZE = 25


@require_GET
@dashboard_view(nav="calls")
def call_list(request: HttpRequest) -> HttpResponse:
    """Newest first, 25 a page: a COUNT and one page query whatever the number of calls."""
    paginator = Paginator(call_services.calls_for_tenant(request.dash.tenant), PAGE_SIZE)  # type: ignore[attr-defined]
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "dashboard/calls/list.html", {"page": page})


@require_GET
@dashboard_view(nav="calls")
def call_detail(request: HttpRequest, call_id: str) -> HttpResponse:
    """One call of the current tenant; another tenant's call and a missing one are 404."""
    call = (
        call_services.calls_for_tenant(request.dash.tenant).filter(call_id=call_id).first()  # type: ignore[attr-defined]
        if len(call_id) <= 40
        else None
    )
    if call is None:
        raise Http404("Call not found")
    members = (
        CallMember.objects.filter(call=call).select_related("user").order_by("joined_at", "pk")
    )
    requests = (
        CallRequest.objects.filter(call=call)
        .select_related("caller", "target")
        .order_by("created_at", "pk")
    )
    return render(
        request,
        "dashboard/calls/detail.html",
        {"call": call, "members": members, "requests": requests, "Status": Call.Status},
    )
