"""Rooms: the list, create and edit forms, the room's page with its live participants, and
the room's actions (start, stop, delete, moderation)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Membership
from branding.dashboard_selectors import join_base_url
from conferences import access
from conferences.models import Occurrence, Room
from conferences.services import moderation, stage
from conferences.services import rooms as room_services
from conferences.services.errors import NotFound, ServiceError

from ..forms import PRESETS, RoomForm, preset_values
from .base import DashRequest, base_url, confirm_page, confirmed, dashboard_view, service_error

Role = Membership.Role
PAGE_SIZE = 25
SORTS = {
    "created": "created_at",
    "name": "name",
    "start": "start_time",
}
STATUS_CHOICES = [("", "Any status"), ("live", "Live now"), *Room.Status.choices]
TYPE_CHOICES = [("", "Any type"), *Room.RoomType.choices]


def get_room(request: DashRequest, room_id: str) -> Room:
    """The current tenant's room; another tenant's room and a missing one are both 404."""
    try:
        return access.room_for_tenant(tenant=request.dash.tenant, room_id=room_id)
    except NotFound:
        raise Http404("Room not found") from None


@require_GET
@dashboard_view(nav="rooms")
def room_list(request: DashRequest) -> HttpResponse:
    """Search, filter, sort and page the tenant's rooms: a COUNT and one page, whatever the
    number of rooms."""
    q = request.GET.get("q", "").strip()[:100]
    status = request.GET.get("status", "")
    room_type = request.GET.get("type", "")
    sort = request.GET.get("sort", "created")
    order = request.GET.get("order", "desc")
    sort = sort if sort in SORTS else "created"
    order = order if order in ("asc", "desc") else "desc"

    rooms = Room.objects.for_tenant(request.dash.tenant).listed()
    if q:
        rooms = rooms.filter(Q(name__icontains=q) | Q(room_id=q))
    if status == "live":
        rooms = rooms.live()
    elif status in Room.Status.values:
        rooms = rooms.filter(status=status)
    else:
        status = ""
    if room_type in Room.RoomType.values:
        rooms = rooms.filter(room_type=room_type)
    else:
        room_type = ""
    column = F(SORTS[sort])
    primary = column.desc(nulls_last=True) if order == "desc" else column.asc(nulls_last=True)
    rooms = rooms.order_by(primary, "-number" if order == "desc" else "number").only(
        "room_id", "name", "room_type", "media_type", "status", "access_type",
        "max_participants", "start_time", "created_at", "live_since", "deactivated_at",
        "timezone", "tenant_id",
    )  # fmt: skip
    paginator = Paginator(rooms, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = {"q": q, "status": status, "type": room_type, "sort": sort, "order": order}
    return render(
        request,
        "dashboard/rooms/list.html",
        {
            "page": page,
            "query": query,
            "query_string": "&".join(f"{k}={v}" for k, v in query.items() if v),
            "status_choices": STATUS_CHOICES,
            "type_choices": TYPE_CHOICES,
            "sorts": [("created", "Created"), ("name", "Name"), ("start", "Start time")],
            "filtered": bool(q or status or room_type),
        },
    )


def _form_page(
    request: DashRequest, form: RoomForm, room: Room | None, status: int = 200
) -> HttpResponse:
    presets = preset_values(request.dash.tenant.plan.max_participants_per_room)
    return render(
        request,
        "dashboard/rooms/form.html",
        {"form": form, "room": room, "presets": presets, "presets_json": presets},
        status=status,
    )


@dashboard_view(nav="rooms")
def room_create(request: DashRequest) -> HttpResponse:
    tenant = request.dash.tenant
    if request.method == "POST":
        form = RoomForm(request.POST, tenant=tenant)
        if form.is_valid():
            try:
                room = room_services.create_room(tenant=tenant, data=form.payload)
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Room “{room.name}” created.")
                return redirect("dash:room", room_id=room.room_id)
        return _form_page(request, form, None, status=400)
    initial = RoomForm.initial_for(None, tenant)
    preset = request.GET.get("preset", "")
    if preset in PRESETS:
        values = preset_values(tenant.plan.max_participants_per_room)[preset]["values"]
        initial.update({k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                        for k, v in values.items()})  # fmt: skip
    return _form_page(request, RoomForm(initial=initial, tenant=tenant), None)


@dashboard_view(nav="rooms")
def room_edit(request: DashRequest, room_id: str) -> HttpResponse:
    tenant = request.dash.tenant
    room = get_room(request, room_id)
    if request.method == "POST":
        initial = RoomForm.initial_for(room, tenant)
        form = RoomForm(request.POST, initial=initial, tenant=tenant, room=room)
        if form.is_valid():
            try:
                room = room_services.update_room(room=room, data=form.payload)
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, "Settings saved.")
                return redirect("dash:room", room_id=room.room_id)
        return _form_page(request, form, room, status=400)
    form = RoomForm(initial=RoomForm.initial_for(room, tenant), tenant=tenant, room=room)
    return _form_page(request, form, room)


@require_GET
@dashboard_view(nav="rooms")
def room_detail(request: DashRequest, room_id: str) -> HttpResponse:
    room = get_room(request, room_id)
    now = timezone.now()
    occurrences = list(
        Occurrence.objects.filter(room=room, start_time__gte=now - dt.timedelta(days=1))
        .exclude(status=Occurrence.Status.CANCELLED)
        .order_by("start_time")[:10]
    )
    links_base = join_base_url(request.dash.tenant, base_url(request))
    settings_rows = _settings_rows(room)
    return render(
        request,
        "dashboard/rooms/detail.html",
        {
            "room": room,
            "join_url": f"{links_base}/room/{room.room_id}",
            # The host link acts on the room: viewers do not get it.
            "host_url": f"{links_base}/room/{room.room_id}/host/{room.host_secret}"
            if request.dash.can_edit_rooms
            else "",
            # The Callaba-compatible API's secret for hidden (egress-style) participants.
            "hidden_token": room_services.hidden_token(room) if request.dash.can_edit_rooms else "",
            "occurrences": occurrences,
            "settings_rows": settings_rows,
            "live": _participants_context(room),
            "recordings": _recordings(request, room),
            "page_config": {
                "roomId": room.room_id,
                "ws": "/ws/dashboard",
                "participantsUrl": reverse("dash:room-participants", args=[room.room_id]),
            },
        },
    )


def _recordings(request: DashRequest, room: Room) -> list[dict[str, Any]]:
    from .recordings import room_recordings

    return room_recordings(request, room)


def _settings_rows(room: Room) -> list[tuple[str, str]]:
    from ..forms import CHOICE_LABELS, HOST_CONTROL_LABELS, LABELS

    data = room.__dict__
    rows: list[tuple[str, str]] = []
    for key in ("room_type", "media_type", "max_participants", "access_type", "video_quality",
                "timezone", "join_before_minutes"):  # fmt: skip
        value = data.get(key)
        rows.append((LABELS.get(key, key), CHOICE_LABELS.get(key, {}).get(str(value), str(value))))
    flags = [
        LABELS.get(k, k)
        for k in ("chat_enabled", "screen_sharing_enabled", "recording_enabled",
                  "waiting_room_enabled", "audio_only_mode", "allow_webinar_mode")
        if data.get(k)
    ]  # fmt: skip
    rows.append(("Turned on", ", ".join(flags) or "—"))
    controls = [HOST_CONTROL_LABELS[k] for k, on in (room.host_controls or {}).items() if on]
    rows.append(("Host controls", "; ".join(controls) or "—"))
    rows.append(("Auto close", f"{room.auto_close_type}, after {room.auto_close_duration} min"))
    if room.access_type == Room.AccessType.WHITELIST:
        rows.append(("Allowed emails", ", ".join(room.whitelist_emails)))
    return rows


def _participants_context(room: Room) -> dict[str, Any]:
    """Who LiveKit has in the room now; an unreachable LiveKit is a message, not an error."""
    if room.live_since is None:
        return {"live": False, "participants": [], "error": ""}
    try:
        people = room_services.live_participants(room=room)
    except ServiceError as exc:
        return {"live": True, "participants": [], "error": exc.message}
    rows = []
    for p in sorted(people, key=lambda p: p["joined_at"] or 0):
        tracks = p.get("tracks", [])
        rows.append(
            {
                "identity": p["identity"],
                "name": p["name"] or p["identity"],
                "role": p["attributes"].get("role", ""),
                "joined_at": dt.datetime.fromtimestamp(p["joined_at"], dt.UTC)
                if p["joined_at"]
                else None,
                "mic": any(t["source"] == "microphone" and not t["muted"] for t in tracks),
                "camera": any(t["source"] == "camera" and not t["muted"] for t in tracks),
                # Actions address the identity in a URL path segment.
                "actionable": "/" not in p["identity"] and bool(p["identity"].strip()),
            }
        )
    return {"live": True, "participants": rows, "error": ""}


@require_GET
@dashboard_view(nav="rooms")
def room_participants(request: DashRequest, room_id: str) -> HttpResponse:
    """The participants panel alone, for the page's script to refresh it."""
    room = get_room(request, room_id)
    return render(
        request,
        "dashboard/rooms/_participants.html",
        {"room": room, "live": _participants_context(room)},
    )


def _back(room: Room) -> HttpResponse:
    return redirect("dash:room", room_id=room.room_id)


@require_POST
@dashboard_view(write=Role.MEMBER)
def room_start(request: DashRequest, room_id: str) -> HttpResponse:
    room = get_room(request, room_id)
    try:
        room_services.start_room(room=room)
    except ServiceError as exc:
        service_error(request, exc)
    else:
        messages.success(request, "The room is live.")
    return _back(room)


@require_POST
@dashboard_view(write=Role.MEMBER)
def room_stop(request: DashRequest, room_id: str) -> HttpResponse:
    room = get_room(request, room_id)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"End “{room.name}” for everyone?",
            message="Everyone in the room is disconnected. You can start it again later.",
            action_label="End the room",
            cancel_url=reverse("dash:room", args=[room.room_id]),
        )
    try:
        moderation.end_room(room=room)
    except ServiceError as exc:
        service_error(request, exc)
    else:
        messages.success(request, "The room has ended.")
    return _back(room)


@require_POST
@dashboard_view(write=Role.MEMBER)
def room_delete(request: DashRequest, room_id: str) -> HttpResponse:
    room = get_room(request, room_id)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Delete “{room.name}”?",
            message="The room, its schedule and its links are gone for good.",
            action_label="Delete the room",
            cancel_url=reverse("dash:room", args=[room.room_id]),
        )
    try:
        room_services.delete_room(room=room)
    except ServiceError as exc:
        service_error(request, exc)
        return _back(room)
    messages.success(request, f"Room “{room.name}” deleted.")
    return redirect("dash:rooms")


@require_POST
@dashboard_view(write=Role.MEMBER)
def participant_remove(request: DashRequest, room_id: str, identity: str) -> HttpResponse:
    room = get_room(request, room_id)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Remove {identity} from the room?",
            message="They are disconnected at once; they may join again with the link.",
            action_label="Remove",
            cancel_url=reverse("dash:room", args=[room.room_id]),
        )
    try:
        # A member acts as the room's host: the kick switch applies.
        ban = request.POST.get("ban") == "1"
        moderation.remove_participant(room=room, identity=identity, ban=ban)
    except ServiceError as exc:
        service_error(request, exc)
    else:
        messages.success(
            request, f"{identity} was removed{' and banned until the meeting ends' if ban else ''}."
        )
    return _back(room)


@require_POST
@dashboard_view(write=Role.MEMBER)
def room_host_link_rotate(request: DashRequest, room_id: str) -> HttpResponse:
    """A new host link; the old ones and the host sessions they opened stop working."""
    room = get_room(request, room_id)
    if not confirmed(request):
        return confirm_page(
            request,
            title="Make a new host link?",
            message="Every earlier host link stops working, and so do host pages opened with it.",
            action_label="New host link",
            cancel_url=reverse("dash:room", args=[room.room_id]),
        )
    room_services.rotate_host_link(room=room)
    messages.success(request, "A new host link was made: the old ones no longer work.")
    return _back(room)


@require_POST
@dashboard_view(write=Role.MEMBER)
def room_mute_all(request: DashRequest, room_id: str) -> HttpResponse:
    room = get_room(request, room_id)
    kind = request.POST.get("kind", "audio")
    try:
        count = (
            moderation.disable_video(room=room)
            if kind == "video"
            else moderation.mute_all(room=room)
        )
    except ServiceError as exc:
        service_error(request, exc)
    else:
        what = "cameras turned off" if kind == "video" else "microphones muted"
        messages.success(request, f"{count} {what}.")
    return _back(room)


@require_POST
@dashboard_view(write=Role.MEMBER)
def participant_stage(request: DashRequest, room_id: str, identity: str) -> HttpResponse:
    """Promote to the stage, or back to the audience (webinar rooms)."""
    room = get_room(request, room_id)
    action = request.POST.get("action", "promote")
    try:
        if action == "demote":
            stage.demote(room=room, identity=identity)
            text = f"{identity} is back in the audience."
        else:
            stage.promote(room=room, identity=identity, mic_only=request.POST.get("mic") == "1")
            text = f"{identity} is on stage."
    except ServiceError as exc:
        service_error(request, exc)
    else:
        messages.success(request, text)
    return _back(room)
