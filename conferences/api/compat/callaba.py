"""The Callaba Engine video-calls API (reference/callaba-video-calls.txt), served exactly:
paths, bodies, field names, value vocabularies and response shapes. A thin facade over the
same services as /api/v1/: a room made here is the same room in v1, the dashboard and the
join pages.

Control plane (`/api/conferences/*`): `x-access-token: <tenant API key>`, the plan's hourly
allowance and `X-RateLimit-*` headers, as every X-API-Key view. Public join helpers
(`/api/conferences-public/*`): no key needed (a browser calls them), but a sent key must be
valid and then scopes the lookup to its tenant; they follow the room's policy and the join
page's per-address limit.

Vocabularies: `mediaType` MEDIA_TYPE_VIDEO_AUDIO|VIDEO_ONLY|AUDIO_ONLY <-> media_type
both|video|audio; `record` <-> recording_enabled; `record_mode` ROOM_COMPOSITE_GRID|SPEAKER|
AND_CHAT <-> recording_layout grid|speaker|grid+chat; `allow_chat` <-> chat_enabled;
`allow_share_screen` <-> screen_sharing_enabled; `active` <-> the room is open to join
(start_room / stop_room); `_id`/`id` <-> Room.object_id; `sid` <-> the LiveKit room sid
while live. Errors: `{"success": false, "message": "..."}`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest, JsonResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from branding.dashboard_selectors import join_base_url
from conferences import access
from conferences.models import Participant, Room
from conferences.roles import STAGE_ROLES, Role, default_role
from conferences.services import lobby
from conferences.services import rooms as room_services
from conferences.services.errors import LockedOut, ServiceError
from parley.clientip import client_ip

from ..auth import ApiKeyAuthentication, TenantAPIView, request_tenant
from ..errors import AuthThrottled
from ..v1.serializers import RoomInputSerializer

logger = logging.getLogger(__name__)

# --- vocabularies -----------------------------------------------------------------------------

MEDIA_TYPES = {
    "MEDIA_TYPE_VIDEO_AUDIO": Room.MediaType.BOTH,
    "MEDIA_TYPE_VIDEO_ONLY": Room.MediaType.VIDEO,
    "MEDIA_TYPE_AUDIO_ONLY": Room.MediaType.AUDIO,
}
MEDIA_TYPE_NAMES = {value: name for name, value in MEDIA_TYPES.items()}
RECORD_MODES = {
    "ROOM_COMPOSITE_GRID": Room.RecordingLayout.GRID,
    "ROOM_COMPOSITE_SPEAKER": Room.RecordingLayout.SPEAKER,
    "ROOM_COMPOSITE_AND_CHAT": Room.RecordingLayout.GRID_CHAT,
}
# Parley's single-speaker layout (VideoSDK's SPOTLIGHT) has no Callaba word: the nearest.
RECORD_MODE_NAMES = {
    Room.RecordingLayout.GRID: "ROOM_COMPOSITE_GRID",
    Room.RecordingLayout.SPEAKER: "ROOM_COMPOSITE_SPEAKER",
    Room.RecordingLayout.SINGLE_SPEAKER: "ROOM_COMPOSITE_SPEAKER",
    Room.RecordingLayout.GRID_CHAT: "ROOM_COMPOSITE_AND_CHAT",
}
# Callaba field -> v1 field, for the fields whose values need no translation.
PLAIN_FIELDS = {
    "name": "name",
    "max_participants": "max_participants",
    "allow_webinar_mode": "allow_webinar_mode",
    "allow_chat": "chat_enabled",
    "allow_share_screen": "screen_sharing_enabled",
    "record": "recording_enabled",
}
V1_NAMES = {
    **{v1: callaba for callaba, v1 in PLAIN_FIELDS.items()},
    "media_type": "mediaType",
    "recording_layout": "record_mode",
}
# Output-only fields a client may send back with an update (the whole room object): ignored,
# like `user_id` (the owner is the key's tenant, as the reference says the backend injects it).
IGNORED_FIELDS = {"_id", "user_id", "sid", "created", "modified", "success"}
SORT_FIELDS = {"created": "created_at", "modified": "updated_at", "name": "name"}
FILTER_FIELDS = {
    "_id",
    "id",
    "name",
    "mediaType",
    "max_participants",
    "allow_webinar_mode",
    "allow_chat",
    "allow_share_screen",
    "record",
    "record_mode",
    "active",
}
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")
_IDENTITY = re.compile(r"[A-Za-z0-9\-_.@:]{1,128}")


class RoomObject(TypedDict):
    _id: str
    id: str
    name: str
    user_id: str
    mediaType: str
    allow_webinar_mode: bool
    allow_chat: bool
    allow_share_screen: bool
    record: bool
    record_mode: str
    max_participants: int
    sid: str
    active: bool
    created: str
    modified: str
    success: bool


def _timestamp(value: dt.datetime) -> str:
    """ISO 8601 UTC with milliseconds and Z, as Mongo/JS print dates."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def is_active(room: Room) -> bool:
    """Callaba's `active`: the room is open to join (started, not stopped or deactivated)."""
    return room.status == Room.Status.ACTIVE and room.deactivated_at is None


def _active_q(active: bool) -> Q:
    q = Q(status=Room.Status.ACTIVE, deactivated_at__isnull=True)
    return q if active else ~q


def room_object(room: Room, owner: str) -> RoomObject:
    return {
        "_id": room.object_id,
        "id": room.object_id,
        "name": room.name,
        "user_id": owner,
        "mediaType": MEDIA_TYPE_NAMES[Room.MediaType(room.media_type)],
        "allow_webinar_mode": room.allow_webinar_mode,
        "allow_chat": room.chat_enabled,
        "allow_share_screen": room.screen_sharing_enabled,
        "record": room.recording_enabled,
        "record_mode": RECORD_MODE_NAMES[Room.RecordingLayout(room.recording_layout)],
        "max_participants": room.max_participants,
        "sid": room.livekit_sid if room.live_since is not None else "",
        "active": is_active(room),
        "created": _timestamp(room.created_at),
        "modified": _timestamp(room.updated_at),
        "success": True,
    }


# --- authentication ---------------------------------------------------------------------------


class AccessTokenAuthentication(ApiKeyAuthentication):
    """Callaba's `x-access-token` header carries a Parley tenant API key."""

    header = "x-access-token"

    def authenticate_header(self, request: Request) -> str:
        return 'APIKey header="x-access-token"'


class OptionalAccessTokenAuthentication(AccessTokenAuthentication):
    """For the public helpers: no header is an anonymous browser; a sent one must be valid."""

    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        if not request.headers.get(self.header, ""):
            return None
        return super().authenticate(request)


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = AccessTokenAuthentication
    name = "CallabaAccessToken"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "apiKey", "in": "header", "name": "x-access-token"}


class OptionalAccessTokenScheme(AccessTokenScheme):
    target_class = OptionalAccessTokenAuthentication
    name = "CallabaOptionalAccessToken"


# --- errors and bodies ------------------------------------------------------------------------


class CallabaError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _bad(message: str) -> CallabaError:
    return CallabaError(400, message)


class CallabaView(TenantAPIView):
    """Base of the control-plane views: x-access-token, plan throttle, Callaba errors."""

    authentication_classes = [AccessTokenAuthentication]

    def handle_exception(self, exc: Exception) -> Response:
        retry_after: int | None = None
        if isinstance(exc, CallabaError):
            status, message = exc.status, exc.message
        elif isinstance(exc, ServiceError):
            status, message = exc.status, exc.message
            if isinstance(exc, LockedOut):
                retry_after = exc.retry_after
        elif isinstance(exc, exceptions.ParseError):
            status, message = 400, "Request body is not valid JSON"
        elif isinstance(exc, exceptions.UnsupportedMediaType):
            status, message = 400, "Send the body as JSON with Content-Type: application/json"
        elif isinstance(exc, AuthThrottled):
            status, message = 429, str(exc.detail)
            retry_after = int(getattr(exc, "wait", None) or 1)
        elif isinstance(exc, exceptions.Throttled):
            status, message = 429, "Too many requests: your plan's hourly limit is reached"
            wait = getattr(exc, "wait", None)
            retry_after = int(wait) if wait else None
        elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            status, message = 401, "Missing or invalid x-access-token: send a Parley API key"
        elif isinstance(exc, exceptions.APIException):
            status, message = exc.status_code, str(exc.detail)
        else:
            logger.exception("Callaba API crashed")
            status, message = 500, "Internal server error"
        response = Response({"success": False, "message": message}, status=status)
        if retry_after:
            response["Retry-After"] = str(retry_after)
        return response

    def body(self, request: Request) -> dict[str, Any]:
        data = request.data
        if not isinstance(data, dict):
            raise _bad("Request body must be a JSON object")
        return data

    def room_id(self, data: dict[str, Any], name: str = "id") -> str:
        value = data.get(name)
        if value is None:
            raise _bad(f"{name} is required")
        if not isinstance(value, str):
            raise _bad(f"{name} must be a string")
        return value

    def get_room(self, request: Request, object_id: str) -> Room:
        """The caller's room; another tenant's room and a missing one look the same (404)."""
        room = None
        if _OBJECT_ID.fullmatch(object_id):
            room = (
                Room.objects.for_tenant(request_tenant(request))
                .listed()
                .filter(object_id=object_id)
                .first()
            )
        if room is None:
            raise CallabaError(404, "Room not found")
        return room

    def room_response(self, request: Request, room: Room) -> Response:
        return Response(room_object(room, request_tenant(request).public_id))


def _settings(
    data: dict[str, Any], *, request: Request, room: Room | None, skip: set[str]
) -> tuple[dict[str, Any], bool | None]:
    """Callaba's room fields -> validated v1 settings (the one validation path for room
    settings: RoomInputSerializer) and the `active` intent. Unknown fields are a 400."""
    v1: dict[str, Any] = {}
    active: bool | None = None
    for key, value in data.items():
        if key in IGNORED_FIELDS or key in skip:
            continue
        if key in PLAIN_FIELDS:
            v1[PLAIN_FIELDS[key]] = value
        elif key == "mediaType":
            if not isinstance(value, str) or value not in MEDIA_TYPES:
                raise _bad(f"mediaType must be one of: {', '.join(MEDIA_TYPES)}")
            v1["media_type"] = MEDIA_TYPES[value]
        elif key == "record_mode":
            if not isinstance(value, str) or value not in RECORD_MODES:
                raise _bad(f"record_mode must be one of: {', '.join(RECORD_MODES)}")
            v1["recording_layout"] = RECORD_MODES[value]
        elif key == "active":
            if not isinstance(value, bool):
                raise _bad("active must be true or false")
            active = value
        else:
            raise _bad(f"Unknown field '{str(key)[:64]}'")
    serializer = RoomInputSerializer(
        data=v1,
        partial=room is not None,
        context={"tenant": request_tenant(request), "instance": room},
    )
    if not serializer.is_valid():
        raise _bad(_first_error(serializer.errors))
    return dict(serializer.validated_data), active


def _first_error(errors: Any) -> str:
    """The first v1 validation message, in Callaba's field names."""
    field, messages = next(iter(errors.items()))
    message = str(messages[0] if isinstance(messages, list) else messages)
    for v1_name, callaba_name in V1_NAMES.items():
        message = message.replace(f"'{v1_name}'", f"'{callaba_name}'")
    name = V1_NAMES.get(field, field)
    if field == "non_field_errors" or f"'{name}'" in message:
        return message
    return f"{name}: {message}"


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(f"filter.{name} must be true or false")
    return value


def _filtered(request: Request, data: dict[str, Any]):
    """The tenant's rooms matching `filter` (equality on room-object fields)."""
    spec = data.get("filter", {})
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise _bad("filter must be an object")
    rooms = Room.objects.for_tenant(request_tenant(request)).listed()
    for key, value in spec.items():
        if key not in FILTER_FIELDS:
            raise _bad(
                f"filter.{str(key)[:64]} is not supported: "
                f"filter on {', '.join(sorted(FILTER_FIELDS))}"
            )
        if key in ("_id", "id"):
            if not isinstance(value, str):
                raise _bad(f"filter.{key} must be a string")
            rooms = rooms.filter(object_id=value)
        elif key == "name":
            if not isinstance(value, str) or "\x00" in value:
                raise _bad("filter.name must be a string")
            rooms = rooms.filter(name=value)
        elif key == "mediaType":
            if not isinstance(value, str) or value not in MEDIA_TYPES:
                raise _bad(f"filter.mediaType must be one of: {', '.join(MEDIA_TYPES)}")
            rooms = rooms.filter(media_type=MEDIA_TYPES[value])
        elif key == "record_mode":
            if not isinstance(value, str) or value not in RECORD_MODES:
                raise _bad(f"filter.record_mode must be one of: {', '.join(RECORD_MODES)}")
            layouts = [k for k, v in RECORD_MODE_NAMES.items() if v == value]
            rooms = rooms.filter(recording_layout__in=layouts)
        elif key == "max_participants":
            if isinstance(value, bool) or not isinstance(value, int):
                raise _bad("filter.max_participants must be an integer")
            rooms = rooms.filter(max_participants=value)
        elif key == "active":
            rooms = rooms.filter(_active_q(_flag(value, key)))
        else:
            column = {
                "allow_webinar_mode": "allow_webinar_mode",
                "allow_chat": "chat_enabled",
                "allow_share_screen": "screen_sharing_enabled",
                "record": "recording_enabled",
            }[key]
            rooms = rooms.filter(**{column: _flag(value, key)})
    return rooms


def _int(data: dict[str, Any], name: str, default: int, lo: int, hi: int | None) -> int:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < lo
        or (hi is not None and value > hi)
    ):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise _bad(f"{name} must be an integer {bound}")
    return value


def _ordering(data: dict[str, Any]) -> list[Any]:
    spec = data.get("sort")
    if spec is None:
        spec = {"created": 1}
    if not isinstance(spec, dict):
        raise _bad('sort must be an object such as {"created": 1}')
    order: list[Any] = []
    for key, direction in spec.items():
        if key not in SORT_FIELDS:
            raise _bad(f"sort.{str(key)[:64]} is not supported: sort by created, modified or name")
        if isinstance(direction, bool) or direction not in (1, -1):
            raise _bad(f"sort.{key} must be 1 or -1")
        column = F(SORT_FIELDS[key])
        order.append(column.asc() if direction == 1 else column.desc())
    last = 1 if not spec else next(reversed(spec.values()))
    order.append("number" if last == 1 else "-number")
    return order


# --- control plane ----------------------------------------------------------------------------

ROOM_FIELDS: dict[str, serializers.Field] = {
    "name": serializers.CharField(),
    "user_id": serializers.CharField(required=False, help_text="ignored: the key's tenant"),
    "mediaType": serializers.ChoiceField(choices=list(MEDIA_TYPES), required=False),
    "max_participants": serializers.IntegerField(required=False),
    "allow_webinar_mode": serializers.BooleanField(required=False),
    "allow_chat": serializers.BooleanField(required=False),
    "allow_share_screen": serializers.BooleanField(required=False),
    "record": serializers.BooleanField(required=False),
    "record_mode": serializers.ChoiceField(choices=list(RECORD_MODES), required=False),
    "active": serializers.BooleanField(required=False),
}
RoomInput = inline_serializer("CallabaRoomInput", ROOM_FIELDS)
RoomUpdate = inline_serializer(
    "CallabaRoomUpdate",
    {"id": serializers.CharField(), **ROOM_FIELDS, "name": serializers.CharField(required=False)},
)
ROOM_OUTPUT_FIELDS: dict[str, serializers.Field] = {
    "_id": serializers.CharField(),
    "id": serializers.CharField(),
    "name": serializers.CharField(),
    "user_id": serializers.CharField(),
    "mediaType": serializers.ChoiceField(choices=list(MEDIA_TYPES)),
    "allow_webinar_mode": serializers.BooleanField(),
    "allow_chat": serializers.BooleanField(),
    "allow_share_screen": serializers.BooleanField(),
    "record": serializers.BooleanField(),
    "record_mode": serializers.ChoiceField(choices=list(RECORD_MODES)),
    "max_participants": serializers.IntegerField(),
    "sid": serializers.CharField(),
    "active": serializers.BooleanField(),
    "created": serializers.DateTimeField(),
    "modified": serializers.DateTimeField(),
    "success": serializers.BooleanField(),
}
RoomOutput = inline_serializer("CallabaRoom", ROOM_OUTPUT_FIELDS)
IdInput = inline_serializer("CallabaId", {"id": serializers.CharField()})
Success = inline_serializer("CallabaSuccess", {"success": serializers.BooleanField()})
ListInput = inline_serializer(
    "CallabaListQuery",
    {
        "limit": serializers.IntegerField(required=False, min_value=1, max_value=100),
        "skip": serializers.IntegerField(required=False, min_value=0),
        "sort": serializers.DictField(child=serializers.IntegerField(), required=False),
        "filter": serializers.DictField(required=False),
    },
)
CountInput = inline_serializer(
    "CallabaCountQuery", {"filter": serializers.DictField(required=False)}
)


class CreateView(CallabaView):
    """Create a room from a Callaba body (the four presets are valid as written)."""

    @extend_schema(
        tags=["callaba"], operation_id="callaba_create", request=RoomInput, responses=RoomOutput
    )
    def post(self, request: Request) -> Response:
        v1, active = _settings(self.body(request), request=request, room=None, skip={"id"})
        with transaction.atomic():
            room = room_services.create_room(tenant=request_tenant(request), data=v1)
            if active is False:  # provisioned closed: it opens on `start`
                room = room_services.stop_room(room=room)
        return self.room_response(request, room)


class GetCountView(CallabaView):
    """How many of the tenant's rooms match `filter`."""

    @extend_schema(
        tags=["callaba"],
        operation_id="callaba_get_count",
        request=CountInput,
        responses=inline_serializer("CallabaCount", {"count": serializers.IntegerField()}),
    )
    def post(self, request: Request) -> Response:
        return Response({"count": _filtered(request, self.body(request)).count()})


class GetAllView(CallabaView):
    """The tenant's rooms as a bare array: `limit` (1-100), `skip`, `sort`, `filter`."""

    @extend_schema(
        tags=["callaba"],
        operation_id="callaba_get_all",
        request=ListInput,
        responses=serializers.ListSerializer(child=RoomOutput),
    )
    def post(self, request: Request) -> Response:
        data = self.body(request)
        limit = _int(data, "limit", 20, 1, 100)
        skip = _int(data, "skip", 0, 0, None)
        rooms = _filtered(request, data).order_by(*_ordering(data))[skip : skip + limit]
        owner = request_tenant(request).public_id
        return Response([room_object(room, owner) for room in rooms])


class GetByIdView(CallabaView):
    """One room by its 24-hex id."""

    @extend_schema(
        tags=["callaba"], operation_id="callaba_get_by_id", request=IdInput, responses=RoomOutput
    )
    def post(self, request: Request) -> Response:
        room = self.get_room(request, self.room_id(self.body(request)))
        return self.room_response(request, room)


class UpdateView(CallabaView):
    """Change the fields named (partial); `active` starts or stops the room."""

    @extend_schema(
        tags=["callaba"], operation_id="callaba_update", request=RoomUpdate, responses=RoomOutput
    )
    def post(self, request: Request) -> Response:
        data = self.body(request)
        room = self.get_room(request, self.room_id(data))
        v1, active = _settings(data, request=request, room=room, skip={"id"})
        # One transaction: a LiveKit failure while starting or stopping undoes the settings too.
        with transaction.atomic():
            if v1:
                room = room_services.update_room(room=room, data=v1)
            if active is True and not is_active(room):
                room = room_services.start_room(room=room)
            elif active is False and is_active(room):
                room = room_services.stop_room(room=room)
        return self.room_response(request, room)


class StartView(CallabaView):
    """Open the room and create it on LiveKit."""

    @extend_schema(
        tags=["callaba"], operation_id="callaba_start", request=IdInput, responses=Success
    )
    def post(self, request: Request) -> Response:
        room = self.get_room(request, self.room_id(self.body(request)))
        room_services.start_room(room=room)
        return Response({"success": True})


class StopView(CallabaView):
    """Close the room: LiveKit room deleted, everyone disconnected."""

    @extend_schema(
        tags=["callaba"], operation_id="callaba_stop", request=IdInput, responses=Success
    )
    def post(self, request: Request) -> Response:
        room = self.get_room(request, self.room_id(self.body(request)))
        room_services.stop_room(room=room)
        return Response({"success": True})


class RemoveView(CallabaView):
    """Delete the room (a live one is closed on LiveKit first)."""

    @extend_schema(
        tags=["callaba"], operation_id="callaba_remove", request=IdInput, responses=Success
    )
    def delete(self, request: Request) -> Response:
        room = self.get_room(request, self.room_id(self.body(request)))
        room_services.delete_room(room=room)
        return Response({"success": True})


# --- public join helpers ----------------------------------------------------------------------


class PublicView(CallabaView):
    """A browser-facing helper: anonymous, or a valid key (then scoped to its tenant)."""

    authentication_classes = [OptionalAccessTokenAuthentication]
    permission_classes: list[Any] = []

    def open_room(self, request: Request, object_id: str) -> Room:
        """The active room with this id (the key's tenant's, when a key was sent). An unknown,
        foreign or inactive room is 404. Counts against the join page's per-address limit
        and refuses rooms whose policy only the join page can apply."""
        room = None
        if _OBJECT_ID.fullmatch(object_id):
            rooms = Room.objects.listed().select_related("tenant")
            tenant = getattr(request, "tenant", None)
            if tenant is not None:
                rooms = rooms.for_tenant(tenant)
            room = rooms.filter(object_id=object_id).first()
        if room is None or not is_active(room):
            raise CallabaError(404, "Room not found or not active")
        lobby.count_join_request(room=room, client=_client(request))
        if access.access_problem(room, access.Visitor()) is not None:
            why = POLICY_REASONS.get(str(room.access_type), "has an access policy")
        elif room.waiting_room_enabled:
            why = "has a waiting room"
        else:
            return room
        base = join_base_url(room.tenant, _base_url(request))
        raise CallabaError(
            403, f"This room {why}: join it through its join link {base}/room/{room.room_id}"
        )


POLICY_REASONS: dict[str, str] = {
    Room.AccessType.PASSWORD: "is protected by a password",
    Room.AccessType.WHITELIST: "is for invited guests only",
    Room.AccessType.AUTHENTICATED: "is for signed-in users only",
}


def _client(request: Request) -> str:
    return access.client_key(client_ip(request))


def _base_url(request: Request) -> str:
    return settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")


FindOutput = inline_serializer(
    "CallabaLiveKitRoom",
    {
        "id": serializers.CharField(),
        "LKRoomName": serializers.CharField(),
        "allow_webinar_mode": serializers.BooleanField(),
        "allow_chat": serializers.BooleanField(),
        "allow_share_screen": serializers.BooleanField(),
        "record": serializers.BooleanField(),
        "record_mode": serializers.ChoiceField(choices=list(RECORD_MODES)),
        "success": serializers.BooleanField(),
    },
)
TokenInput = inline_serializer(
    "CallabaTokenRequest",
    {
        "room_id": serializers.CharField(),
        "LKRoomName": serializers.CharField(),
        "participant_id": serializers.CharField(),
        "participant_name": serializers.CharField(required=False),
        "hidden": serializers.BooleanField(required=False),
        "token": serializers.CharField(required=False, help_text="the room's hidden_token"),
    },
)
TokenOutput = inline_serializer(
    "CallabaToken",
    {
        "participant_token": serializers.CharField(),
        "LKRoomName": serializers.CharField(),
        "success": serializers.BooleanField(),
    },
)


class FindLKRoomNameView(PublicView):
    """Resolve an active room's LiveKit name and its join flags (no key needed)."""

    @extend_schema(
        tags=["callaba"],
        operation_id="callaba_find_lk_room_name_by_id",
        request=IdInput,
        responses=FindOutput,
    )
    def post(self, request: Request) -> Response:
        room = self.open_room(request, self.room_id(self.body(request)))
        return Response(
            {
                "id": room.object_id,
                "LKRoomName": room.livekit_name,
                "allow_webinar_mode": room.allow_webinar_mode,
                "allow_chat": room.chat_enabled,
                "allow_share_screen": room.screen_sharing_enabled,
                "record": room.recording_enabled,
                "record_mode": RECORD_MODE_NAMES[Room.RecordingLayout(room.recording_layout)],
                "success": True,
            }
        )


TOKEN_FIELDS = {"room_id", "LKRoomName", "participant_id", "participant_name", "hidden", "token"}


class CreateTokenView(PublicView):
    """A participant token for the room, with the grants its policy gives a guest."""

    @extend_schema(
        tags=["callaba"],
        operation_id="callaba_create_token",
        request=TokenInput,
        responses=TokenOutput,
    )
    def post(self, request: Request) -> Response:
        data = self.body(request)
        unknown = sorted(str(k) for k in data if k not in TOKEN_FIELDS)
        if unknown:
            raise _bad(f"Unknown field '{unknown[0][:64]}'")
        object_id = self.room_id(data, "room_id")
        lk_name = data.get("LKRoomName")
        if not isinstance(lk_name, str) or not lk_name:
            raise _bad("LKRoomName is required: resolve it with findLKRoomNameById")
        identity = data.get("participant_id")
        if not isinstance(identity, str) or not _IDENTITY.fullmatch(identity):
            raise _bad("participant_id is required: 1-128 letters, digits and - _ . @ : characters")
        raw_name = data.get("participant_name", identity)
        try:
            name = lobby.clean_display_name(raw_name)
        except ServiceError as exc:
            raise _bad(f"participant_name: {exc.message}") from None
        hidden = data.get("hidden", False)
        if hidden is None:
            hidden = False
        if not isinstance(hidden, bool):
            raise _bad("hidden must be true or false")

        room = self.open_room(request, object_id)
        if lk_name != room.livekit_name:
            raise _bad("LKRoomName does not match the room: resolve it with findLKRoomNameById")
        if hidden and not room_services.hidden_token_matches(room, data.get("token")):
            raise CallabaError(403, "A hidden participant needs the room's hidden token")
        # A public caller chooses its identity, so it never inherits a stored stage role.
        if Participant.objects.filter(room=room, identity=identity, role__in=STAGE_ROLES).exists():
            raise CallabaError(
                409, "participant_id is taken by a host or speaker of this room: choose another"
            )
        issued = room_services.issue_token(
            room=room,
            name=name,
            identity=identity,
            role=Role.VIEWER if hidden else default_role(room),
            hidden=hidden,
        )
        return Response(
            {"participant_token": issued.token, "LKRoomName": issued.room_name, "success": True}
        )


def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    return JsonResponse({"success": False, "message": "Not found"}, status=404)
