"""Outbound webhooks: the outbox, signatures, retries, ordering, rotation, safety, replay,
the API and its tenant isolation. A real HTTP receiver on loopback; deliveries are run by
calling the delivery service with an explicit clock (the real worker: test_webhooks_worker)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from conferences import events, outbox, webhook_http
from conferences.models import Room, WebhookDelivery, WebhookEndpoint, WebhookEvent
from conferences.services import livekit_events
from conferences.services import rooms as room_services
from conferences.services import webhooks as webhook_services
from tests.conftest import assert_error
from tests.webhook_receiver import Receiver

H = dt.timedelta(hours=1)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def register(api, url: str, events=("*",)) -> dict:
    response = api.post("/api/v1/webhooks", {"url": url, "events": list(events)})
    assert response.status_code == 201, response.content
    return response.json()


def endpoint_of(hook: dict) -> WebhookEndpoint:
    return WebhookEndpoint.objects.get(endpoint_id=hook["id"])


def deliver(hook: dict, now: dt.datetime | None = None) -> str:
    return webhook_services.deliver_endpoint(endpoint_pk=endpoint_of(hook).pk, now=now)


def drain(hook: dict) -> None:
    while deliver(hook) == "more":
        pass


def test_every_event_type_arrives_signed_with_the_one_payload_shape(api, owner, livekit, receiver):
    hook = register(api, receiver.url)
    secret = hook["secret"]
    room = api.post("/api/v1/rooms", {"name": "Town hall", "allow_webinar_mode": True}).json()
    rid = room["room_id"]
    api.patch(f"/api/v1/rooms/{rid}", {"name": "Town hall 2"})
    api.post(f"/api/v1/rooms/{rid}/start")
    api.post(f"/api/v1/rooms/{rid}/tokens", {"name": "Ann", "identity": "ann"})
    model = Room.objects.get(room_id=rid)
    notice = dict(room=rid, name="Ann", created_at=0, room_sid="RM_1")
    livekit_events.apply(
        livekit_events.livekit.WebhookNotice(
            event="participant_joined", identity="ann", event_id="EV_j", participant_sid="PA_a",
            joined_at=timezone.now().timestamp(), **notice,
        )
    )  # fmt: skip
    assert (
        api.post(f"/api/v1/rooms/{rid}/participants/ann/hand", {"raised": True}).status_code == 200
    )
    assert api.post(f"/api/v1/rooms/{rid}/participants/ann/promote", {}).status_code == 200
    assert api.post(f"/api/v1/rooms/{rid}/participants/ann/demote", {}).status_code == 200
    livekit_events.apply(
        livekit_events.livekit.WebhookNotice(
            event="participant_left", identity="ann", event_id="EV_l", participant_sid="PA_a",
            **notice,
        )
    )  # fmt: skip
    # Types whose emitters live elsewhere (lobby, scheduler, recording, HLS, livestream):
    # emitted under the names those services use.
    media = [t for t in outbox.VIDEOSDK_TYPES if t.startswith(("recording", "hls", "livestream"))]
    others = ["participant.admitted", "participant.rejected", "occurrence.started",
              "occurrence.missed", *media]  # fmt: skip
    for name in others:
        events.emit_on_commit(name, tenant_id=owner.tenant.pk, room_id=rid, data={"x": 1})
    api.post(f"/api/v1/rooms/{rid}/stop")
    api.delete(f"/api/v1/rooms/{rid}")
    # Not outbound: stays internal.
    events.emit_on_commit("participant.waiting", tenant_id=owner.tenant.pk, room_id=rid, data={})
    drain(hook)

    got = receiver.types()
    assert set(got) == set(outbox.EVENT_TYPES), set(outbox.EVENT_TYPES) ^ set(got)
    assert len(got) == len(outbox.EVENT_TYPES)  # once each
    assert got[:3] == ["room.created", "room.updated", "session-started"]  # in event order
    assert got[-2:] == ["session-ended", "room.deleted"]
    for request in receiver.requests:
        body = request.json
        assert set(body) == {"id", "type", "created_at", "tenant", "room", "data"}
        assert body["tenant"] == owner.tenant.public_id
        assert body["room"]["room_id"] == rid
        assert request.headers["Parley-Event-Id"] == body["id"]
        assert request.headers["Content-Type"] == "application/json"
        assert webhook_http.verify_signature(
            request.headers["Parley-Signature"], request.body, secret
        ), request.headers["Parley-Signature"]
        assert not webhook_http.verify_signature(
            request.headers["Parley-Signature"], request.body + b" ", secret
        )
    by_type = {r.json["type"]: r.json for r in receiver.requests}
    assert by_type["room.created"]["room"]["name"] == "Town hall"
    assert by_type["participant-joined"]["data"]["identity"] == "ann"
    assert by_type["session-started"]["data"]["session_id"].startswith("se_")
    assert by_type["session-ended"]["data"]["ended_at"]
    assert by_type["room.deleted"]["room"] == {"room_id": rid}
    assert model.room_id == rid


def test_500_three_times_then_200_delivers_exactly_once_more(api, receiver):
    hook = register(api, receiver.url, ["room.created"])
    api.post("/api/v1/rooms", {"name": "Retry me"})
    receiver.answer(500, 500, 500, 200)
    now = timezone.now()
    waits = []
    for _ in range(3):
        assert deliver(hook, now) == "failed"
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "pending"
        waits.append((delivery.next_attempt_at - now).total_seconds())
        assert deliver(hook, now) == "waiting"  # not before its time
        now = delivery.next_attempt_at
    assert waits[0] >= 10 and waits[1] >= 20 and waits[2] >= 40  # exponential, with jitter
    assert waits[0] <= 12.5 and waits[1] <= 25 and waits[2] <= 50
    assert deliver(hook, now) == "idle"
    assert deliver(hook, now + 10 * H) == "idle"  # never again after the 2xx
    assert len(receiver.requests) == 4
    assert len({r.headers["Parley-Event-Id"] for r in receiver.requests}) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 4, 200)
    log = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"][0]
    assert [a["status_code"] for a in log["attempt_log"]] == [500, 500, 500, 200]
    assert all(a["latency_ms"] >= 0 for a in log["attempt_log"])
    # Replaying a delivered event is refused: never twice after a 2xx.
    response = api.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{log['id']}/replay")
    assert_error(response, 409, "ALREADY_DELIVERED")
    assert deliver(hook, now + 11 * H) == "idle" and len(receiver.requests) == 4


def test_a_failing_event_holds_back_later_ones(api, receiver):
    hook = register(api, receiver.url, ["room.created"])
    for name in ("first", "second", "third"):
        api.post("/api/v1/rooms", {"name": name})
    receiver.answer(503)
    now = timezone.now()
    assert deliver(hook, now) == "failed"
    assert len(receiver.requests) == 1
    later = WebhookDelivery.objects.order_by("event_created_at")[0].next_attempt_at
    assert deliver(hook, later) == "idle"
    names = [r.json["room"]["name"] for r in receiver.requests]
    assert names == ["first", "first", "second", "third"]


def test_rotation_signs_with_both_secrets_for_24_hours(api, receiver):
    hook = register(api, receiver.url, ["room.created"])
    rotated = api.post(f"/api/v1/webhooks/{hook['id']}/rotate").json()
    assert rotated["secret"] != hook["secret"] and rotated["previous_secret_expires_at"]
    api.post("/api/v1/rooms", {"name": "During rotation"})
    deliver(hook)
    request = receiver.requests[-1]
    signature = request.headers["Parley-Signature"]
    assert signature.count("v1=") == 2
    assert webhook_http.verify_signature(signature, request.body, hook["secret"])
    assert webhook_http.verify_signature(signature, request.body, rotated["secret"])
    # A day later only the new secret signs.
    api.post("/api/v1/rooms", {"name": "After rotation"})
    later = timezone.now() + 25 * H
    deliver(hook, later)
    request = receiver.requests[-1]
    signature = request.headers["Parley-Signature"]
    assert signature.count("v1=") == 1
    stamp = later.timestamp()
    assert webhook_http.verify_signature(signature, request.body, rotated["secret"], now=stamp)
    assert not webhook_http.verify_signature(signature, request.body, hook["secret"], now=stamp)


def test_secrets_are_shown_once_and_encrypted_at_rest(api):
    hook = register(api, "http://127.0.0.1:9/x")
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in api.get(f"/api/v1/webhooks/{hook['id']}").json()
    assert "secret" not in api.get("/api/v1/webhooks").json()["webhooks"][0]
    stored = endpoint_of(hook)
    assert hook["secret"] not in stored.secret_encrypted
    assert webhook_http.unseal(stored.secret_encrypted) == hook["secret"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://224.0.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_private_targets_are_refused_unless_allowed(api, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    assert_error(api.post("/api/v1/webhooks", {"url": url, "events": ["*"]}), 400, field="url")
    assert not WebhookEndpoint.objects.exists()
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert api.post("/api/v1/webhooks", {"url": url, "events": ["*"]}).status_code == 201


def test_private_targets_are_refused_again_at_delivery(api, settings, receiver):
    hook = register(api, receiver.url, ["room.created"])
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # e.g. the name now resolves elsewhere
    api.post("/api/v1/rooms", {"name": "Rebound"})
    assert deliver(hook) == "failed"
    assert receiver.requests == []
    delivery = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"][0]
    assert "private" in delivery["attempt_log"][0]["error"]


def test_bad_urls_and_events_are_refused(api, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    assert_error(
        api.post("/api/v1/webhooks", {"url": "http://example.com/x", "events": ["*"]}), 400,
        field="url",
    )  # fmt: skip
    for bad in ("ftp://x", "not a url", "", 5, "https://user:pw@example.com/"):
        assert_error(api.post("/api/v1/webhooks", {"url": bad, "events": ["*"]}), 400, field="url")
    for bad in ([], ["nope"], "room.created", [1]):
        response = api.post("/api/v1/webhooks", {"url": "https://127.0.0.1/", "events": bad})
        assert_error(response, 400, field="events")
    assert_error(api.post("/api/v1/webhooks", {"url": "https://127.0.0.1/", "events": ["*"],
                                              "x": 1}), 400, field="x")  # fmt: skip
    assert_error(api.post("/api/v1/webhooks", [1, 2]), 400)
    assert not WebhookEndpoint.objects.exists()


def test_redirects_are_not_followed_and_answers_are_bounded(api, receiver):
    hook = register(api, receiver.url, ["room.created"])
    api.post("/api/v1/rooms", {"name": "Moved"})
    receiver.answer(302, headers={"Location": receiver.url + "/elsewhere"})
    assert deliver(hook) == "failed"
    assert [r.path for r in receiver.requests] == ["/hooks"]
    receiver.answer(200, body=b"x" * (1024 * 1024))
    assert deliver(hook, timezone.now() + H) == "idle"
    attempts = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"][0]
    assert [a["status_code"] for a in attempts["attempt_log"]] == [302, 200]
    assert len(attempts["attempt_log"][1]["response"]) == 1024


def test_failing_for_24_hours_disables_and_emails_admins_then_replay(
    api, owner, receiver, django_capture_on_commit_callbacks
):
    hook = register(api, receiver.url, ["room.created"])
    api.post("/api/v1/rooms", {"name": "Doomed"})
    api.post("/api/v1/rooms", {"name": "Doomed too"})
    receiver.default = (500, 0.0, b"down", {})
    start = timezone.now()
    assert deliver(hook, start) == "failed"
    assert deliver(hook, start + 23 * H) == "failed"
    assert endpoint_of(hook).enabled and not mail.outbox
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(hook, start + 24 * H + dt.timedelta(seconds=1)) == "failed"
    endpoint = endpoint_of(hook)
    assert not endpoint.enabled and endpoint.disabled_reason
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"failed"}
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [owner.user.email]
    assert endpoint.url in mail.outbox[0].body
    assert deliver(hook, start + 30 * H) == "busy"  # disabled: nothing is sent
    # Fixed: enable and replay everything failed since the start.
    receiver.default = (200, 0.0, b"ok", {})
    assert api.patch(f"/api/v1/webhooks/{hook['id']}", {"enabled": True}).json()["enabled"]
    since = (start - H).isoformat()
    assert api.post(f"/api/v1/webhooks/{hook['id']}/replay", {"since": since}).json() == {
        "replayed": 2
    }
    count = len(receiver.requests)
    assert deliver(hook) == "idle"
    assert [r.json["room"]["name"] for r in receiver.requests[count:]] == ["Doomed", "Doomed too"]
    assert_error(api.post(f"/api/v1/webhooks/{hook['id']}/replay", {"since": "x"}), 400,
                 field="since")  # fmt: skip


def test_replay_one_failed_delivery(api, receiver):
    hook = register(api, receiver.url, ["room.created"])
    api.post("/api/v1/rooms", {"name": "Once more"})
    WebhookDelivery.objects.update(status="failed")
    delivery = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries?status=failed").json()
    assert delivery["total"] == 1
    did = delivery["deliveries"][0]["id"]
    response = api.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{did}/replay")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert deliver(hook) == "idle" and receiver.types() == ["room.created"]


def test_the_outbox_row_is_in_the_changes_transaction(owner, api, receiver):
    register(api, receiver.url, ["room.created"])
    with pytest.raises(RuntimeError), transaction.atomic():
        room_services.create_room(tenant=owner.tenant, data={"name": "Rolled back"})
        assert WebhookEvent.objects.count() == 1  # written with the room...
        raise RuntimeError
    assert WebhookEvent.objects.count() == 0 and not Room.objects.exists()  # ...and undone


def test_test_event_and_subscriptions(api, receiver):
    hook = register(api, receiver.url, ["session-ended"])
    api.post("/api/v1/rooms", {"name": "Not subscribed"})
    assert not WebhookEvent.objects.exists()
    response = api.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert response.status_code == 202
    deliver(hook)
    assert receiver.types() == ["webhook.test"]
    assert receiver.requests[0].json["room"] == {}
    changed = api.patch(f"/api/v1/webhooks/{hook['id']}", {"events": ["room.created"]}).json()
    assert changed["events"] == ["room.created"]
    api.post("/api/v1/rooms", {"name": "Subscribed"})
    deliver(hook)
    assert receiver.types() == ["webhook.test", "room.created"]
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").json()["deleted"] is True
    assert_error(api.get(f"/api/v1/webhooks/{hook['id']}"), 404, "NOT_FOUND")


def test_a_rooms_own_endpoint_gets_its_chosen_events(api, owner, livekit, receiver):
    other = Receiver().__enter__()
    try:
        register(api, other.url, ["*"])
        room = api.post("/api/v1/rooms", {"name": "VideoSDK room"}).json()
        Room.objects.filter(room_id=room["room_id"]).update(
            webhook_url=receiver.url, webhook_events=["session-started", "session-ended"]
        )
        api.post(f"/api/v1/rooms/{room['room_id']}/start")
        api.post(f"/api/v1/rooms/{room['room_id']}/stop")
        own = WebhookEndpoint.objects.get(room__room_id=room["room_id"])
        webhook_services.deliver_endpoint(endpoint_pk=own.pk)
        assert receiver.types() == ["session-started", "session-ended"]
        listed = api.get("/api/v1/webhooks").json()["webhooks"]
        assert {h["room_id"] for h in listed} == {None, room["room_id"]}
        # Its secret is shown by rotating it; it signs like any endpoint.
        secret = api.post(f"/api/v1/webhooks/{own.endpoint_id}/rotate").json()["secret"]
        request = receiver.requests[0]
        assert webhook_http.verify_signature(
            request.headers["Parley-Signature"], request.body,
            webhook_http.unseal(WebhookEndpoint.objects.get(pk=own.pk).previous_secret_encrypted),
        )  # fmt: skip
        assert secret.startswith("whsec_")
        assert_error(
            api.patch(f"/api/v1/webhooks/{own.endpoint_id}", {"url": "https://x.test/"}), 400
        )
    finally:
        other.__exit__(None, None, None)


def test_outsiders_get_404_for_endpoints_and_deliveries(api, owner, outsider, receiver):
    hook = register(api, receiver.url, ["room.created"])
    api.post("/api/v1/rooms", {"name": "Private"})
    did = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"][0]["id"]
    key = outsider.api_key
    base = f"/api/v1/webhooks/{hook['id']}"
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"enabled": False}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate", None),
        ("POST", f"{base}/test", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/{did}/replay", None),
        ("POST", f"{base}/replay", {"since": "2020-01-01T00:00:00Z"}),
    ]:
        assert_error(api.request(method, path, body, key=key), 404, "NOT_FOUND")
    assert api.get("/api/v1/webhooks", key=key).json()["webhooks"] == []
    assert (
        endpoint_of(hook).enabled and WebhookEvent.objects.filter(type="webhook.test").count() == 0
    )
    assert_error(api.get("/api/v1/webhooks", key="pk_bad_key"), 401)


def test_signature_format():
    header = webhook_http.signature_header(["s1", "s2"], b'{"a":1}', 1700000000)
    t, first, second = header.split(",")
    assert t == "t=1700000000" and first.startswith("v1=") and second.startswith("v1=")
    import hashlib
    import hmac

    assert first[3:] == hmac.new(b"s1", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert webhook_http.verify_signature(header, b'{"a":1}', "s2", now=1700000100)
    assert not webhook_http.verify_signature(header, b'{"a":1}', "s2", now=1700009999)  # stale
    assert json.loads(b'{"a":1}') == {"a": 1}
