"""The dashboard's webhooks pages for the fixed cast: admins add endpoints (secret shown once),
rotate, test, replay; members and viewers only look; outsiders get 404."""

from __future__ import annotations

import pytest

from conferences.models import WebhookDelivery, WebhookEndpoint
from conferences.services import webhooks as webhook_services
from tests.dashboard_cast import Cast
from tests.webhook_receiver import Receiver


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def add(cast: Cast, url: str, role: str = "admin"):
    return cast.client(role).post(
        "/dashboard/webhooks/", {"url": url, "events": ["room.created", "session-ended"]}
    )


def test_admin_adds_an_endpoint_and_sees_the_secret_once(cast: Cast, receiver):
    response = add(cast, receiver.url)
    page = response.content.decode()
    assert response.status_code == 200 and "whsec_" in page and "only once" in page
    endpoint = WebhookEndpoint.objects.get(tenant=cast.tenant)
    assert endpoint.events == ["room.created", "session-ended"]
    listing = cast.client("viewer").get("/dashboard/webhooks/").content.decode()
    assert receiver.url in listing and "whsec_" not in listing
    detail = cast.client("viewer").get(f"/dashboard/webhooks/{endpoint.endpoint_id}/")
    assert detail.status_code == 200 and "whsec_" not in detail.content.decode()
    rotated = cast.client("admin").post(f"/dashboard/webhooks/{endpoint.endpoint_id}/rotate/")
    assert "whsec_" in rotated.content.decode() and "24 hours" in rotated.content.decode()


def test_bad_endpoint_is_refused_with_a_message(cast: Cast, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = add(cast, "http://127.0.0.1:9/x")
    assert response.status_code == 400
    assert "private" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_change_webhooks(cast: Cast, receiver, role):
    assert add(cast, receiver.url, role).status_code == 403
    add(cast, receiver.url)
    endpoint = WebhookEndpoint.objects.get()
    for action in ("rotate", "test", "toggle", "delete", "replay"):
        url = f"/dashboard/webhooks/{endpoint.endpoint_id}/{action}/"
        assert cast.client(role).post(url, {"confirm": "yes"}).status_code == 403


def test_outsiders_get_404(cast: Cast, receiver):
    add(cast, receiver.url)
    endpoint = WebhookEndpoint.objects.get()
    outsider = cast.client("outsider")
    assert outsider.get(f"/dashboard/webhooks/{endpoint.endpoint_id}/").status_code == 404
    for action in ("rotate", "test", "toggle", "delete", "replay"):
        url = f"/dashboard/webhooks/{endpoint.endpoint_id}/{action}/"
        assert outsider.post(url, {"confirm": "yes"}).status_code == 404
    assert receiver.url not in outsider.get("/dashboard/webhooks/").content.decode()
    assert WebhookEndpoint.objects.filter(enabled=True).count() == 1


def test_delivery_log_test_event_and_replay(cast: Cast, receiver):
    add(cast, receiver.url)
    endpoint = WebhookEndpoint.objects.get()
    admin = cast.client("admin")
    admin.post(f"/dashboard/webhooks/{endpoint.endpoint_id}/test/")
    receiver.answer(500, body=b"receiver is down")
    webhook_services.deliver_endpoint(endpoint_pk=endpoint.pk)
    page = admin.get(f"/dashboard/webhooks/{endpoint.endpoint_id}/").content.decode()
    assert "webhook.test" in page and "<strong>500</strong>" in page
    assert "receiver is down" in page and "Replay" in page
    WebhookDelivery.objects.update(status="failed")
    response = admin.post(
        f"/dashboard/webhooks/{endpoint.endpoint_id}/replay/", {"since": "2000-01-01T00:00"}
    )
    assert response.status_code == 302
    assert WebhookDelivery.objects.get().status == "pending"
    delivery = WebhookDelivery.objects.get()
    delivery_url = (
        f"/dashboard/webhooks/{endpoint.endpoint_id}/deliveries/{delivery.delivery_id}/replay/"
    )
    assert admin.post(delivery_url).status_code == 302
    assert webhook_services.deliver_endpoint(endpoint_pk=endpoint.pk) == "idle"
    assert WebhookDelivery.objects.get().status == "succeeded"
    page = admin.get(f"/dashboard/webhooks/{endpoint.endpoint_id}/?status=succeeded")
    assert "Delivered" in page.content.decode()
    response = admin.post(f"/dashboard/webhooks/{endpoint.endpoint_id}/delete/", {"confirm": "yes"})
    assert response.status_code == 302 and not WebhookEndpoint.objects.exists()
