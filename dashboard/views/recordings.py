"""Recordings in the dashboard: start and stop on the room's page, and the workspace's
recording storage (S3-compatible target, retention). Views translate; the recording
service decides."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Membership
from conferences.models import Recording
from conferences.services import recordings as recording_services
from conferences.services.errors import ServiceError

from .base import DashRequest, base_url, dashboard_view, service_error
from .rooms import get_room

Role = Membership.Role


def room_recordings(request: HttpRequest, room: Any) -> list[dict[str, Any]]:
    """The room page's recordings: each with its (fresh, signed) download and watch links."""
    base = base_url(request)
    return [
        {
            "recording": r,
            "duration": recording_services.duration_seconds(r),
            "download_url": recording_services.download_url(r, base_url=base),
            "watch_url": recording_services.watch_url(r, base_url=base)
            if r.kind == Recording.Kind.HLS
            else "",
        }
        for r in recording_services.for_room(room)[:50]
    ]


@require_POST
@dashboard_view(write=Role.MEMBER)
def recording_start(request: DashRequest, room_id: str) -> HttpResponse:
    room = get_room(request, room_id)
    kind = Recording.Kind.HLS if request.POST.get("kind") == "hls" else Recording.Kind.RECORDING
    try:
        recording_services.start(room=room, kind=kind)
    except ServiceError as exc:
        service_error(request, exc)
    else:
        messages.success(
            request, "Recording started." if kind == "recording" else "Live stream started."
        )
    return redirect("dash:room", room_id=room.room_id)


@require_POST
@dashboard_view(write=Role.MEMBER)
def recording_stop(request: DashRequest, room_id: str, recording_id: str) -> HttpResponse:
    room = get_room(request, room_id)
    recording = recording_services.get_for_tenant(request.dash.tenant, recording_id)
    if recording is None or recording.room_id != room.pk:
        raise Http404("Recording not found")
    try:
        recording_services.stop(recording=recording)
    except ServiceError as exc:
        service_error(request, exc)
    else:
        messages.success(request, "Stopped.")
    return redirect("dash:room", room_id=room.room_id)


class StorageForm(forms.Form):
    endpoint = forms.URLField(
        assume_scheme="https",
        required=False,
        max_length=300,
        help_text="S3-compatible endpoint (MinIO, R2, ...); empty for AWS S3",
    )
    region = forms.CharField(required=False, max_length=64)
    bucket = forms.CharField(
        required=False, max_length=63, help_text="Empty: recordings stay on this server"
    )
    # Not named `prefix`: that is a Form's own attribute.
    key_prefix = forms.CharField(
        required=False, max_length=200, label="Prefix", help_text="Folder inside the bucket"
    )
    access_key = forms.CharField(required=False, max_length=128, label="Access key ID")
    secret = forms.CharField(
        required=False,
        max_length=256,
        label="Secret access key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted, never shown again; leave empty to keep the current one",
    )
    retention_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Keep recordings for (days)",
        help_text="Empty: keep them until deleted",
    )


@dashboard_view(write=Role.ADMIN, nav="recordings")
def storage_settings(request: HttpRequest) -> HttpResponse:
    tenant = request.dash.tenant  # type: ignore[attr-defined]
    current = recording_services.storage_of(tenant)
    if request.method == "POST":
        form = StorageForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                recording_services.update_storage(
                    tenant=tenant,
                    endpoint=data["endpoint"],
                    region=data["region"],
                    bucket=data["bucket"],
                    prefix=data["key_prefix"],
                    access_key=data["access_key"],
                    secret=data["secret"] or None,
                    retention_days=data["retention_days"],
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, "Recording storage saved.")
                return redirect("dash:recording-storage")
    else:
        initial = {}
        if current is not None:
            initial = {
                name: getattr(current, name)
                for name in ("endpoint", "region", "bucket", "access_key", "retention_days")
            }
            initial["key_prefix"] = current.prefix
        form = StorageForm(initial=initial)
    return render(
        request,
        "dashboard/recording_storage.html",
        {
            "form": form,
            "has_secret": bool(current and current.secret_encrypted),
            "uses_s3": bool(current and current.uses_s3),
            "minutes_used": recording_services.minutes_used(tenant),
            "minutes_limit": recording_services.minutes_limit(tenant),
        },
    )
