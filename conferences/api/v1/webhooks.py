"""v1 webhooks (endpoints, deliveries, replay), sessions and attendance, and usage.

Translation only: every write is one call into services.webhooks; reads start from the
caller's tenant, so another tenant's endpoint, delivery or session is a 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Prefetch
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from conferences import outbox
from conferences.models import (
    Attendance,
    RoomSession,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from conferences.services import webhooks as webhook_services
from dashboard import usage

from ..errors import ApiError, NotFound
from ..fields import format_datetime
from .views import V1View, _choice_param, _int_param

MAX_USAGE_DAYS = 366


def endpoint_to_dict(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.endpoint_id,
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "room_id": endpoint.room.room_id if endpoint.room is not None else None,
        "enabled": endpoint.enabled,
        "disabled_at": format_datetime(endpoint.disabled_at),
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": format_datetime(endpoint.failing_since),
        "previous_secret_expires_at": format_datetime(
            endpoint.previous_secret_expires_at
            if endpoint.previous_secret_expires_at
            and endpoint.previous_secret_expires_at > timezone.now()
            else None
        ),
        "created_at": format_datetime(endpoint.created_at),
        "updated_at": format_datetime(endpoint.updated_at),
    }


def attempt_to_dict(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "at": format_datetime(attempt.at),
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response": attempt.response_excerpt,
        "error": attempt.error,
    }


def delivery_to_dict(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.delivery_id,
        "event_id": delivery.event.event_id,
        "event_type": delivery.event.type,
        "event_created_at": format_datetime(delivery.event_created_at),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": format_datetime(
            delivery.next_attempt_at if delivery.status == "pending" else None
        ),
        "delivered_at": format_datetime(delivery.delivered_at),
        "last_status_code": delivery.last_status_code,
        "attempt_log": [attempt_to_dict(a) for a in delivery.attempt_log.all()],
        "payload": delivery.event.payload,
    }


def _body(view: V1View, request: Request) -> dict[str, Any]:
    data = view.json_body(request)
    if not isinstance(data, dict):
        raise ApiError("Send a JSON object")
    return data


class WebhookView(V1View):
    def get_endpoint(self, request: Request, endpoint_id: str) -> WebhookEndpoint:
        endpoint = (
            WebhookEndpoint.objects.filter(tenant=self.tenant(request), endpoint_id=endpoint_id)
            .select_related("room")
            .first()
        )
        if endpoint is None:
            raise NotFound("Webhook endpoint not found")
        return endpoint


class WebhooksView(WebhookView):
    """List the tenant's endpoints (rooms' own endpoints included), or register one."""

    @extend_schema(
        operation_id="list_webhooks",
        parameters=[
            OpenApiParameter("limit", int, description="1-100, default 50"),
            OpenApiParameter("offset", int, description="default 0"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        limit = _int_param(request, "limit", 50, 1, 100)
        offset = _int_param(request, "offset", 0, 0, None)
        endpoints = WebhookEndpoint.objects.filter(tenant=self.tenant(request))
        total = endpoints.count()
        page = endpoints.select_related("room").order_by("created_at", "pk")[
            offset : offset + limit
        ]
        return Response(
            {
                "webhooks": [endpoint_to_dict(e) for e in page],
                "total": total,
                "limit": limit,
                "offset": offset,
                "event_types": list(outbox.EVENT_TYPES),
            }
        )

    @extend_schema(
        operation_id="create_webhook", request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT
    )
    def post(self, request: Request) -> Response:
        data = _body(self, request)
        unknown = set(data) - {"url", "events", "description"}
        if unknown:
            field = sorted(unknown)[0]
            raise ApiError(f"Unknown field '{field}'", field=field)
        issued = webhook_services.create_endpoint(
            tenant=self.tenant(request),
            url=data.get("url"),
            events=data.get("events"),
            description=data.get("description", ""),
        )
        return Response({**endpoint_to_dict(issued.endpoint), "secret": issued.secret}, status=201)


class WebhookDetailView(WebhookView):
    @extend_schema(operation_id="get_webhook", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, endpoint_id: str) -> Response:
        return Response(endpoint_to_dict(self.get_endpoint(request, endpoint_id)))

    @extend_schema(
        operation_id="update_webhook", request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT
    )
    def patch(self, request: Request, endpoint_id: str) -> Response:
        endpoint = self.get_endpoint(request, endpoint_id)
        endpoint = webhook_services.update_endpoint(endpoint=endpoint, data=_body(self, request))
        return Response(endpoint_to_dict(endpoint))

    @extend_schema(operation_id="delete_webhook", request=None, responses=OpenApiTypes.OBJECT)
    def delete(self, request: Request, endpoint_id: str) -> Response:
        endpoint = self.get_endpoint(request, endpoint_id)
        webhook_services.delete_endpoint(endpoint=endpoint)
        return Response({"deleted": True, "id": endpoint_id})


class WebhookRotateView(WebhookView):
    """A new signing secret, shown once; the old one keeps signing for 24 hours."""

    @extend_schema(
        operation_id="rotate_webhook_secret", request=None, responses=OpenApiTypes.OBJECT
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        issued = webhook_services.rotate_secret(endpoint=self.get_endpoint(request, endpoint_id))
        return Response({**endpoint_to_dict(issued.endpoint), "secret": issued.secret})


class WebhookTestView(WebhookView):
    """Send a `webhook.test` event to this endpoint."""

    @extend_schema(operation_id="send_webhook_test", request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, endpoint_id: str) -> Response:
        event = webhook_services.send_test_event(endpoint=self.get_endpoint(request, endpoint_id))
        return Response({"event_id": event.event_id, "type": event.type}, status=202)


class WebhookDeliveriesView(WebhookView):
    """Deliveries of one endpoint, newest event first, each with its attempts."""

    @extend_schema(
        operation_id="list_webhook_deliveries",
        parameters=[
            OpenApiParameter("status", enum=WebhookDelivery.Status.values),
            OpenApiParameter("limit", int, description="1-100, default 20"),
            OpenApiParameter("offset", int, description="default 0"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = self.get_endpoint(request, endpoint_id)
        status = _choice_param(request, "status", WebhookDelivery.Status.values)
        limit = _int_param(request, "limit", 20, 1, 100)
        offset = _int_param(request, "offset", 0, 0, None)
        deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
        if status:
            deliveries = deliveries.filter(status=status)
        total = deliveries.count()
        page = (
            deliveries.select_related("event")
            .prefetch_related(
                Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("at", "pk"))
            )
            .order_by("-event_created_at", "-pk")[offset : offset + limit]
        )
        return Response(
            {
                "deliveries": [delivery_to_dict(d) for d in page],
                "total": total,
                "limit": limit,
                "offset": offset,
            }
        )


class DeliveryReplayView(WebhookView):
    """Send one delivery again (not one already answered with a 2xx: 409)."""

    @extend_schema(
        operation_id="replay_webhook_delivery", request=None, responses=OpenApiTypes.OBJECT
    )
    def post(self, request: Request, endpoint_id: str, delivery_id: str) -> Response:
        endpoint = self.get_endpoint(request, endpoint_id)
        delivery = (
            WebhookDelivery.objects.filter(endpoint=endpoint, delivery_id=delivery_id)
            .select_related("event")
            .first()
        )
        if delivery is None:
            raise NotFound("Delivery not found")
        delivery = webhook_services.replay_delivery(delivery=delivery)
        return Response({"id": delivery.delivery_id, "status": delivery.status}, status=202)


class WebhookReplayView(WebhookView):
    """Send again every failed delivery of events since `since` (ISO 8601)."""

    @extend_schema(
        operation_id="replay_failed_webhooks",
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        endpoint = self.get_endpoint(request, endpoint_id)
        data = _body(self, request)
        raw = data.get("since")
        since = parse_datetime(raw) if isinstance(raw, str) else None
        if since is None:
            raise ApiError("Give 'since' as an ISO 8601 date and time", field="since")
        if timezone.is_naive(since):
            since = since.replace(tzinfo=dt.UTC)
        count = webhook_services.replay_failed(endpoint=endpoint, since=since)
        return Response({"replayed": count}, status=202)


# --- sessions and attendance ----------------------------------------------------------------


def _seconds(joined: dt.datetime, left: dt.datetime | None, now: dt.datetime) -> int:
    return max(0, int(((left or now) - joined).total_seconds()))


def session_to_dict(session: RoomSession, now: dt.datetime) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "started_at": format_datetime(session.started_at),
        "ended_at": format_datetime(session.ended_at),
        "duration_seconds": _seconds(session.started_at, session.ended_at, now),
        "participants": getattr(session, "attendance_count", None),
    }


def attendance_to_dict(att: Attendance, now: dt.datetime) -> dict[str, Any]:
    return {
        "identity": att.identity,
        "name": att.name,
        "participant_sid": att.participant_sid,
        "joined_at": format_datetime(att.joined_at),
        "left_at": format_datetime(att.left_at),
        "duration_seconds": _seconds(att.joined_at, att.left_at, now),
        "left_by": att.left_by or None,
    }


class RoomSessionsView(V1View):
    """The room's live runs, newest first."""

    @extend_schema(
        operation_id="list_room_sessions",
        parameters=[
            OpenApiParameter("limit", int, description="1-100, default 20"),
            OpenApiParameter("offset", int, description="default 0"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, room_id: str) -> Response:
        room = self.get_room(request, room_id)
        limit = _int_param(request, "limit", 20, 1, 100)
        offset = _int_param(request, "offset", 0, 0, None)
        sessions = RoomSession.objects.filter(room=room)
        total = sessions.count()
        page = sessions.annotate(attendance_count=Count("attendances")).order_by(
            "-started_at", "-pk"
        )[offset : offset + limit]
        now = timezone.now()
        return Response(
            {
                "sessions": [session_to_dict(s, now) for s in page],
                "total": total,
                "limit": limit,
                "offset": offset,
            }
        )


class SessionAttendanceView(V1View):
    """Who was in one session, when, and for how long (each stay a row; a rejoin is a new
    row)."""

    @extend_schema(operation_id="list_session_attendance", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, room_id: str, session_id: str) -> Response:
        room = self.get_room(request, room_id)
        session = RoomSession.objects.filter(room=room, session_id=session_id).first()
        if session is None:
            raise NotFound("Session not found")
        now = timezone.now()
        rows = Attendance.objects.filter(session=session).order_by("joined_at", "pk")
        return Response(
            {
                **session_to_dict(session, now),
                "room_id": room.room_id,
                "attendance": [attendance_to_dict(a, now) for a in rows],
            }
        )


# --- usage ----------------------------------------------------------------------------------


def _date_param(request: Request, name: str, default: dt.date) -> dt.date:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse_date(raw)
    except ValueError:
        value = None
    if value is None:
        raise ApiError(f"The '{name}' must be a date (YYYY-MM-DD)", field=name)
    return value


class UsageView(V1View):
    """Participant-minutes per UTC day from attendance (exact to the second), `from`..`to`
    inclusive (default: the last 30 days)."""

    @extend_schema(
        operation_id="get_usage",
        parameters=[
            OpenApiParameter("from", str, description="first UTC day, YYYY-MM-DD"),
            OpenApiParameter("to", str, description="last UTC day, YYYY-MM-DD (default today)"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        now = timezone.now()
        today = now.astimezone(dt.UTC).date()
        last = _date_param(request, "to", today)
        first = _date_param(request, "from", last - dt.timedelta(days=29))
        if first > last:
            raise ApiError("'from' must not be after 'to'", field="from")
        if (last - first).days + 1 > MAX_USAGE_DAYS:
            raise ApiError(f"Ask for at most {MAX_USAGE_DAYS} days at once", field="from")
        seconds = usage.participant_seconds(self.tenant(request), first=first, last=last, now=now)
        days = [
            {
                "date": day.isoformat(),
                "participant_seconds": value,
                "participant_minutes": usage.to_minutes(value),
            }
            for day, value in seconds.items()
        ]
        return Response(
            {
                "from": first.isoformat(),
                "to": last.isoformat(),
                "days": days,
                "total_participant_seconds": sum(seconds.values()),
                "total_participant_minutes": sum(d["participant_minutes"] for d in days),
            }
        )
