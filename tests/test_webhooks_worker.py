"""Outbound webhooks with a real Celery worker and beat on Redis and PostgreSQL (the services
pass, like test_celery_worker.py): a worker killed in the middle of a delivery, and the queue
on commit. Skipped on embedded defaults; REQUIRE_SERVICES=1 makes a missing service fail."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.db import connection

from conferences import webhook_http
from conferences.models import WebhookDelivery
from conferences.services import rooms as room_services
from conferences.services import webhooks as webhook_services
from tests.conftest import REQUIRE_SERVICES
from tests.test_celery_worker import Processes, wait_for
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.services


@pytest.fixture
def processes(transactional_db, livekit, tmp_path):
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 needs PostgreSQL (DATABASE_URL) and REDIS_URL")
        pytest.skip("needs PostgreSQL and Redis (the services pass)")
    # The broker is this run's own Redis database (REDIS_URL), so the test process's Celery
    # app (queue on commit) and the worker share it.
    procs = Processes(tmp_path, settings.REDIS_URL, livekit)
    procs.env.update(
        WEBHOOK_ALLOW_PRIVATE_TARGETS="1",
        WEBHOOK_LEASE_SECONDS="3",
        WEBHOOK_SWEEP_SECONDS="1",
        WEBHOOK_RETRY_BASE_SECONDS="0.3",
        ATTENDANCE_RECONCILE_SECONDS="3600",
    )
    yield procs
    procs.stop_all()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def test_a_worker_killed_mid_delivery_still_delivers_once(processes, owner, receiver):
    issued = webhook_services.create_endpoint(
        tenant=owner.tenant, url=receiver.url, events=["room.created"]
    )
    receiver.answer(200, delay=8)  # the first POST hangs: the worker dies inside it
    room_services.create_room(tenant=owner.tenant, data={"name": "Survives a crash"})
    processes.worker("first")
    processes.beat()
    assert wait_for(lambda: receiver.arrivals >= 1, timeout=30), processes.log("first")[-3000:]
    processes.kill("first")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 0
    processes.worker("second")
    assert wait_for(
        lambda: WebhookDelivery.objects.filter(status="succeeded").exists(), timeout=40
    ), processes.log("second")[-3000:] + processes.log("beat")[-2000:]
    time.sleep(4)  # sweeps and lease expiries later: never sent again after the 2xx
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.last_status_code == 200
    assert receiver.arrivals == 2
    answered = [
        r for r in receiver.requests if r.headers["Parley-Delivery-Id"] == delivery.delivery_id
    ]
    assert answered and all(
        webhook_http.verify_signature(r.headers["Parley-Signature"], r.body, issued.secret)
        for r in answered
    )


def test_queued_on_commit_retried_and_in_order(processes, owner, receiver, settings):
    settings.WEBHOOK_QUEUE_ON_COMMIT = True  # this process queues to the worker's broker
    webhook_services.create_endpoint(tenant=owner.tenant, url=receiver.url, events=["*"])
    processes.worker()  # no beat: the task queued on commit, then its own retries
    receiver.answer(500, 500, 500)
    started = time.monotonic()
    for name in ("one", "two", "three"):
        room_services.create_room(tenant=owner.tenant, data={"name": name})
    # Retries come due through the sweeper; start beat after the first failure.
    assert wait_for(lambda: receiver.arrivals >= 1, timeout=20), processes.log("worker")[-3000:]
    processes.beat()
    assert wait_for(
        lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 3, timeout=40
    ), processes.log("worker")[-3000:]
    names = [r.json["room"]["name"] for r in receiver.requests]
    assert names == ["one", "one", "one", "one", "two", "three"]
    assert time.monotonic() - started < 40
