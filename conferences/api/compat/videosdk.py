"""The VideoSDK-compatible rooms API (reference/videosdk-create-room.txt): `/v2/rooms`, and
the sessions API its room object links to (`/v2/sessions/`), read from RoomSession and
Attendance.

A thin facade over the same services as /api/v1/: a room created here is the same room
everywhere in Parley (its v1 `room_id`, its join page), and `roomId` is the room's
VideoSDK-shaped public id (`meeting_id`). Authenticated with `Authorization: <JWT>` (no
prefix) signed with one of the tenant's signing keys, or with a Parley API key (`pk_...`);
the plan's rate limit and X-RateLimit-* headers apply as in v1 (TenantAPIView). Errors are
VideoSDK's `{"statusCode", "error", "message"}`.
"""

from __future__ import annotations

import logging
import math
import re
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from rest_framework import authentication, exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import signing_keys
from accounts.models import Tenant
from accounts.services import authenticate_api_key
from conferences import selectors
from conferences.models import Room, RoomSession
from conferences.services import moderation
from conferences.services import rooms as room_services
from conferences.services.errors import ServiceError

from ..auth import TenantAPIView, count_failure, refuse_if_failing
from ..errors import AuthThrottled
from ..v1.serializers import AutoCloseField

logger = logging.getLogger(__name__)

# The reference's webhook event types, in its order.
WEBHOOK_EVENTS = tuple(
    """participant-joined participant-left session-started session-ended recording-starting
    recording-started recording-stopping recording-stopped recording-failed
    participant-recording-starting participant-recording-started participant-recording-stopping
    participant-recording-stopped participant-recording-failed
    participant-track-recording-starting participant-track-recording-started
    participant-track-recording-stopping participant-track-recording-stopped
    participant-track-recording-failed transcription-completed livestream-starting
    livestream-started livestream-stopping livestream-stopped livestream-failed hls-starting
    hls-started hls-playable hls-stopping hls-stopped hls-failed""".split()
)
LAYOUTS = {
    "GRID": Room.RecordingLayout.GRID,
    "SPOTLIGHT": Room.RecordingLayout.SINGLE_SPEAKER,
    "SIDEBAR": Room.RecordingLayout.SPEAKER,
}
PRIORITIES = ("SPEAKER", "PIN")
THEMES = ("DARK", "LIGHT", "DEFAULT")
MODES = ("video-and-audio", "audio")
QUALITIES = ("low", "med", "high")
ORIENTATIONS = ("portrait", "landscape")
MAX_GRID_SIZE = 4
PER_PAGE_MAX = 100
SESSION_STATUSES = ("ongoing", "ended")
NO_TRANSCRIPTION = "transcription is not available on this server"
_url = URLValidator(schemes=["http", "https"])
_ROOM_ID = re.compile(r"[a-z]{4}-[a-z]{4}-[a-z]{4}")


class VideoSdkError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _bad(message: str) -> VideoSdkError:
    return VideoSdkError(400, message)


# --- authentication -----------------------------------------------------------------------------


class VideoSdkAuthentication(authentication.BaseAuthentication):
    """`Authorization: <JWT>` (no prefix) signed with one of the tenant's signing keys, or a
    Parley API key `pk_...` in the same header. request.tenant is the key's tenant."""

    def authenticate(self, request: Request) -> tuple[None, object] | None:
        raw = request.headers.get("Authorization", "").strip()
        if raw[:7].lower() == "bearer ":  # tolerated, though VideoSDK sends none
            raw = raw[7:].strip()
        if not raw:
            raise VideoSdkError(401, "Send your token in the Authorization header, no prefix")
        refuse_if_failing(request)
        if raw.startswith("pk_"):
            api_key = authenticate_api_key(raw)
            if api_key is None:
                count_failure(request)
                raise VideoSdkError(401, "Invalid or revoked API key")
            request.tenant = api_key.tenant  # type: ignore[attr-defined]
            return (None, api_key)
        try:
            verified = signing_keys.verify_token(raw)
        except signing_keys.TokenRejected as exc:
            if exc.status == 401:
                count_failure(request)
            raise VideoSdkError(exc.status, exc.message) from None
        if verified.is_participant_token:
            raise VideoSdkError(
                403, "A participant token (roomId/participantId) cannot call the rooms API"
            )
        if verified.roles is not None and "crawler" not in verified.roles:
            raise VideoSdkError(403, "The token's roles do not allow API calls (add 'crawler')")
        request.tenant = verified.tenant  # type: ignore[attr-defined]
        return (None, verified)

    def authenticate_header(self, request: Request) -> str:
        return 'JWT realm="api"'


# --- output -------------------------------------------------------------------------------------


def _iso_millis(value: Any) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_or_none(value: Any) -> str | None:
    return None if value is None else _iso_millis(value)


def room_to_videosdk(room: Room, tenant: Tenant, base_url: str) -> dict[str, Any]:
    return {
        "roomId": room.meeting_id,
        "customRoomId": room.custom_room_id or None,
        "userId": tenant.public_id,
        "disabled": room.deactivated_at is not None,
        "createdAt": _iso_millis(room.created_at),
        "updatedAt": _iso_millis(room.updated_at),
        "id": room.object_id,  # 24 hex, like VideoSDK's; the same as Callaba's `_id`
        "links": {
            "get_room": f"{base_url}/v2/rooms/{room.meeting_id}",
            "get_session": f"{base_url}/v2/sessions/",
        },
    }


def session_to_videosdk(session: RoomSession, base_url: str) -> dict[str, Any]:
    """VideoSDK's session object. `session.room` and `session.attendances` should be loaded
    already (selectors.with_attendance), or this costs two queries."""
    room = session.room
    return {
        "id": session.session_id,
        "roomId": room.meeting_id,
        "customRoomId": room.custom_room_id or None,
        "start": _iso_millis(session.started_at),
        "end": _iso_or_none(session.ended_at),
        "status": "ongoing" if session.ended_at is None else "ended",
        "participants": [
            {
                "participantId": attendee.identity,
                "name": attendee.name,
                "timelog": [
                    {"start": _iso_millis(stay.joined_at), "end": _iso_or_none(stay.left_at)}
                    for stay in attendee.stays
                ],
            }
            for attendee in selectors.attendees(session)
        ],
        "links": {
            "get_room": f"{base_url}/v2/rooms/{room.meeting_id}",
            "get_session": f"{base_url}/v2/sessions/{session.session_id}",
        },
    }


# --- input --------------------------------------------------------------------------------------


def _object(value: Any, name: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{name} must be an object")
    for key in value:
        if key not in allowed:
            raise _bad(f"{name}.{key} is not a known field")
    return value


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices or not isinstance(value, str):
        raise _bad(f"{name} must be one of: {', '.join(choices)}")
    return value


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise _bad(f"{name} must be true or false")


def _text(value: Any, name: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{name} must be a non-empty string")
    if len(value) > max_length or not value.isprintable():
        raise _bad(f"{name} must be at most {max_length} printable characters")
    return value


def _http_url(value: Any, name: str) -> str:
    text = _text(value, name, 500)
    try:
        _url(text)
    except DjangoValidationError:
        raise _bad(f"{name} must be an http(s) URL") from None
    return text


def _webhook(value: Any) -> tuple[str, list[str]]:
    data = _object(value, "webhook", ("endPoint", "events"))
    # Any http(s) URL is stored; the outbound delivery refuses private or loopback targets.
    url = _http_url(data.get("endPoint"), "webhook.endPoint")
    events = data.get("events")
    if not isinstance(events, list) or not events:
        raise _bad("webhook.events must be a non-empty list of event types")
    chosen: list[str] = []
    for event in events:
        if not isinstance(event, str) or event not in WEBHOOK_EVENTS:
            shown = event[:64] if isinstance(event, str) else repr(event)[:64]
            raise _bad(f"webhook.events has an unknown event '{shown}'")
        if event not in chosen:
            chosen.append(event)
    return url, chosen


def _auto_close(value: Any) -> dict[str, Any]:
    # The rules are v1's auto_close_config (one validation path), in VideoSDK's words.
    try:
        return AutoCloseField().to_internal_value(value)
    except serializers.ValidationError as exc:
        message = str(exc.detail[0]) if isinstance(exc.detail, list) else str(exc.detail)
        raise _bad(
            message.replace("The 'auto_close_config", "autoCloseConfig").replace("'", "")
        ) from None


def _transcription(value: Any, name: str) -> None:
    data = _object(value, name, ("enabled", "summary"))
    enabled = _flag(data.get("enabled", False), f"{name}.enabled")
    summary_enabled = False
    if "summary" in data:
        summary = _object(data["summary"], f"{name}.summary", ("enabled", "prompt"))
        summary_enabled = _flag(summary.get("enabled", False), f"{name}.summary.enabled")
        if "prompt" in summary:
            _text(summary["prompt"], f"{name}.summary.prompt", 2000)
    if enabled or summary_enabled:
        raise _bad(NO_TRANSCRIPTION)


def _egress_options(value: Any, name: str, *, hls: bool) -> tuple[str, dict[str, Any]]:
    """(layout, options) of autoStartConfig.recording / .hls in Parley's vocabulary (the
    shared Room.recording_options keys)."""
    allowed = ("templateUrl", "transcription", "config") + (() if hls else ("awsDirPath",))
    data = _object(value, name, allowed)
    if "transcription" in data:
        _transcription(data["transcription"], f"{name}.transcription")
    if "templateUrl" in data:
        _http_url(data["templateUrl"], f"{name}.templateUrl")
        raise _bad(
            f"{name}.templateUrl: custom templates are not available on this server; "
            "use config.layout"
        )
    options: dict[str, Any] = {}
    layout = Room.RecordingLayout.GRID
    config_keys = ("layout", "theme", "mode", "quality", "orientation")
    config = _object(
        data.get("config", {}), f"{name}.config", config_keys + (("recording",) if hls else ())
    )
    if "layout" in config:
        shape = _object(config["layout"], f"{name}.config.layout", ("type", "priority", "gridSize"))
        if "type" in shape:
            layout = LAYOUTS[_choice(shape["type"], f"{name}.config.layout.type", tuple(LAYOUTS))]
        if "priority" in shape:
            options["priority"] = _choice(
                shape["priority"], f"{name}.config.layout.priority", PRIORITIES
            )
        if "gridSize" in shape:
            size = shape["gridSize"]
            if (
                isinstance(size, bool)
                or not isinstance(size, int)
                or not 1 <= size <= MAX_GRID_SIZE
            ):
                raise _bad(f"{name}.config.layout.gridSize must be an integer from 1 to 4")
            options["grid_size"] = size
    if "theme" in config:
        options["theme"] = _choice(config["theme"], f"{name}.config.theme", THEMES)
    if "mode" in config:
        options["audio_only"] = _choice(config["mode"], f"{name}.config.mode", MODES) == "audio"
    if "quality" in config:
        options["quality"] = _choice(config["quality"], f"{name}.config.quality", QUALITIES)
    if "orientation" in config:
        options["orientation"] = _choice(
            config["orientation"], f"{name}.config.orientation", ORIENTATIONS
        )
    if "recording" in config:
        recording = _object(config["recording"], f"{name}.config.recording", ("enabled",))
        if _flag(recording.get("enabled", False), f"{name}.config.recording.enabled"):
            raise _bad(
                f"{name}.config.recording: recording an HLS stream is not available on this "
                "server; use autoStartConfig.recording"
            )
    if "awsDirPath" in data:
        prefix = _text(data["awsDirPath"], f"{name}.awsDirPath", 300)
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise _bad(f"{name}.awsDirPath must be a relative path without '..'")
        options["prefix"] = prefix
    return layout, options


def parse_create(body: Any) -> dict[str, Any]:
    """Validated POST /v2/rooms body -> data for the rooms service (Parley's vocabulary)."""
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object")
    allowed = ("customRoomId", "webhook", "autoCloseConfig", "autoStartConfig")
    for key in body:
        if key not in allowed:
            raise _bad(f"{str(key)[:64]} is not a known field")
    data: dict[str, Any] = {}
    if body.get("customRoomId") is not None:
        data["custom_room_id"] = _text(body["customRoomId"], "customRoomId", 100).strip()
        data["name"] = data["custom_room_id"]  # else the service names it by its roomId
    if body.get("webhook") is not None:
        data["webhook_url"], data["webhook_events"] = _webhook(body["webhook"])
    if body.get("autoCloseConfig") is not None:
        data["auto_close_config"] = _auto_close(body["autoCloseConfig"])
    if body.get("autoStartConfig") is not None:
        start = _object(body["autoStartConfig"], "autoStartConfig", ("recording", "hls"))
        if start.get("recording") is not None:
            layout, options = _egress_options(
                start["recording"], "autoStartConfig.recording", hls=False
            )
            data.update(recording_enabled=True, recording_layout=layout, recording_options=options)
        if start.get("hls") is not None:
            layout, options = _egress_options(start["hls"], "autoStartConfig.hls", hls=True)
            data["hls_options"] = {**options, "layout": str(layout)}
    return data


# --- views --------------------------------------------------------------------------------------


class VideoSdkView(TenantAPIView):
    authentication_classes = [VideoSdkAuthentication]

    def handle_exception(self, exc: Exception) -> Response:
        headers: dict[str, str] = {}
        if isinstance(exc, VideoSdkError):
            status, message = exc.status, exc.message
        elif isinstance(exc, ServiceError):
            status, message = exc.status, exc.message
        elif isinstance(exc, exceptions.ParseError):
            status, message = 400, "Request body is not valid JSON"
        elif isinstance(exc, AuthThrottled):
            status, message = 429, str(exc.detail)
            headers["Retry-After"] = str(int(getattr(exc, "wait", None) or 1))
        elif isinstance(exc, exceptions.Throttled):
            status, message = 429, "Too many requests: the plan's hourly limit is reached"
            wait = getattr(exc, "wait", None)  # set by DRF on Throttled
            if wait:
                headers["Retry-After"] = str(int(wait))
        elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            status, message = 401, "Send your token in the Authorization header, no prefix"
        elif isinstance(exc, exceptions.APIException):
            status, message = exc.status_code, str(exc.detail)
        else:
            logger.exception("VideoSDK-compatible API crashed")
            status, message = 500, "Internal server error"
        if status == 401:
            headers["WWW-Authenticate"] = 'JWT realm="api"'
        return Response(
            {"statusCode": status, "error": HTTPStatus(status).phrase, "message": message},
            status=status,
            headers=headers,
        )

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if any("\x00" in str(value) for value in kwargs.values()):
            raise VideoSdkError(404, "Room not found")

    def base_url(self, request: Request) -> str:
        return settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")

    def body(self, request: Request) -> Any:
        if request.META.get("CONTENT_LENGTH", "0") in ("", "0"):
            return {}
        if request.content_type.split(";")[0].strip() != "application/json":
            raise VideoSdkError(415, "Send the body as JSON with Content-Type: application/json")
        return request.data

    def room(self, request: Request, room_id: Any) -> Room:
        """The caller's room by roomId; another tenant's room and a missing one are 404."""
        room = None
        if isinstance(room_id, str) and _ROOM_ID.fullmatch(room_id):
            room = (
                Room.objects.for_tenant(self.tenant(request))
                .listed()
                .filter(meeting_id=room_id)
                .first()
            )
        if room is None:
            raise VideoSdkError(404, "Room not found")
        return room

    def answer(self, request: Request, room: Room) -> Response:
        return Response(room_to_videosdk(room, self.tenant(request), self.base_url(request)))


def _page_param(request: Request, name: str, default: int, maximum: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= (maximum or 10**9):
        bound = f"from 1 to {maximum}" if maximum else "of at least 1"
        raise _bad(f"{name} must be an integer {bound}")
    return int(raw)


def _page_info(page: int, per_page: int, total: int) -> dict[str, int]:
    return {
        "currentPage": page,
        "perPage": per_page,
        "lastPage": max(1, math.ceil(total / per_page)),
        "total": total,
    }


class RoomsView(VideoSdkView):
    def post(self, request: Request) -> Response:
        data = parse_create(self.body(request))
        room, _created = room_services.create_or_get_room(tenant=self.tenant(request), data=data)
        return self.answer(request, room)

    def get(self, request: Request) -> Response:
        page = _page_param(request, "page", 1, None)
        per_page = _page_param(request, "perPage", 20, PER_PAGE_MAX)
        rooms = Room.objects.for_tenant(self.tenant(request)).listed()
        # Two queries whatever the page size: COUNT(*) and the page, newest first.
        total = rooms.count()
        start = (page - 1) * per_page
        found = list(rooms.order_by("-created_at", "-number")[start : start + per_page])
        base = self.base_url(request)
        return Response(
            {
                "pageInfo": _page_info(page, per_page, total),
                "data": [room_to_videosdk(room, self.tenant(request), base) for room in found],
            }
        )


class RoomView(VideoSdkView):
    def get(self, request: Request, room_id: str) -> Response:
        return self.answer(request, self.room(request, room_id))


class ValidateView(VideoSdkView):
    def get(self, request: Request, room_id: str) -> Response:
        room = self.room(request, room_id)
        if room.deactivated_at is not None:
            raise VideoSdkError(404, "Room has been deactivated")
        return self.answer(request, room)


class DeactivateView(VideoSdkView):
    def post(self, request: Request) -> Response:
        body = self.body(request)
        if not isinstance(body, dict):
            raise _bad("Request body must be a JSON object")
        for key in body:
            if key != "roomId":
                raise _bad(f"{str(key)[:64]} is not a known field")
        room_id = body.get("roomId")
        if not isinstance(room_id, str) or not room_id:
            raise _bad("roomId is required")
        room = moderation.deactivate_room(room=self.room(request, room_id))
        return self.answer(request, room)


class SessionsView(VideoSdkView):
    """The tenant's sessions, newest first; `roomId` / `customRoomId` name one room (404 if
    it is not the caller's), `status` is `ongoing` or `ended`."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        page = _page_param(request, "page", 1, None)
        per_page = _page_param(request, "perPage", 20, PER_PAGE_MAX)
        status = params.get("status") or None
        if status is not None:
            _choice(status, "status", SESSION_STATUSES)
        sessions = selectors.tenant_sessions(self.tenant(request))
        room_id = params.get("roomId") or None
        custom_room_id = params.get("customRoomId") or None
        if room_id is not None or custom_room_id is not None:
            rooms = Room.objects.for_tenant(self.tenant(request)).listed()
            if room_id is not None:
                if not _ROOM_ID.fullmatch(room_id):
                    raise VideoSdkError(404, "Room not found")
                rooms = rooms.filter(meeting_id=room_id)
            if custom_room_id is not None:
                if "\x00" in custom_room_id or len(custom_room_id) > 100:
                    raise VideoSdkError(404, "Room not found")  # no such customRoomId
                rooms = rooms.filter(custom_room_id=custom_room_id)
            room = rooms.first()
            if room is None:
                raise VideoSdkError(404, "Room not found")
            sessions = sessions.filter(room=room)
        if status is not None:
            sessions = sessions.filter(ended_at__isnull=status == "ongoing")
        # COUNT(*), the page with its rooms, and the page's attendances: three queries
        # whatever the page size (plus one for the room when roomId/customRoomId is given).
        total = sessions.count()
        start = (page - 1) * per_page
        found = selectors.with_attendance(sessions.order_by("-started_at", "-pk"))[
            start : start + per_page
        ]
        base = self.base_url(request)
        return Response(
            {
                "pageInfo": _page_info(page, per_page, total),
                "data": [session_to_videosdk(session, base) for session in found],
            }
        )


class SessionView(VideoSdkView):
    def get(self, request: Request, session_id: str) -> Response:
        session = (
            selectors.with_attendance(selectors.tenant_sessions(self.tenant(request)))
            .filter(session_id=session_id)
            .first()
        )
        if session is None:
            raise VideoSdkError(404, "Session not found")
        return Response(session_to_videosdk(session, self.base_url(request)))


class NotFoundView(VideoSdkView):
    def get(self, request: Request, rest: str = "") -> Response:
        raise VideoSdkError(404, "Not found")

    post = get
