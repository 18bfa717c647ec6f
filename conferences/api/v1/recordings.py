"""v1 recordings and HLS streams: translate HTTP to `services.recordings` and back."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from conferences.models import Recording
from conferences.services import recordings as recording_services

from ..errors import ApiError, NotFound
from ..fields import format_datetime
from .views import V1View

START_FIELDS = {
    "layout",
    "audio_only",
    "quality",
    "orientation",
    "theme",
    "grid_size",
    "priority",
    "prefix",
}

RecordingSerializer = inline_serializer(
    "Recording",
    {
        "recording_id": serializers.CharField(),
        "kind": serializers.ChoiceField(choices=Recording.Kind.values),
        "room_id": serializers.CharField(),
        "status": serializers.ChoiceField(choices=Recording.Status.values),
        "auto": serializers.BooleanField(),
        "layout": serializers.CharField(),
        "audio_only": serializers.BooleanField(),
        "quality": serializers.CharField(),
        "orientation": serializers.CharField(),
        "egress_id": serializers.CharField(),
        "started_at": serializers.DateTimeField(allow_null=True),
        "ended_at": serializers.DateTimeField(allow_null=True),
        "duration": serializers.IntegerField(allow_null=True, help_text="seconds"),
        "size": serializers.IntegerField(allow_null=True, help_text="bytes"),
        "failure_reason": serializers.CharField(),
        "download_url": serializers.CharField(allow_null=True),
        "playlist_url": serializers.CharField(allow_null=True),
        "watch_url": serializers.CharField(allow_null=True),
        "created_at": serializers.DateTimeField(),
    },
)
StartSerializer = inline_serializer(
    "RecordingStart",
    {
        "layout": serializers.ChoiceField(
            choices=recording_services.LAYOUTS, required=False, help_text="default: the room's"
        ),
        "audio_only": serializers.BooleanField(required=False),
        "quality": serializers.ChoiceField(choices=recording_services.QUALITIES, required=False),
        "orientation": serializers.ChoiceField(
            choices=recording_services.ORIENTATIONS, required=False
        ),
    },
)


class RecordingsBase(V1View):
    kind = Recording.Kind.RECORDING

    def as_json(self, request: Request, recording: Recording) -> dict[str, Any]:
        base = self.base_url(request)
        data: dict[str, Any] = dict(recording_services.as_dict(recording, base_url=base))
        for key in ("started_at", "ended_at", "created_at"):
            data[key] = format_datetime(data[key])
        data["watch_url"] = (
            recording_services.watch_url(recording, base_url=base)
            if recording.kind == Recording.Kind.HLS
            else None
        )
        return data

    def start_body(self, request: Request) -> tuple[str | None, dict[str, Any]]:
        body = self.json_body(request)
        if body in (None, ""):
            body = {}
        if not isinstance(body, dict):
            raise ApiError("The body must be a JSON object")
        unknown = sorted(set(body) - START_FIELDS)
        if unknown:
            raise ApiError(f"Unknown field '{unknown[0]}'", field=unknown[0])
        layout = body.get("layout")
        if layout is not None:
            layout = recording_services.clean_layout(layout)
        options = {k: v for k, v in body.items() if k != "layout"}
        return layout, options

    def get_recording(self, request: Request, recording_id: str, room_id: str | None = None):
        tenant = request.tenant  # type: ignore[attr-defined]  # set by TenantAPIView auth
        recording = recording_services.get_for_tenant(tenant, recording_id)
        if recording is None or (room_id is not None and recording.room_public_id != room_id):
            raise NotFound("Recording not found")
        return recording

    def start(self, request: Request, room_id: str) -> Response:
        room = self.get_room(request, room_id)
        layout, given = self.start_body(request)
        # Without options, the room's own; with some, they override the room's.
        options = {**(room.recording_options or {}), **given} if given else None
        recording = recording_services.start(
            room=room, kind=self.kind, layout=layout, options=options
        )
        return Response(self.as_json(request, recording), status=201)

    def listing(self, request: Request, room_id: str) -> Response:
        room = self.get_room(request, room_id)
        items = [r for r in recording_services.for_room(room) if r.kind == self.kind]
        key = "recordings" if self.kind == Recording.Kind.RECORDING else "streams"
        return Response({key: [self.as_json(request, r) for r in items]})

    def stopping(self, request: Request, room_id: str, recording_id: str) -> Response:
        self.get_room(request, room_id)
        recording = self.get_recording(request, recording_id, room_id)
        if recording.kind != self.kind:
            raise NotFound("Recording not found")
        recording = recording_services.stop(recording=recording)
        return Response(self.as_json(request, recording))


class RoomRecordingsView(RecordingsBase):
    """A room's recordings; POST starts one (the room must be live and allow recording)."""

    @extend_schema(operation_id="list_recordings", responses=RecordingSerializer)
    def get(self, request: Request, room_id: str) -> Response:
        return self.listing(request, room_id)

    @extend_schema(
        operation_id="start_recording", request=StartSerializer, responses=RecordingSerializer
    )
    def post(self, request: Request, room_id: str) -> Response:
        return self.start(request, room_id)


class RoomRecordingStopView(RecordingsBase):
    """Stop a running recording (409 RECORDING_NOT_ACTIVE once it has ended)."""

    @extend_schema(operation_id="stop_recording", request=None, responses=RecordingSerializer)
    def post(self, request: Request, room_id: str, recording_id: str) -> Response:
        return self.stopping(request, room_id, recording_id)


class RecordingDetailView(RecordingsBase):
    """One recording or stream of the caller's tenant (another tenant's: 404)."""

    @extend_schema(operation_id="get_recording", responses=RecordingSerializer)
    def get(self, request: Request, recording_id: str) -> Response:
        return Response(self.as_json(request, self.get_recording(request, recording_id)))


class RoomStreamsView(RecordingsBase):
    """A room's HLS live streams; POST starts one (playlist_url and watch_url in the answer)."""

    kind = Recording.Kind.HLS

    @extend_schema(operation_id="list_streams", responses=RecordingSerializer)
    def get(self, request: Request, room_id: str) -> Response:
        return self.listing(request, room_id)

    @extend_schema(
        operation_id="start_stream", request=StartSerializer, responses=RecordingSerializer
    )
    def post(self, request: Request, room_id: str) -> Response:
        return self.start(request, room_id)


class RoomStreamStopView(RecordingsBase):
    kind = Recording.Kind.HLS

    @extend_schema(operation_id="stop_stream", request=None, responses=RecordingSerializer)
    def post(self, request: Request, room_id: str, recording_id: str) -> Response:
        return self.stopping(request, room_id, recording_id)


# --- the host's recording controls (meeting page), authorised like other host actions ------

from .host import HostView  # noqa: E402  (host imports views; keep this module importable)


class HostRecordingsView(HostView, RecordingsBase):
    """The room's recordings and whether one runs; readable by any host (viewers too)."""

    writes = False

    @extend_schema(operation_id="host_list_recordings", responses=RecordingSerializer)
    def get(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        items = recording_services.for_room(room)
        return Response(
            {
                **recording_services.indicator(room),
                "recordings": [self.as_json(request, r) for r in items],
            }
        )


class HostRecordingStartView(HostView, RecordingsBase):
    """Start recording the room (its own layout and options unless the body says)."""

    @extend_schema(
        operation_id="host_start_recording", request=StartSerializer, responses=RecordingSerializer
    )
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        layout, options = self.start_body(request)
        recording = recording_services.start(
            room=room,
            layout=layout,
            options={**(room.recording_options or {}), **options} if options else None,
        )
        return Response(self.as_json(request, recording), status=201)


class HostRecordingStopView(HostView, RecordingsBase):
    """Stop the room's running recording (409 RECORDING_NOT_ACTIVE if none runs)."""

    @extend_schema(operation_id="host_stop_recording", request=None, responses=RecordingSerializer)
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        running = [
            r
            for r in recording_services.for_room(room)
            if r.kind == Recording.Kind.RECORDING and r.is_active
        ]
        if not running:
            raise ApiError(
                "No recording of this room is running", code="RECORDING_NOT_ACTIVE", status_code=409
            )
        recording = recording_services.stop(recording=running[0])
        return Response(self.as_json(request, recording))
