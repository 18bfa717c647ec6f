"""Browser pages of a room: the join page and the host link."""

from __future__ import annotations

import hmac

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Room


def _room_or_404(room_id: str) -> Room:
    room = Room.objects.select_related("tenant").filter(room_id=room_id).first()
    if room is None:
        raise Http404("Room not found")
    return room


def join_page(request: HttpRequest, room_id: str) -> HttpResponse:
    room = _room_or_404(room_id)
    return render(request, "conferences/join.html", {"room": room, "is_host": False})


def host_page(request: HttpRequest, room_id: str, secret: str) -> HttpResponse:
    room = _room_or_404(room_id)
    if not hmac.compare_digest(room.host_secret.encode(), secret.encode()):
        raise Http404("Room not found")
    return render(request, "conferences/join.html", {"room": room, "is_host": True})
