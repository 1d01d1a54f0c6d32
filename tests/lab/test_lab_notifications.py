"""Notifications on the real lab: a live move of lab-g1 calls a webhook receiver on loopback with the
request and the verified ending, signed; the attempts run as the worker would run them."""

import json

import pytest

from notifications import services as notifications
from notifications import signing
from notifications.models import Delivery, Target
from tests.webhook_receiver import Receiver

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.once]
SECRET = "lab-webhook-secret"


@pytest.fixture
def receiver(settings, monkeypatch):
    settings.KVMCLUSTER_WEBHOOK_ALLOW = ["127.0.0.0/8"]
    sent: list[int] = []
    monkeypatch.setattr(notifications, "_enqueue", sent.append)  # attempts run below, in this process
    r = Receiver()
    r.enqueued = sent
    yield r
    r.close()


def test_a_live_move_on_the_lab_calls_the_webhook(mlab, lab, receiver):
    notifications.target_create(
        fields={
            "name": "lab-hook",
            "kind": Target.Kind.WEBHOOK,
            "url": receiver.url,
            "recipients": "",
            "events": ["migration.requested", "migration.succeeded", "migration.failed"],
            "enabled": True,
        },
        secret=SECRET,
        actor=None,
    )
    mlab.ensure_on("lab-g1", "hv-a")
    job = mlab.wait_done(mlab.request("lab-g1", "hv-b").pk)
    assert job.state == "succeeded", job.error

    for delivery_id in receiver.enqueued:
        notifications.attempt_delivery(delivery_id)

    assert set(Delivery.objects.values_list("event", "status")) == {
        ("migration.requested", "delivered"),
        ("migration.succeeded", "delivered"),
    }
    bodies = {}
    for headers, body, _ in receiver.requests:
        sig, ts = headers[signing.SIGNATURE_HEADER], headers[signing.TIMESTAMP_HEADER]
        assert signing.verify(SECRET, ts, body, sig, now=int(ts))
        payload = json.loads(body)
        bodies[payload["event"]] = payload["data"]["migration"]
    assert bodies["migration.succeeded"]["id"] == job.pk and bodies["migration.succeeded"]["target"] == "hv-b"
    assert bodies["migration.requested"]["source"] == "hv-a"
    # back, for the other tests
    assert mlab.wait_done(mlab.request("lab-g1", "hv-a").pk).state == "succeeded"
