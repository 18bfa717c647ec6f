"""Input and output shapes of the v1 Rooms API (reference: videochatapi-v1.txt).

`RoomInputSerializer` is the one validation path for room settings: the API and the
dashboard forms both use it.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Tenant
from conferences import recurrence, shapes
from conferences.models import Room
from conferences.roles import Role
from conferences.services import recordings as recording_services
from conferences.services.rooms import hidden_token

from ..fields import (
    OffsetDateTimeField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    format_datetime,
)

HOST_CONTROL_KEYS = ("mute_all", "disable_video", "kick_participants")
MAX_WHITELIST = 1000
_url_validator = URLValidator(schemes=["http", "https"])


def _null_message(name: str) -> dict[str, str]:
    return {
        "null": f"The '{name}' must not be null",
        "required": f"The '{name}' is required",
    }


SCREEN_SHARING_HELP = (
    "Whether guests may share their screen (and its audio). Stored as sent, but in a "
    '`media_type: "audio"` room (voice only) it has no effect: those rooms grant the '
    "microphone only, never screen share or screen-share audio."
)
MEDIA_TYPE_HELP = (
    "`video` (camera, silent), `audio` (voice only: the microphone and nothing else, "
    "whatever `screen_sharing_enabled` says) or `both`."
)


def _field(cls, name: str, **kw):
    return cls(error_messages=_null_message(name), **kw)


@extend_schema_field(
    {
        "type": "object",
        "properties": {k: {"type": "boolean"} for k in HOST_CONTROL_KEYS},
        "additionalProperties": False,
    }
)
class HostControlsField(serializers.Field):
    def to_internal_value(self, data: Any) -> dict[str, bool]:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                "The 'host_controls' must be an object with mute_all, disable_video and "
                "kick_participants booleans"
            )
        for key, value in data.items():
            if key not in HOST_CONTROL_KEYS:
                raise serializers.ValidationError(
                    f"The 'host_controls' has an unknown key '{key}'; allowed: "
                    f"{', '.join(HOST_CONTROL_KEYS)}"
                )
            if not isinstance(value, bool):
                raise serializers.ValidationError(
                    f"The 'host_controls.{key}' must be true or false"
                )
        return dict(data)

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "array", "items": {"type": "string", "format": "email"}})
class EmailListField(serializers.Field):
    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, list):
            raise serializers.ValidationError("The 'whitelist_emails' must be an array of emails")
        if len(data) > MAX_WHITELIST:
            raise serializers.ValidationError(
                f"The 'whitelist_emails' may hold at most {MAX_WHITELIST} addresses"
            )
        seen: dict[str, None] = {}
        for item in data:
            if not isinstance(item, str):
                raise serializers.ValidationError("The 'whitelist_emails' must hold strings")
            email = item.strip().lower()
            try:
                validate_email(email)
            except DjangoValidationError:
                raise serializers.ValidationError(
                    f"'{item[:254]}' in 'whitelist_emails' is not a valid email address"
                ) from None
            seen.setdefault(email, None)
        return list(seen)


DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
MAX_DOMAINS = 50


@extend_schema_field({"type": "array", "items": {"type": "string", "example": "partner.example"}})
class EmailDomainListField(EmailListField):
    """Email domains (`partner.example`, no @) whose verified, signed-in accounts may join an
    authenticated room besides the tenant's members."""

    def to_internal_value(self, data: Any) -> list[str]:
        name = "allowed_email_domains"
        if not isinstance(data, list) or len(data) > MAX_DOMAINS:
            raise serializers.ValidationError(
                f"The '{name}' must be an array of at most {MAX_DOMAINS} domains"
            )
        seen: dict[str, None] = {}
        for item in data:
            if not isinstance(item, str):
                raise serializers.ValidationError(f"The '{name}' must hold strings")
            domain = item.strip().lower().lstrip("@")
            if not DOMAIN.fullmatch(domain):
                raise serializers.ValidationError(
                    f"'{item[:253]}' in '{name}' is not a domain like partner.example"
                )
            seen.setdefault(domain, None)
        return list(seen)

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "string", "format": "uri", "nullable": True})
class LogoUrlField(serializers.Field):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or len(data) > 500:
            raise serializers.ValidationError(
                "The 'custom_logo_url' must be an http(s) URL of at most 500 characters"
            )
        try:
            _url_validator(data)
        except DjangoValidationError:
            raise serializers.ValidationError(
                "The 'custom_logo_url' must be an http(s) URL"
            ) from None
        return data

    def to_representation(self, value: Any) -> Any:
        return value or None


class StrictSerializer(serializers.Serializer):
    """A JSON object whose every key must be a declared field."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Request body must be a JSON object"]}
            )
        for key in data:
            if key not in self.fields:
                raise serializers.ValidationError({key: [f"Unknown field '{key}'"]})
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "RFC 5545 RRULE, optional EXDATE lines"},
            {
                "type": "object",
                "properties": {
                    "frequency": {"type": "string", "enum": ["daily", "weekly", "monthly"]},
                    "interval": {"type": "integer"},
                    "weekdays": {"type": "array", "items": {"type": "string"}},
                    "count": {"type": "integer"},
                    "until": {"type": "string"},
                    "exdates": {"type": "array", "items": {"type": "string"}},
                },
            },
        ],
        "nullable": True,
    }
)
class RecurrenceField(serializers.Field):
    """Passed through as sent; parsed in `validate`, where start_time and zone are known."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str | dict):
            raise serializers.ValidationError(
                "The 'recurrence' must be an RRULE string or an object"
            )
        return data

    def to_representation(self, value: Any) -> Any:
        return value


AUTO_CLOSE_TYPES = ("session-ends", "session-end-and-deactivate")


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": list(AUTO_CLOSE_TYPES)},
            "duration": {"type": "integer", "description": "minutes, default 480"},
        },
    }
)
class AutoCloseField(serializers.Field):
    """videosdk's autoCloseConfig: {"type": session-ends|session-end-and-deactivate,
    "duration": minutes (default 480)}."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                "The 'auto_close_config' must be an object with type and duration"
            )
        unknown = set(data) - {"type", "duration"}
        if unknown:
            raise serializers.ValidationError(
                f"The 'auto_close_config' has an unknown key '{sorted(unknown)[0]}'"
            )
        kind = data.get("type", "session-ends")
        if kind not in AUTO_CLOSE_TYPES:
            raise serializers.ValidationError(
                "The 'auto_close_config.type' must be session-ends or session-end-and-deactivate"
            )
        duration = data.get("duration", 480)
        if (
            isinstance(duration, bool)
            or not isinstance(duration, int)
            or not 1 <= duration <= 10080
        ):
            raise serializers.ValidationError(
                "The 'auto_close_config.duration' must be minutes between 1 and 10080"
            )
        return {"type": kind, "duration": duration}

    def to_representation(self, value: Any) -> Any:
        return value


class RoomInputSerializer(StrictSerializer):
    """Create (all fields) or update (`partial=True`) a room; context: `tenant`, `instance`."""

    name = _field(StrictCharField, "name", min_length=3, max_length=100)
    room_type = _field(StrictChoiceField, "room_type", choices=Room.RoomType.values, required=False)
    media_type = _field(
        StrictChoiceField,
        "media_type",
        choices=Room.MediaType.values,
        required=False,
        help_text=MEDIA_TYPE_HELP,
    )
    max_participants = _field(
        StrictIntegerField, "max_participants", min_value=2, max_value=1000, required=False
    )
    access_type = _field(
        StrictChoiceField, "access_type", choices=Room.AccessType.values, required=False
    )
    password = _field(
        StrictCharField, "password", min_length=4, max_length=128, strip=False, required=False
    )
    whitelist_emails = _field(EmailListField, "whitelist_emails", required=False)
    allowed_email_domains = _field(EmailDomainListField, "allowed_email_domains", required=False)
    start_time = OffsetDateTimeField(required=False, allow_null=True)
    end_time = OffsetDateTimeField(required=False, allow_null=True)
    recurring = _field(StrictBooleanField, "recurring", required=False)
    recording_enabled = _field(StrictBooleanField, "recording_enabled", required=False)
    screen_sharing_enabled = _field(
        StrictBooleanField, "screen_sharing_enabled", required=False, help_text=SCREEN_SHARING_HELP
    )
    chat_enabled = _field(StrictBooleanField, "chat_enabled", required=False)
    waiting_room_enabled = _field(StrictBooleanField, "waiting_room_enabled", required=False)
    video_quality = _field(
        StrictChoiceField, "video_quality", choices=Room.VideoQuality.values, required=False
    )
    audio_only_mode = _field(StrictBooleanField, "audio_only_mode", required=False)
    host_controls = _field(HostControlsField, "host_controls", required=False)
    custom_logo_url = LogoUrlField(required=False, allow_null=True)
    recurrence = RecurrenceField(required=False, allow_null=True)
    timezone = _field(StrictCharField, "timezone", min_length=1, max_length=64, required=False)
    auto_close_config = _field(AutoCloseField, "auto_close_config", required=False)
    join_before_minutes = _field(
        StrictIntegerField, "join_before_minutes", min_value=0, max_value=1440, required=False
    )
    allow_webinar_mode = _field(StrictBooleanField, "allow_webinar_mode", required=False)
    recording_layout = _field(
        StrictChoiceField,
        "recording_layout",
        choices=Room.RecordingLayout.values,
        required=False,
    )
    max_speakers = StrictIntegerField(
        min_value=1,
        max_value=1000,
        required=False,
        allow_null=True,
        error_messages={"null": "", "required": ""},
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tenant: Tenant = self.context["tenant"]
        room: Room | None = self.context.get("instance")

        def current(name: str, default: Any = None) -> Any:
            if name in attrs:
                return attrs[name]
            return getattr(room, name) if room is not None else default

        if "timezone" in attrs:
            try:
                recurrence.get_zone(attrs["timezone"])
            except recurrence.RecurrenceError as exc:
                raise serializers.ValidationError({"timezone": [exc.message]}) from None
        recurring = current("recurring", False)
        if attrs.get("recurrence") is not None:
            if "recurring" in attrs and not attrs["recurring"]:
                raise serializers.ValidationError(
                    {"recurrence": ["The 'recurrence' needs 'recurring': true"]}
                )
            attrs["recurring"] = recurring = True
        if recurring and current("room_type") != Room.RoomType.SCHEDULED:
            if "room_type" in attrs:
                raise serializers.ValidationError(
                    {"room_type": ["Recurring rooms must have room_type 'scheduled'"]}
                )
            attrs["room_type"] = Room.RoomType.SCHEDULED

        room_type = current("room_type", Room.RoomType.TEMPORARY)
        access_type = current("access_type", Room.AccessType.PUBLIC)
        start_time, end_time = current("start_time"), current("end_time")

        if room_type == Room.RoomType.SCHEDULED and start_time is None:
            raise serializers.ValidationError(
                {"start_time": ["The 'start_time' is required for scheduled rooms"]}
            )
        if start_time is not None and end_time is not None and end_time <= start_time:
            raise serializers.ValidationError(
                {"end_time": ["The 'end_time' must be after 'start_time'"]}
            )
        scheduling = {"room_type", "start_time", "end_time", "recurring", "recurrence", "timezone"}
        if recurring and (room is None or scheduling & set(attrs)):
            raw = attrs.get("recurrence")
            if raw is None and "recurrence" not in attrs and room is not None:
                latest = room.schedules.order_by("-pk").first()
                raw = latest.rule if latest is not None and latest.rule else None
            zone_name = current("timezone") or tenant.timezone
            try:
                attrs["recurrence"] = recurrence.parse(
                    raw, start=start_time, zone=recurrence.get_zone(zone_name)
                )
            except recurrence.RecurrenceError as exc:
                raise serializers.ValidationError({exc.field: [exc.message]}) from None
        elif not recurring:
            attrs.pop("recurrence", None)

        if "password" in attrs and access_type != Room.AccessType.PASSWORD:
            raise serializers.ValidationError(
                {"password": ["The 'password' is only used when access_type is 'password'"]}
            )
        if access_type == Room.AccessType.PASSWORD and "password" not in attrs:
            has_hash = room is not None and bool(room.password_hash)
            if not has_hash:
                raise serializers.ValidationError(
                    {"password": ["The 'password' is required when access_type is 'password'"]}
                )

        if "whitelist_emails" in attrs and access_type != Room.AccessType.WHITELIST:
            raise serializers.ValidationError(
                {
                    "whitelist_emails": [
                        "The 'whitelist_emails' is only used when access_type is 'whitelist'"
                    ]
                }
            )
        if "allowed_email_domains" in attrs and access_type != Room.AccessType.AUTHENTICATED:
            raise serializers.ValidationError(
                {
                    "allowed_email_domains": [
                        "The 'allowed_email_domains' is only used when access_type is "
                        "'authenticated'"
                    ]
                }
            )
        if access_type == Room.AccessType.WHITELIST and not current("whitelist_emails", []):
            raise serializers.ValidationError(
                {
                    "whitelist_emails": [
                        "The 'whitelist_emails' must list at least one email when access_type "
                        "is 'whitelist'"
                    ]
                }
            )

        limit = tenant.plan.max_participants_per_room
        if "max_participants" in attrs and attrs["max_participants"] > limit:
            raise serializers.ValidationError(
                {
                    "max_participants": [
                        f"The 'max_participants' must not exceed your plan's limit of {limit} "
                        "participants per room"
                    ]
                }
            )
        return attrs


class RoomOutputSerializer(serializers.Serializer):
    """The room as the reference's example shows it, plus the settings it accepts."""

    id = serializers.IntegerField(source="number")
    room_id = serializers.CharField()
    name = serializers.CharField()
    room_type = serializers.CharField()
    media_type = serializers.CharField(help_text=MEDIA_TYPE_HELP)
    max_participants = serializers.IntegerField()
    access_type = serializers.CharField()
    status = serializers.CharField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    recurring = serializers.BooleanField()
    recording_enabled = serializers.BooleanField()
    screen_sharing_enabled = serializers.BooleanField(help_text=SCREEN_SHARING_HELP)
    chat_enabled = serializers.BooleanField()
    waiting_room_enabled = serializers.BooleanField()
    video_quality = serializers.CharField()
    audio_only_mode = serializers.BooleanField()
    host_controls = serializers.DictField(child=serializers.BooleanField())
    custom_logo_url = serializers.URLField(allow_null=True)
    timezone = serializers.CharField()
    recurrence = serializers.CharField(allow_null=True, help_text="RRULE and EXDATE lines")
    auto_close_config = AutoCloseField()
    join_before_minutes = serializers.IntegerField()
    deactivated = serializers.BooleanField()
    allow_webinar_mode = serializers.BooleanField()
    max_speakers = serializers.IntegerField(allow_null=True)
    whitelist_emails = serializers.ListField(child=serializers.EmailField())
    allowed_email_domains = serializers.ListField(
        child=serializers.CharField(),
        help_text="Authenticated rooms: email domains whose signed-in accounts (verified "
        "address) may join besides the tenant's members",
    )
    recording_layout = serializers.CharField()
    hidden_token = serializers.CharField(
        help_text="Secret for hidden (subscribe-only, invisible) participants: the `token` "
        "of the Callaba-compatible createToken with `hidden: true`"
    )
    hls_playlist_url = serializers.URLField(
        allow_null=True,
        help_text="Playlist (HLS) of the room's running live stream; null when none runs",
    )
    join_url = serializers.URLField()
    host_url = serializers.URLField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, room: Room) -> dict[str, Any]:
        # Hand-written for speed on long lists; the declared fields document the shape.
        # Lists pass every room's playlist URL in the context, read in one query.
        playlists = self.context.get("playlist_urls")
        return room_to_dict(
            room,
            self.context["base_url"],
            hls_playlist_url=playlists[room.pk] if playlists is not None else UNREAD,
        )


def _recurrence_text(room: Room) -> str | None:
    """The rule now in force (the newest schedule's); prefetch `schedules` for lists."""
    if not room.recurring:
        return None
    schedules = list(room.schedules.all())
    if not schedules:
        return None
    return max(schedules, key=lambda s: s.pk).rule or None


UNREAD: Any = object()  # room_to_dict's hls_playlist_url when the caller has not read it


def room_to_dict(
    room: Room, base_url: str, *, hls_playlist_url: str | None = UNREAD
) -> dict[str, Any]:
    """The v1 room object. `hls_playlist_url` is read here (one query) unless given."""
    if hls_playlist_url is UNREAD:
        hls_playlist_url = recording_services.live_playlist_url(room, base_url=base_url)
    return {
        "id": room.number,
        "room_id": room.room_id,
        "name": room.name,
        "room_type": room.room_type,
        "media_type": room.media_type,
        "max_participants": room.max_participants,
        "access_type": room.access_type,
        "status": room.status,
        "start_time": format_datetime(room.start_time),
        "end_time": format_datetime(room.end_time),
        "recurring": room.recurring,
        "recording_enabled": room.recording_enabled,
        "screen_sharing_enabled": room.screen_sharing_enabled,
        "chat_enabled": room.chat_enabled,
        "waiting_room_enabled": room.waiting_room_enabled,
        "video_quality": room.video_quality,
        "audio_only_mode": room.audio_only_mode,
        "host_controls": room.host_controls,
        "custom_logo_url": room.custom_logo_url or None,
        "timezone": room.timezone,
        "recurrence": _recurrence_text(room),
        "auto_close_config": {"type": room.auto_close_type, "duration": room.auto_close_duration},
        "join_before_minutes": room.join_before_minutes,
        "deactivated": room.deactivated_at is not None,
        "allow_webinar_mode": room.allow_webinar_mode,
        "max_speakers": room.max_speakers,
        "whitelist_emails": room.whitelist_emails
        if room.access_type == Room.AccessType.WHITELIST
        else [],
        "allowed_email_domains": room.allowed_email_domains
        if room.access_type == Room.AccessType.AUTHENTICATED
        else [],
        "recording_layout": room.recording_layout,
        "hidden_token": hidden_token(room),
        "hls_playlist_url": hls_playlist_url,
        "join_url": f"{base_url}/room/{room.room_id}",
        "host_url": f"{base_url}/room/{room.room_id}/host/{room.host_secret}",
        "created_at": format_datetime(room.created_at),
        "updated_at": format_datetime(room.updated_at),
        "started_at": format_datetime(room.started_at),
        "ended_at": format_datetime(room.ended_at),
    }


class RoomListSerializer(serializers.Serializer):
    rooms = RoomOutputSerializer(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


class TokenInputSerializer(StrictSerializer):
    name = _field(StrictCharField, "name", min_length=1, max_length=100)
    identity = _field(StrictCharField, "identity", min_length=1, max_length=128, required=False)
    role = _field(StrictChoiceField, "role", choices=Role.values, required=False)

    def validate_identity(self, value: str) -> str:
        if not all(c.isalnum() or c in "-_.@:" for c in value):
            raise serializers.ValidationError(
                "The 'identity' may contain letters, digits and - _ . @ : only"
            )
        return value


# The token's shape is written once, in conferences.shapes (this name is kept for imports).
TokenOutputSerializer = shapes.schema(shapes.TokenJSON)


class ParticipantSerializer(serializers.Serializer):
    sid = serializers.CharField()
    identity = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField(allow_null=True)
    joined_at = serializers.DateTimeField(allow_null=True)
    is_publisher = serializers.BooleanField()
