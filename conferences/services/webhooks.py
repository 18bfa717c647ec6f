"""Outbound webhooks: endpoints (register, change, rotate, delete), test events, replays, and
the delivery of the outbox (conferences.outbox writes it).

Delivery guarantees: at least once; one worker at a time per endpoint (a lease claimed with a
conditional UPDATE), in event order (the oldest pending delivery first: a failing event holds
back the later ones, so receivers never see them out of order); a delivery answered with a
2xx is marked succeeded in the same transaction that records the attempt and is never sent
again (replay refuses it). Failures retry with exponential backoff and jitter; an endpoint
that has failed for WEBHOOK_DISABLE_AFTER_HOURS is disabled, its pending deliveries marked
failed (replayable) and the tenant's owners and admins emailed.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, Tenant
from conferences import outbox, webhook_http
from conferences.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

from .errors import Conflict, InvalidInput

logger = logging.getLogger(__name__)
ROTATION_OVERLAP = timedelta(hours=24)
MAX_ENDPOINTS = 50  # per tenant
BATCH = 100  # deliveries one task run sends before handing over
PAGE = 20  # pending deliveries read at once


# --- endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedSecret:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def _clean_events(events: Any) -> list[str]:
    if not isinstance(events, list) or not events:
        raise InvalidInput('Give a non-empty list of event types (or ["*"])', field="events")
    cleaned: list[str] = []
    for item in events:
        if not isinstance(item, str) or (item != "*" and item not in outbox.EVENT_TYPES):
            raise InvalidInput(
                f"Unknown event type {item!r}; known: {', '.join(outbox.EVENT_TYPES)}",
                field="events",
            )
        if item not in cleaned:
            cleaned.append(item)
    return cleaned


def _clean_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip() or len(url) > 500:
        raise InvalidInput("Give the endpoint's URL (at most 500 characters)", field="url")
    url = url.strip()
    try:
        webhook_http.check_url(url)
    except webhook_http.UnsafeTarget as exc:
        raise InvalidInput(exc.message, field="url") from None
    return url


def _clean_description(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise InvalidInput("The description is text of at most 200 characters", field="description")
    return value


@transaction.atomic
def create_endpoint(
    *, tenant: Tenant, url: Any, events: Any, description: Any = ""
) -> IssuedSecret:
    """Register an endpoint; the URL must resolve to public addresses (unless
    WEBHOOK_ALLOW_PRIVATE_TARGETS). Returns it with its signing secret, shown once."""
    clean_url = _clean_url(url)
    clean_events = _clean_events(events)
    clean_description = _clean_description(description)
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
    if WebhookEndpoint.objects.filter(tenant=tenant, room__isnull=True).count() >= MAX_ENDPOINTS:
        raise InvalidInput(f"A workspace may have at most {MAX_ENDPOINTS} endpoints", field="url")
    secret = webhook_http.new_secret()
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant,
        url=clean_url,
        events=clean_events,
        description=clean_description,
        secret_encrypted=webhook_http.seal(secret),
    )
    return IssuedSecret(endpoint=endpoint, secret=secret)


@transaction.atomic
def update_endpoint(*, endpoint: WebhookEndpoint, data: dict[str, Any]) -> WebhookEndpoint:
    """Change url, events, description or enabled. Re-enabling clears the failure state and
    queues what is pending. A room's endpoint follows its room: only `enabled` changes."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    unknown = set(data) - {"url", "events", "description", "enabled"}
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"Unknown field '{field}'", field=field)
    if endpoint.room_id is not None and set(data) - {"enabled"}:
        field = sorted(set(data) - {"enabled"})[0]
        raise InvalidInput("A room's endpoint is changed through the room", field=field)
    if "url" in data:
        endpoint.url = _clean_url(data["url"])
    if "events" in data:
        endpoint.events = _clean_events(data["events"])
    if "description" in data:
        endpoint.description = _clean_description(data["description"])
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise InvalidInput("'enabled' must be true or false", field="enabled")
        if data["enabled"] and not endpoint.enabled:
            endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
            now = timezone.now()
            endpoint.deliveries.filter(status=WebhookDelivery.Status.PENDING).update(
                next_attempt_at=now
            )
            pk = endpoint.pk
            transaction.on_commit(lambda: _maybe_queue([pk]))
        elif not data["enabled"] and endpoint.enabled:
            endpoint.disabled_at, endpoint.disabled_reason = timezone.now(), "disabled by a user"
        endpoint.enabled = data["enabled"]
    endpoint.save()
    return endpoint


@transaction.atomic
def delete_endpoint(*, endpoint: WebhookEndpoint) -> None:
    if endpoint.room_id is not None:
        raise Conflict("A room's endpoint is removed by clearing the room's webhook")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


@transaction.atomic
def rotate_secret(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> IssuedSecret:
    """A new signing secret (shown once); the current one keeps signing alongside it for
    24 hours so receivers can switch without losing events."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = webhook_http.new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret_encrypted = webhook_http.seal(secret)
    endpoint.save()
    return IssuedSecret(endpoint=endpoint, secret=secret)


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [webhook_http.unseal(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        secrets.append(webhook_http.unseal(endpoint.previous_secret_encrypted))
    return secrets


@transaction.atomic
def send_test_event(*, endpoint: WebhookEndpoint) -> WebhookEvent:
    """A `webhook.test` event for this endpoint alone, delivered like any other."""
    event = outbox.record(
        outbox.TEST_TYPE,
        tenant_id=endpoint.tenant_id,
        room_id="",
        data={"endpoint_id": endpoint.endpoint_id, "message": "Test event from Parley"},
        only=endpoint.pk,
    )
    assert event is not None
    return event


# --- replay ------------------------------------------------------------------------------


@transaction.atomic
def replay_delivery(*, delivery: WebhookDelivery, now: datetime | None = None) -> WebhookDelivery:
    """Send a failed (or still pending) delivery again now. A delivery a receiver already
    answered with a 2xx is never sent again (409)."""
    now = now or timezone.now()
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status == WebhookDelivery.Status.SUCCEEDED:
        raise Conflict(
            "This event was already delivered (2xx); it is never sent twice",
            code="ALREADY_DELIVERED",
        )
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = now
    delivery.save(update_fields=["status", "next_attempt_at"])
    pk = delivery.endpoint_id
    transaction.on_commit(lambda: _maybe_queue([pk]))
    return delivery


@transaction.atomic
def replay_failed(
    *, endpoint: WebhookEndpoint, since: datetime, now: datetime | None = None
) -> int:
    """Send again every failed delivery of the endpoint whose event is at or after `since`.
    Returns how many."""
    now = now or timezone.now()
    count = WebhookDelivery.objects.filter(
        endpoint=endpoint, status=WebhookDelivery.Status.FAILED, event_created_at__gte=since
    ).update(status=WebhookDelivery.Status.PENDING, next_attempt_at=now)
    if count:
        pk = endpoint.pk
        transaction.on_commit(lambda: _maybe_queue([pk]))
    return count


def _maybe_queue(endpoint_pks: list[int]) -> None:
    if settings.WEBHOOK_QUEUE_ON_COMMIT:
        outbox.queue(endpoint_pks)


# --- delivery ----------------------------------------------------------------------------


def backoff(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: exponential from WEBHOOK_RETRY_BASE_SECONDS,
    capped at WEBHOOK_RETRY_MAX_SECONDS, plus up to 25 % jitter (so endpoints that fail
    together do not retry in lockstep)."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    delay = min(base * (2 ** min(max(attempts - 1, 0), 30)), settings.WEBHOOK_RETRY_MAX_SECONDS)
    return delay * (1 + random.uniform(0, 0.25))


def _claim(endpoint_pk: int, now: datetime) -> datetime | None:
    """Take the endpoint's lease (conditional UPDATE touching one row), or None if another
    worker holds it or the endpoint is disabled or gone."""
    until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    claimed = (
        WebhookEndpoint.objects.filter(pk=endpoint_pk, enabled=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=until)
    )
    return until if claimed == 1 else None


def _release(endpoint_pk: int, lease: datetime) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint_pk, lease_until=lease).update(lease_until=None)


def deliver_endpoint(
    *, endpoint_pk: int, now: datetime | None = None, client: httpx.Client | None = None
) -> str:
    """Deliver the endpoint's due events in order, until one fails, none is due, or a batch
    is done. Returns idle | waiting | failed | busy | more | disabled (for logs and tests).
    `now` fixes the clock (tests); by default each attempt reads the time."""
    clock = (lambda: now) if now is not None else timezone.now
    own_client = client is None
    http = client
    try:
        while True:
            lease = _claim(endpoint_pk, clock())
            if lease is None:
                return "busy"
            if http is None:  # only once the endpoint is ours: most "busy" runs need none
                http = webhook_http.new_client()
            try:
                result, lease = _run(endpoint_pk, lease, http, clock)
            finally:
                _release(endpoint_pk, lease)
            # A task for an event committed while we held the lease found it busy and left:
            # look once more after letting go, so that event does not wait for the sweeper.
            if result != "idle" or not _due(endpoint_pk, clock()):
                return result
    finally:
        if own_client and http is not None:
            http.close()


def _due(endpoint_pk: int, now: datetime) -> bool:
    return WebhookDelivery.objects.filter(
        endpoint_id=endpoint_pk, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).exists()


def _run(endpoint_pk: int, lease: datetime, http: httpx.Client, clock: Any) -> tuple[str, datetime]:
    """Send due deliveries in order while holding the lease (see deliver_endpoint); returns
    the outcome and the lease as last renewed. Pending deliveries are read a page at a time,
    in event order; the lease is renewed (and the endpoint's row re-read) between pages and
    whenever half of it has gone by."""
    sent = 0
    while sent < BATCH:
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_pk, enabled=True).first()
        if endpoint is None:
            return "disabled", lease
        page = list(
            WebhookDelivery.objects.filter(
                endpoint_id=endpoint_pk, status=WebhookDelivery.Status.PENDING
            )
            .select_related("event")
            .order_by("event_created_at", "pk")[: min(PAGE, BATCH - sent)]
        )
        if not page:
            return "idle", lease
        half = timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS / 2)
        for delivery in page:
            if delivery.next_attempt_at > clock():
                return "waiting", lease
            if not _attempt(endpoint, delivery, http, clock()):
                return "failed", lease
            sent += 1
            if lease - clock() < half:
                renewed = _renew(endpoint_pk, lease, clock())
                if renewed is None:
                    return "busy", lease  # lost the lease: another worker carries on
                lease = renewed
        renewed = _renew(endpoint_pk, lease, clock())
        if renewed is None:
            return "busy", lease
        lease = renewed
    return "more", lease


def _renew(endpoint_pk: int, lease: datetime, now: datetime) -> datetime | None:
    renewed = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    if WebhookEndpoint.objects.filter(pk=endpoint_pk, lease_until=lease).update(
        lease_until=renewed
    ):
        return renewed
    return None


def _attempt(
    endpoint: WebhookEndpoint, delivery: WebhookDelivery, http: httpx.Client, now: datetime
) -> bool:
    body = json.dumps(delivery.event.payload, separators=(",", ":")).encode()
    try:
        target = webhook_http.resolve(endpoint.url)
    except webhook_http.UnsafeTarget as exc:
        outcome = webhook_http.Outcome(None, "", 0, error=exc.message[:200])
    else:
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": webhook_http.USER_AGENT,
            webhook_http.EVENT_ID_HEADER: delivery.event.event_id,
            "Parley-Event-Type": delivery.event.type,
            "Parley-Delivery-Id": delivery.delivery_id,
            webhook_http.SIGNATURE_HEADER: webhook_http.signature_header(
                signing_secrets(endpoint, now), body, timestamp
            ),
        }
        outcome = webhook_http.post(http, target, body, headers)
    return _record(
        endpoint.pk, delivery.pk, outcome, now, failing=endpoint.failing_since is not None
    )


@transaction.atomic
def _record(
    endpoint_pk: int,
    delivery_pk: int,
    outcome: webhook_http.Outcome,
    now: datetime,
    *,
    failing: bool = True,
) -> bool:
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_pk)
    WebhookAttempt.objects.create(
        delivery=delivery,
        at=now,
        status_code=outcome.status,
        latency_ms=outcome.latency_ms,
        response_excerpt=outcome.excerpt,
        error=outcome.error,
    )
    if delivery.status == WebhookDelivery.Status.SUCCEEDED:
        return True  # another worker finished it meanwhile: nothing more to do
    delivery.attempts += 1
    delivery.first_attempt_at = delivery.first_attempt_at or now
    delivery.last_attempt_at = now
    delivery.last_status_code = outcome.status
    if outcome.ok:
        delivery.status = WebhookDelivery.Status.SUCCEEDED
        delivery.delivered_at = now
        delivery.save()
        if failing:
            WebhookEndpoint.objects.filter(pk=endpoint_pk).update(failing_since=None)
        return True
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_pk)
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        endpoint.save(update_fields=["failing_since"])
    if now - endpoint.failing_since >= timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS):
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.save()
        _disable(endpoint, now)
        return False
    delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts))
    delivery.save()
    return False


def _disable(endpoint: WebhookEndpoint, now: datetime) -> None:
    hours = settings.WEBHOOK_DISABLE_AFTER_HOURS
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = f"failing for {hours:g} hours"
    endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
    WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED
    )
    emails = list(
        Membership.objects.filter(
            tenant_id=endpoint.tenant_id, role__in=[Membership.Role.OWNER, Membership.Role.ADMIN]
        ).values_list("user__email", flat=True)
    )
    url, endpoint_id = endpoint.url, endpoint.endpoint_id

    def mail() -> None:
        try:
            send_mail(
                "Parley disabled a webhook endpoint",
                f"The endpoint {url} ({endpoint_id}) has failed every delivery for {hours:g} "
                "hours, so Parley stopped sending to it. Its undelivered events are kept as "
                "failed: fix the endpoint, enable it again in the dashboard (Webhooks) or "
                'with PATCH /api/v1/webhooks/{id} {"enabled": true}, and replay them.',
                settings.DEFAULT_FROM_EMAIL,
                emails,
            )
        except Exception:  # the endpoint is disabled either way; the log says why no mail
            logger.exception("Could not email the admins of tenant %s", endpoint.tenant_id)

    if emails:
        transaction.on_commit(mail)
    logger.warning("Webhook endpoint %s disabled after failing for %s h", endpoint_id, hours)


def due_endpoints(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Endpoints with a due pending delivery and no live lease (for the sweeper)."""
    now = now or timezone.now()
    return list(
        WebhookEndpoint.objects.filter(enabled=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(
            deliveries__status=WebhookDelivery.Status.PENDING,
            deliveries__next_attempt_at__lte=now,
        )
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
