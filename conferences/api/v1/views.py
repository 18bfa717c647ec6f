"""v1 Rooms API views: translate HTTP to service calls and back, nothing more."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import F
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from conferences import access, livekit, shapes
from conferences.models import Room
from conferences.services import recordings as recording_services
from conferences.services import rooms as room_services

from ..auth import TenantAPIView
from ..errors import ApiError, NotFound
from ..fields import format_datetime
from .serializers import (
    ParticipantSerializer,
    RoomInputSerializer,
    RoomListSerializer,
    RoomOutputSerializer,
    TokenInputSerializer,
)

SORTS = {"created_at", "start_time", "name"}


class V1View(TenantAPIView):
    # Base of every v1 view: X-API-Key auth and the plan's rate limit (TenantAPIView), JSON
    # bodies only, tenant-scoped room lookup.

    def json_body(self, request: Request) -> Any:
        """The request's JSON body; a body of another type is 415, bad JSON 400."""
        if request.META.get("CONTENT_LENGTH", "0") not in ("", "0"):
            if request.content_type.split(";")[0].strip() != "application/json":
                raise exceptions.UnsupportedMediaType(
                    request.content_type or "(none)",
                    detail="Send the body as JSON with Content-Type: application/json",
                )
        return request.data

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Ids in the path never hold NUL (PostgreSQL refuses it in a query): not found.
        if any("\x00" in str(value) for value in kwargs.values()):
            raise NotFound("Not found")

    def base_url(self, request: Request) -> str:
        return settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")

    def get_room(self, request: Request, room_id: str) -> Room:
        """The caller's room; another tenant's room and a missing one look the same (404)."""
        return access.room_for_tenant(tenant=self.tenant(request), room_id=room_id)

    def room_response(self, request: Request, room: Room, status: int = 200) -> Response:
        output = RoomOutputSerializer(room, context={"base_url": self.base_url(request)})
        return Response(output.data, status=status)


MAX_QUERY_INT = 2**31 - 1  # an offset past this would overflow the database's integers


def _int_param(request: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    hi = MAX_QUERY_INT if hi is None else hi
    try:
        value = int(raw) if len(raw) <= 20 else None
    except ValueError:
        value = None
    if value is None or value < lo or value > hi:
        raise ApiError(f"The '{name}' must be an integer between {lo} and {hi}", field=name)
    return value


def _choice_param(request: Request, name: str, choices: set[str] | list[str], default=None):
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise ApiError(f"The '{name}' must be one of: {', '.join(sorted(choices))}", field=name)
    return raw


class RoomsView(V1View):
    """List the tenant's rooms, or create one."""

    @extend_schema(
        operation_id="list_rooms",
        parameters=[
            OpenApiParameter("status", enum=Room.Status.values),
            OpenApiParameter("room_type", enum=Room.RoomType.values),
            OpenApiParameter("limit", int, description="1-100, default 20"),
            OpenApiParameter("offset", int, description="default 0"),
            OpenApiParameter("sort", enum=sorted(SORTS), description="default created_at"),
            OpenApiParameter("order", enum=["asc", "desc"], description="default desc"),
        ],
        responses=RoomListSerializer,
    )
    def get(self, request: Request) -> Response:
        status = _choice_param(request, "status", Room.Status.values)
        room_type = _choice_param(request, "room_type", Room.RoomType.values)
        limit = _int_param(request, "limit", 20, 1, 100)
        offset = _int_param(request, "offset", 0, 0, None)
        sort = _choice_param(request, "sort", SORTS, "created_at")
        order = _choice_param(request, "order", {"asc", "desc"}, "desc")

        rooms = Room.objects.for_tenant(self.tenant(request)).listed()
        if status:
            rooms = rooms.filter(status=status)
        if room_type:
            rooms = rooms.filter(room_type=room_type)
        primary = F(sort).desc(nulls_last=True) if order == "desc" else F(sort).asc(nulls_last=True)
        tiebreak = "-number" if order == "desc" else "number"
        # Constant queries whatever the page size: COUNT(*), the page, its schedules and
        # its running HLS streams (live_playlist_urls).
        total = rooms.count()
        page = (
            list(
                rooms.order_by(primary, tiebreak).prefetch_related("schedules")[
                    offset : offset + limit
                ]
            )
            if total
            else []
        )
        base_url = self.base_url(request)
        playlists = recording_services.live_playlist_urls(page, base_url=base_url)
        output = RoomOutputSerializer(
            page, many=True, context={"base_url": base_url, "playlist_urls": playlists}
        )
        return Response(
            {
                "rooms": output.data,
                "total": total,
                "limit": limit,
                "offset": offset,
            }
        )

    @extend_schema(
        operation_id="create_room",
        request=RoomInputSerializer,
        responses={201: RoomOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = RoomInputSerializer(
            data=self.json_body(request), context={"tenant": self.tenant(request)}
        )
        serializer.is_valid(raise_exception=True)
        room = room_services.create_room(
            tenant=self.tenant(request), data=serializer.validated_data
        )
        return self.room_response(request, room, status=201)


class RoomDetailView(V1View):
    """Read, change or delete one room."""

    @extend_schema(operation_id="get_room", responses=RoomOutputSerializer)
    def get(self, request: Request, room_id: str) -> Response:
        return self.room_response(request, self.get_room(request, room_id))

    @extend_schema(
        operation_id="update_room", request=RoomInputSerializer, responses=RoomOutputSerializer
    )
    def patch(self, request: Request, room_id: str) -> Response:
        room = self.get_room(request, room_id)
        serializer = RoomInputSerializer(
            data=self.json_body(request),
            partial=True,
            context={"tenant": self.tenant(request), "instance": room},
        )
        serializer.is_valid(raise_exception=True)
        room = room_services.update_room(room=room, data=serializer.validated_data)
        return self.room_response(request, room)

    @extend_schema(
        operation_id="delete_room",
        responses=inline_serializer(
            "RoomDeleted",
            {"deleted": serializers.BooleanField(), "room_id": serializers.CharField()},
        ),
    )
    def delete(self, request: Request, room_id: str) -> Response:
        room = self.get_room(request, room_id)
        room_services.delete_room(room=room)
        return Response({"deleted": True, "room_id": room_id})


class RoomStartView(V1View):
    """Open the room now and create it on LiveKit."""

    @extend_schema(operation_id="start_room", request=None, responses=RoomOutputSerializer)
    def post(self, request: Request, room_id: str) -> Response:
        room = room_services.start_room(room=self.get_room(request, room_id))
        return self.room_response(request, room)


class RoomStopView(V1View):
    """End the room for everyone and delete it on LiveKit."""

    @extend_schema(operation_id="stop_room", request=None, responses=RoomOutputSerializer)
    def post(self, request: Request, room_id: str) -> Response:
        room = room_services.stop_room(room=self.get_room(request, room_id))
        return self.room_response(request, room)


class RoomHostLinkRotateView(V1View):
    """A new host link (`host_url`): every earlier host link, and every host session one
    opened, stops working at once."""

    @extend_schema(operation_id="rotate_host_link", request=None, responses=RoomOutputSerializer)
    def post(self, request: Request, room_id: str) -> Response:
        room = room_services.rotate_host_link(room=self.get_room(request, room_id))
        response = self.room_response(request, room)
        response["Cache-Control"] = "no-store"
        return response


class RoomTokensView(V1View):
    """Mint a short-lived LiveKit join token for a role in this room."""

    @extend_schema(
        operation_id="create_room_token",
        request=TokenInputSerializer,
        responses=shapes.schema(shapes.TokenJSON),
    )
    def post(self, request: Request, room_id: str) -> Response:
        room = access.room_for_token(tenant=self.tenant(request), room_id=room_id)
        serializer = TokenInputSerializer(data=self.json_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        issued = room_services.issue_token(
            room=room,
            name=data["name"],
            identity=data.get("identity"),
            role=data.get("role"),
        )
        return Response(shapes.token_json(issued))


class RoomParticipantsView(V1View):
    """Who is in the room on LiveKit now."""

    @extend_schema(
        operation_id="list_room_participants",
        responses=inline_serializer(
            "ParticipantList", {"participants": ParticipantSerializer(many=True)}
        ),
    )
    def get(self, request: Request, room_id: str) -> Response:
        room = self.get_room(request, room_id)
        participants: list[livekit.ParticipantDict] = []
        if room.live_since is not None:
            participants = room_services.live_participants(room=room)
        return Response(
            {
                "participants": [
                    {
                        "sid": p["sid"],
                        "identity": p["identity"],
                        "name": p["name"],
                        "role": p["attributes"].get("role"),
                        "joined_at": _epoch(p["joined_at"]),
                        "is_publisher": p["is_publisher"],
                    }
                    for p in participants
                ]
            }
        )


def _epoch(seconds: int) -> str | None:
    if not seconds:
        return None
    return format_datetime(dt.datetime.fromtimestamp(seconds, dt.UTC))
