"""v1 occurrences: list a scheduled room's occurrences, move or cancel one, change the series
from one on."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from conferences import recurrence
from conferences.models import Occurrence, Room
from conferences.services import schedule as schedule_services

from ..errors import ApiError, NotFound
from ..fields import OffsetDateTimeField, StrictChoiceField, format_datetime
from .serializers import RecurrenceField, StrictSerializer, _field
from .views import V1View, _choice_param, _int_param

MAX_LIST_AHEAD = dt.timedelta(days=366)


def occurrence_to_dict(occurrence: Occurrence, room: Room) -> dict[str, Any]:
    zone = recurrence.get_zone(occurrence.schedule.timezone)
    return {
        "occurrence_id": occurrence.occurrence_id,
        "room_id": room.room_id,
        "status": occurrence.status,
        "start_time": format_datetime(occurrence.start_time),
        "end_time": format_datetime(occurrence.end_time),
        "local_start": occurrence.start_time.astimezone(zone).isoformat(timespec="seconds"),
        "timezone": occurrence.schedule.timezone,
        "original_start": format_datetime(occurrence.original_start),
        "modified": occurrence.modified,
        "opens_at": format_datetime(
            occurrence.start_time - dt.timedelta(minutes=room.join_before_minutes)
        ),
        "started_at": format_datetime(occurrence.started_at),
        "ended_at": format_datetime(occurrence.ended_at),
    }


class OccurrenceSerializer(serializers.Serializer):
    occurrence_id = serializers.CharField()
    room_id = serializers.CharField()
    status = serializers.ChoiceField(choices=Occurrence.Status.values)
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField(allow_null=True)
    local_start = serializers.CharField(help_text="start in the schedule's zone, with offset")
    timezone = serializers.CharField()
    original_start = serializers.DateTimeField()
    modified = serializers.BooleanField()
    opens_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)


class OccurrenceListSerializer(serializers.Serializer):
    occurrences = OccurrenceSerializer(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    window_end = serializers.DateTimeField(
        allow_null=True,
        help_text="Occurrences of an endless series are listed up to this instant (the stored "
        "window, or `to`); null when the listing is complete: a series with COUNT or UNTIL is "
        f"always listed to its end (at most {recurrence.MAX_COUNT} occurrences or "
        f"{recurrence.MAX_YEARS} years).",
    )
    next = serializers.URLField(
        allow_null=True,
        help_text="The next page: more occurrences of this window, or the next window of an "
        "endless series (up to 366 days ahead); null when there is nothing further.",
    )


class OccurrenceChangeSerializer(StrictSerializer):
    """PATCH body. scope "this" (default) moves or cancels one occurrence; "following" changes
    the series from this occurrence on (new start/end time of day, rule or time zone)."""

    scope = _field(StrictChoiceField, "scope", choices=["this", "following"], required=False)
    status = _field(StrictChoiceField, "status", choices=["cancelled"], required=False)
    start_time = OffsetDateTimeField(required=False)
    end_time = OffsetDateTimeField(required=False, allow_null=True)
    recurrence = RecurrenceField(required=False, allow_null=True)
    timezone = serializers.CharField(required=False)


class OccurrencesView(V1View):
    """The occurrences of a scheduled room, soonest first. A series with COUNT or UNTIL is
    listed whole; an endless one up to `window_end`, and `next` links what follows."""

    @extend_schema(
        operation_id="list_occurrences",
        parameters=[
            OpenApiParameter("from", str, description="ISO 8601; default: now"),
            OpenApiParameter(
                "to",
                str,
                description="ISO 8601; default: all of a series with COUNT or UNTIL, the "
                "stored window of an endless one (`window_end`); extends it up to 366 days "
                "ahead",
            ),
            OpenApiParameter("status", enum=Occurrence.Status.values),
            OpenApiParameter("limit", int, description="1-500, default 50"),
            OpenApiParameter("offset", int),
        ],
        responses=OccurrenceListSerializer,
    )
    def get(self, request: Request, room_id: str) -> Response:
        room = self.get_room(request, room_id)
        limit = _int_param(request, "limit", 50, 1, 500)
        offset = _int_param(request, "offset", 0, 0, None)
        status = _choice_param(request, "status", Occurrence.Status.values)
        start = _time_param(request, "from")
        end = _time_param(request, "to")
        if start and end and end <= start:
            raise ApiError("The 'to' must be after 'from'", field="to")
        now = timezone.now()
        horizon = now + MAX_LIST_AHEAD
        window = schedule_services.ensure_complete(room=room)
        if end is not None and window is not None:
            schedule_services.ensure_until(room=room, until=min(end, horizon))
            window = min(end, horizon)
        qs = Occurrence.objects.filter(room=room).select_related("schedule")
        if start is not None:
            qs = qs.filter(start_time__gte=start)
        if end is not None:
            qs = qs.filter(start_time__lt=end)
        if window is not None:
            qs = qs.filter(start_time__lt=window)
        if status:
            qs = qs.filter(status=status)
        total = qs.count()
        page = list(qs.order_by("start_time", "pk")[offset : offset + limit])
        return Response(
            {
                "occurrences": [occurrence_to_dict(o, room) for o in page],
                "total": total,
                "limit": limit,
                "offset": offset,
                "window_end": format_datetime(window),
                "next": _next_link(
                    request, self.base_url(request), total=total, window=window, horizon=horizon
                ),
            }
        )


def _next_link(
    request: Request,
    base_url: str,
    *,
    total: int,
    window: dt.datetime | None,
    horizon: dt.datetime,
) -> str | None:
    """More of this window (offset + limit), else the next window of an endless series."""
    params = request.query_params.copy()
    limit = _int_param(request, "limit", 50, 1, 500)
    offset = _int_param(request, "offset", 0, 0, None)
    if offset + limit < total:
        params["offset"] = str(offset + limit)
    elif window is not None and window < horizon:
        days = dt.timedelta(days=settings.SCHEDULE_WINDOW_DAYS)
        params["from"] = format_datetime(window) or ""
        params["to"] = format_datetime(min(window + days, horizon)) or ""
        params.pop("offset", None)
    else:
        return None
    return f"{base_url}{request.path}?{params.urlencode()}"


def _time_param(request: Request, name: str) -> dt.datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ApiError(f"The '{name}' must be an ISO 8601 date-time with offset", field=name)
    return value


class OccurrenceDetailView(V1View):
    """One occurrence: read, move or cancel it, or change the series from it on."""

    def get_occurrence(self, request: Request, room_id: str, occurrence_id: str):
        room = self.get_room(request, room_id)
        occurrence = (
            Occurrence.objects.filter(room=room, occurrence_id=occurrence_id)
            .select_related("schedule")
            .first()
        )
        if occurrence is None:
            raise NotFound("Occurrence not found")
        return room, occurrence

    @extend_schema(operation_id="get_occurrence", responses=OccurrenceSerializer)
    def get(self, request: Request, room_id: str, occurrence_id: str) -> Response:
        room, occurrence = self.get_occurrence(request, room_id, occurrence_id)
        return Response(occurrence_to_dict(occurrence, room))

    @extend_schema(
        operation_id="update_occurrence",
        request=OccurrenceChangeSerializer,
        responses=OccurrenceSerializer,
    )
    def patch(self, request: Request, room_id: str, occurrence_id: str) -> Response:
        room, occurrence = self.get_occurrence(request, room_id, occurrence_id)
        serializer = OccurrenceChangeSerializer(data=self.json_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        scope = data.get("scope", "this")
        if scope == "this":
            if {"recurrence", "timezone"} & set(data):
                field = "recurrence" if "recurrence" in data else "timezone"
                raise ApiError(f"The '{field}' can only change with scope 'following'", field=field)
            if data.get("status") == "cancelled":
                occurrence = schedule_services.cancel_occurrence(occurrence=occurrence)
            elif "start_time" in data or "end_time" in data:
                start = data.get("start_time", occurrence.start_time)
                end = data["end_time"] if "end_time" in data else _shifted_end(occurrence, start)
                occurrence = schedule_services.move_occurrence(
                    occurrence=occurrence, start=start, end=end
                )
            else:
                raise ApiError("Send start_time/end_time to move, or status 'cancelled'")
            occurrence.refresh_from_db()
            return Response(occurrence_to_dict(occurrence, room))
        # scope == "following"
        if data.get("status") == "cancelled":
            schedule_services.end_series(occurrence=occurrence)
            occurrence.refresh_from_db()
            return Response(occurrence_to_dict(occurrence, room))
        zone_name = data.get("timezone") or occurrence.schedule.timezone
        try:
            zone = recurrence.get_zone(zone_name)
            start = data.get("start_time", occurrence.original_start)
            rule_given = "recurrence" in data
            rule = (
                recurrence.parse(data["recurrence"], start=start, zone=zone)
                if rule_given and data["recurrence"] is not None
                else None
            )
        except recurrence.RecurrenceError as exc:
            raise ApiError(exc.message, field=exc.field) from None
        if rule_given and rule is None:
            rule_given = True  # null: the series becomes a single occurrence
        new = schedule_services.split_series(
            occurrence=occurrence,
            change=schedule_services.SeriesChange(
                start=data.get("start_time"),
                end=data.get("end_time"),
                zone_name=zone_name,
                rule=rule,
                rule_given=rule_given,
            ),
        )
        first = new.occurrences.order_by("start_time").select_related("schedule").first()
        body = occurrence_to_dict(first, room) if first else {}
        return Response({"series_from": body, "recurrence": new.rule or None})

    @extend_schema(
        operation_id="cancel_occurrence",
        parameters=[OpenApiParameter("scope", enum=["this", "following"])],
        responses=OccurrenceSerializer,
    )
    def delete(self, request: Request, room_id: str, occurrence_id: str) -> Response:
        room, occurrence = self.get_occurrence(request, room_id, occurrence_id)
        scope = _choice_param(request, "scope", ["this", "following"], "this")
        if scope == "this":
            schedule_services.cancel_occurrence(occurrence=occurrence)
        else:
            schedule_services.end_series(occurrence=occurrence)
        occurrence.refresh_from_db()
        return Response(occurrence_to_dict(occurrence, room))


def _shifted_end(occurrence: Occurrence, start: dt.datetime) -> dt.datetime | None:
    """Moving the start keeps the occurrence's length."""
    if occurrence.end_time is None:
        return None
    return start + (occurrence.end_time - occurrence.start_time)
