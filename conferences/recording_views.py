"""Recording pages: signed downloads, HLS files and the watch page, the recording template.

* `/recordings/<id>/download?token=...`: a local recording's file, for a signed link the API
  or the dashboard handed out (bad or foreign link 404, expired link 403).
* `/hls/<id>/<file>`: a local HLS stream's playlists and segments (the id is a 96-bit random
  public id, like any player URL of a live stream); `/watch/<id>`: a page with a `<video>`.
* `/recording-template/<room_id>?layout=..&sig=..`: the page LiveKit egress opens for layouts
  with chat and for branded recordings; it joins with a hidden, subscribe-only token.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.shortcuts import render
from django.views.decorators.http import require_GET

from branding.selectors import brand_for_room
from conferences import livekit
from conferences.models import Recording
from conferences.services import recordings as recording_services
from conferences.services.errors import Forbidden, NotFound
from parley import headers

HLS_FILE = re.compile(r"^[A-Za-z0-9_.-]{1,100}\.(m3u8|ts|m4s|mp4)$")
HLS_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "ts": "video/mp2t",
    "m4s": "video/iso.segment",
    "mp4": "video/mp4",
}


@require_GET
def download(request: HttpRequest, recording_id: str) -> HttpResponseBase:
    try:
        found = recording_services.resolve_download(
            recording_id=recording_id, token=request.GET.get("token", "")
        )
    except NotFound:
        return JsonResponse({"error": "Recording not found"}, status=404)
    except Forbidden as exc:
        return JsonResponse({"error": exc.message}, status=403)
    response = FileResponse(found.path.open("rb"), as_attachment=True, filename=found.filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _stream(recording_id: str) -> Recording:
    stream = Recording.objects.filter(recording_id=recording_id, kind=Recording.Kind.HLS).first()
    if stream is None:
        raise Http404("Stream not found")
    return stream


@require_GET
def hls_file(request: HttpRequest, recording_id: str, name: str) -> HttpResponseBase:
    match = HLS_FILE.match(name)
    if match is None:
        raise Http404("Not found")
    folder = recording_services.hls_folder(_stream(recording_id))
    path = folder / name if folder is not None else None
    if path is None or not path.is_file():
        raise Http404("Not found")
    response = FileResponse(path.open("rb"), content_type=HLS_TYPES[match.group(1)])
    # Live playlists change every segment; segments never do.
    response["Cache-Control"] = "no-cache" if name.endswith(".m3u8") else "max-age=3600"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def watch(request: HttpRequest, recording_id: str) -> HttpResponse:
    stream = _stream(recording_id)
    base = settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")
    room = stream.room
    playlist = recording_services.playlist_url(stream, base_url=base)
    response = render(
        request,
        "conferences/watch.html",
        {
            "stream": stream,
            "title": room.name if room else "Live stream",
            "brand": brand_for_room(room) if room else None,
            "config": {
                "playlistUrl": playlist,
                "status": stream.status,
                "live": stream.is_active,
            },
        },
    )
    # The player reads the playlist and its segments where they are (an S3 store, say).
    return headers.allow(response, connect=[playlist], media=[playlist])


@require_GET
def recording_template(request: HttpRequest, room_id: str) -> HttpResponse:
    room = recording_services.room_for_template(room_id=room_id, sig=request.GET.get("sig", ""))
    if room is None:
        raise Http404("Not found")
    layout = request.GET.get("layout", "grid")
    if layout not in recording_services.LAYOUTS:
        layout = "grid"
    grid_size = request.GET.get("grid_size", "")
    priority = request.GET.get("priority", "SPEAKER")
    token = livekit.mint_recorder_token(room=room.livekit_name, identity=f"recorder-{room_id}")
    ws_url = settings.RECORDING_TEMPLATE_LIVEKIT_URL or settings.LIVEKIT_URL
    response = render(
        request,
        "conferences/recording_template.html",
        {
            "room": room,
            "brand": brand_for_room(room),
            "config": {
                "wsUrl": ws_url,
                "token": token,
                "layout": layout,
                "chat": layout == "grid+chat",
                # At most this many tiles (VideoSDK gridSize); 0: everyone.
                "gridSize": int(grid_size) if grid_size in ("1", "2", "3", "4") else 0,
                # SPEAKER: active speakers first; PIN: hosts (pinned by role) first.
                "priority": "PIN" if priority == "PIN" else "SPEAKER",
                "light": request.GET.get("theme") == "LIGHT",
            },
        },
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return headers.allow(response, connect=headers.livekit_sources(ws_url))
