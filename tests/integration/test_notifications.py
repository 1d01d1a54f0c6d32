"""Webhook and email notifications, end to end on loopback: a receiver started here checks what arrives.

Retries are driven by handing the service a clock (`now=`), never by sleeping through the backoff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import uuid

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from hosts.drivers.types import DriverError
from hosts.models import Guest, Hypervisor
from hosts.services import inventory
from migrations_app import services as migrations
from migrations_app.models import MigrationJob
from notifications import services, signing
from notifications.models import Delivery, Target
from tests.factories import make_user
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db
LOOPBACK = ["127.0.0.0/8", "::1/128"]
SECRET = "s3cret-shared-with-the-receiver"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def loopback_allowed(settings):
    settings.KVMCLUSTER_WEBHOOK_ALLOW = LOOPBACK
    return settings


@pytest.fixture
def enqueued(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(services, "_enqueue", calls.append)
    return calls


@pytest.fixture
def admin():
    return make_user("notif-admin", "admin", password=None)


def admin_client(user) -> Client:
    client = Client(REMOTE_ADDR="127.0.0.1")
    client.force_login(user)
    return client


def webhook(url: str, events: list[str], admin=None) -> Target:
    fields = {"name": f"hook-{uuid.uuid4().hex[:6]}", "kind": "webhook", "url": url, "recipients": ""}
    target, _ = services.target_create(fields={**fields, "events": events, "enabled": True}, secret=SECRET, actor=admin)
    return target


def host_offline_data() -> dict:
    return {"hypervisor": {"id": 7, "name": "hv-a", "state": "offline", "previous_state": "online", "last_error": "x"}}


def test_a_webhook_receiver_gets_a_signed_versioned_payload(
    loopback_allowed, receiver, enqueued, django_capture_on_commit_callbacks
):
    target = webhook(receiver.url, ["host.offline"])
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = services.notify("host.offline", host_offline_data())
    assert enqueued == [delivery_id]  # the first attempt goes to a worker once the event commits

    delivery = services.attempt_delivery(delivery_id)

    assert (delivery.status, delivery.attempts, delivery.last_http_status) == ("delivered", 1, 204)
    (headers, body, path) = receiver.requests[0]
    assert path == "/hook" and headers["Content-Type"] == "application/json"
    timestamp = headers[signing.TIMESTAMP_HEADER]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers[signing.SIGNATURE_HEADER] == f"sha256={expected}"
    assert headers[signing.EVENT_HEADER] == "host.offline" and headers[signing.DELIVERY_HEADER] == str(delivery_id)
    payload = json.loads(body)
    assert payload["version"] == 1 and payload["event"] == "host.offline"
    assert payload["data"]["hypervisor"]["name"] == "hv-a" and payload["id"] == str(delivery.event_id)
    assert Delivery.objects.filter(target=target).count() == 1
    # a wrong secret or a stale timestamp does not verify
    now = int(timestamp)
    assert signing.verify(SECRET, timestamp, body, headers[signing.SIGNATURE_HEADER], now=now)
    assert not signing.verify("other", timestamp, body, headers[signing.SIGNATURE_HEADER], now=now)
    assert not signing.verify(SECRET, timestamp, body, headers[signing.SIGNATURE_HEADER], now=now + 301)


def test_a_receiver_that_was_down_gets_the_event_on_a_later_attempt(loopback_allowed, enqueued, admin):
    port = free_port()  # nothing listens here yet: the first attempt is refused
    target = webhook(f"http://127.0.0.1:{port}/hook", ["host.offline"])
    (delivery_id,) = services.notify("host.offline", host_offline_data())
    start = timezone.now()
    assert services.enqueue_due(now=start) == []  # its first attempt was enqueued with the event

    first = services.attempt_delivery(delivery_id, now=start)

    assert (first.status, first.attempts) == ("pending", 1) and first.last_error
    assert first.next_attempt_at == start + dt.timedelta(seconds=services.RETRY_DELAYS_SECONDS[0])
    assert services.due_deliveries(now=start + dt.timedelta(seconds=30)) == []  # backing off
    assert services.attempt_delivery(delivery_id, now=start + dt.timedelta(seconds=30)) is None
    up = Receiver(port=port)
    try:
        later = start + dt.timedelta(seconds=61)
        assert services.enqueue_due(now=later) == [delivery_id]
        assert services.enqueue_due(now=later) == []  # the next run of the schedule: already handed over
        second = services.attempt_delivery(delivery_id, now=later)
    finally:
        up.close()
    assert (second.status, second.attempts, second.last_error) == ("delivered", 2, "")
    (headers, body, _) = up.requests[0]
    assert headers[signing.TIMESTAMP_HEADER] == str(int(later.timestamp()))  # signed at the attempt's time
    assert signing.verify(
        SECRET, headers[signing.TIMESTAMP_HEADER], body, headers[signing.SIGNATURE_HEADER], now=later.timestamp()
    )
    # the delivery log on the target's page says so
    page = admin_client(admin).get(reverse("notification-target-detail", kwargs={"pk": target.pk})).content.decode()
    assert f'id="delivery-{delivery_id}-attempts">2<' in page and "Delivered" in page


def test_a_receiver_failing_every_time_is_given_up_after_the_schedule(loopback_allowed, enqueued):
    failing = Receiver(status=500)
    try:
        webhook(failing.url, ["host.offline"])
        (delivery_id,) = services.notify("host.offline", host_offline_data())
        now = timezone.now()
        for _ in range(services.MAX_ATTEMPTS):
            delivery = services.attempt_delivery(delivery_id, now=now)
            now = delivery.next_attempt_at or now
    finally:
        failing.close()
    assert (delivery.status, delivery.attempts, delivery.last_http_status) == ("failed", services.MAX_ATTEMPTS, 500)
    assert delivery.next_attempt_at is None and "HTTP 500" in delivery.last_error
    assert len(failing.requests) == services.MAX_ATTEMPTS


def test_email_recipients_get_the_event_by_mail(enqueued):
    fields = {"name": "ops-mail", "kind": "email", "url": "", "recipients": "ops@example.org\noncall@example.org"}
    services.target_create(fields={**fields, "events": ["host.offline"], "enabled": True}, secret="", actor=None)
    (delivery_id,) = services.notify("host.offline", host_offline_data())

    delivery = services.attempt_delivery(delivery_id)

    assert delivery.status == "delivered"
    (message,) = mail.outbox
    assert message.to == ["ops@example.org", "oncall@example.org"]
    assert "hv-a" in message.subject and '"event": "host.offline"' in message.body


def test_the_form_refuses_a_loopback_url_unless_it_is_allowed(settings, admin):
    settings.KVMCLUSTER_WEBHOOK_ALLOW = []
    client = admin_client(admin)
    form = {"name": "internal", "kind": "webhook", "events": ["migration.failed"], "enabled": "on"}
    for url in ("http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://localhost/hook"):
        response = client.post(reverse("notification-target-create"), {**form, "url": url})
        assert response.status_code == 400, url
        assert (
            "loopback address" in response.content.decode() and "KVMCLUSTER_WEBHOOK_ALLOW" in response.content.decode()
        )
    assert not Target.objects.exists()

    settings.KVMCLUSTER_WEBHOOK_ALLOW = ["127.0.0.0/8"]
    response = client.post(reverse("notification-target-create"), {**form, "url": "http://127.0.0.1:8080/hook"})
    assert response.status_code == 302 and Target.objects.filter(name="internal").exists()


def test_delivery_checks_the_address_again(loopback_allowed, receiver, enqueued):
    webhook(receiver.url, ["host.offline"])
    loopback_allowed.KVMCLUSTER_WEBHOOK_ALLOW = []  # allowed when saved, not any more
    (delivery_id,) = services.notify("host.offline", host_offline_data())

    delivery = services.attempt_delivery(delivery_id)

    assert delivery.status == "failed" and "loopback address" in delivery.last_error
    assert receiver.requests == []


def test_delivery_checks_what_a_name_resolves_to(settings, receiver, enqueued, monkeypatch):
    settings.KVMCLUSTER_WEBHOOK_ALLOW = LOOPBACK
    target = webhook(receiver.url.replace("127.0.0.1", "receiver.test"), ["host.offline"])
    from notifications import addresses

    real = addresses.socket.getaddrinfo

    def fake(host, port, *args, **kwargs):  # a name this test controls, resolving to loopback
        return real("127.0.0.1" if host == "receiver.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(addresses.socket, "getaddrinfo", fake)
    (first_id,) = services.notify("host.offline", host_offline_data())
    assert services.attempt_delivery(first_id).status == "delivered"
    assert receiver.requests[0][0]["Host"] == f"receiver.test:{receiver.server.server_address[1]}"
    settings.KVMCLUSTER_WEBHOOK_ALLOW = []
    (second_id,) = services.notify("host.offline", host_offline_data())
    refused = services.attempt_delivery(second_id)
    assert refused.status == "failed" and "receiver.test: 127.0.0.1 is a loopback address" in refused.last_error
    assert len(receiver.requests) == 1 and target.deliveries.count() == 2


def test_only_admins_see_the_notification_pages():
    for role in ("viewer", "operator"):
        client = Client(REMOTE_ADDR="127.0.0.1")
        client.force_login(make_user(f"notif-{role}", role, password=None))
        response = client.get(reverse("notification-target-list"))
        assert response.status_code == 403 and "accounts.manage_notifications" in response.content.decode()
        row = AuditEvent.objects.filter(action="auth.denied", actor_username=f"notif-{role}").last()
        assert row is not None and row.params["path"] == reverse("notification-target-list")


def test_an_admin_adds_edits_and_deletes_a_target_each_audited(loopback_allowed, admin, receiver):
    client = admin_client(admin)
    assert "No webhook targets yet" in client.get(reverse("notification-target-list")).content.decode()
    form = {"name": "chatops", "kind": "webhook", "url": receiver.url, "events": ["migration.failed"], "enabled": "on"}
    response = client.post(reverse("notification-target-create"), form, follow=True)
    target = Target.objects.get(name="chatops")
    generated = target.secret
    assert len(generated) > 30 and generated in response.content.decode()  # shown once, to copy
    assert generated not in client.get(target.get_absolute_url()).content.decode()

    edit = {**form, "events": ["migration.failed", "migration.succeeded"], "secret": ""}
    assert client.post(reverse("notification-target-edit", kwargs={"pk": target.pk}), edit).status_code == 302
    target.refresh_from_db()
    assert target.events == ["migration.succeeded", "migration.failed"] and target.secret == generated

    confirm = client.get(reverse("notification-target-delete", kwargs={"pk": target.pk})).content.decode()
    assert "Delete chatops?" in confirm and Target.objects.filter(pk=target.pk).exists()
    assert client.post(reverse("notification-target-delete", kwargs={"pk": target.pk})).status_code == 302
    assert not Target.objects.filter(pk=target.pk).exists()

    rows = list(AuditEvent.objects.filter(action__startswith="notification.").order_by("id"))
    assert [r.action for r in rows] == [
        "notification.target_created",
        "notification.target_changed",
        "notification.target_deleted",
    ]
    assert all(r.actor_username == "notif-admin" for r in rows)
    assert rows[1].params["events"] == ["migration.succeeded", "migration.failed"]
    assert not any(generated in json.dumps(r.params) for r in rows)  # the secret never reaches the audit trail


@pytest.fixture
def world():
    a = Hypervisor.objects.create(name="hv-a", uri="test:///a", state="online")
    b = Hypervisor.objects.create(name="hv-b", uri="test:///b")
    g = Guest.objects.create(uuid=uuid.uuid4(), name="web01", hypervisor=a, memory_mib=256, migrating=True)
    return a, b, g


def test_a_failed_guest_migration_calls_the_webhook(loopback_allowed, receiver, world, enqueued):
    a, b, g = world
    webhook(receiver.url, ["migration.failed", "migration.succeeded"])
    job = MigrationJob.objects.create(
        guest=g, guest_name=g.name, guest_uuid=g.uuid, source=a, target=b, state="pending"
    )
    migrations.transition(job.pk, "running")
    assert not Delivery.objects.exists()  # not an event anyone subscribed to

    migrations.transition(job.pk, "failed", error="unable to connect to the target", where_guest_is="source")

    delivery = Delivery.objects.get()
    assert delivery.event == "migration.failed"
    delivered = services.attempt_delivery(delivery.pk)
    assert delivered.status == "delivered"
    data = json.loads(receiver.requests[0][1])["data"]["migration"]
    assert (data["id"], data["guest"], data["source"], data["target"]) == (job.pk, "web01", "hv-a", "hv-b")
    assert data["state"] == "failed" and data["error"] == "unable to connect to the target"


def test_a_requested_guest_migration_is_announced(loopback_allowed, receiver, world, enqueued, monkeypatch):
    from migrations_app.orchestrator import facts

    a, b, g = world
    Guest.objects.filter(pk=g.pk).update(migrating=False)
    webhook(receiver.url, ["migration.requested"])
    monkeypatch.setattr(facts, "checklist", lambda *args: [])  # no libvirt here: an empty, passing checklist
    from migrations_app.services import admission

    monkeypatch.setattr(admission, "_enqueue", lambda job_id: None)
    operator = make_user("notif-operator", "operator", password=None)

    job = migrations.migration_request(guest=g, target=b, kind="live", options={}, actor=operator)

    delivery = Delivery.objects.get()
    assert delivery.event == "migration.requested"
    assert delivery.payload["data"]["migration"]["id"] == job.pk
    assert delivery.payload["summary"] == f"A guest migration was requested: web01 hv-a → hv-b (#{job.pk})"


def test_a_host_going_offline_is_notified(loopback_allowed, receiver, world, enqueued):
    a, _, _ = world
    webhook(receiver.url, ["host.offline", "host.online"])

    inventory.mark_unreachable(a, DriverError("Cannot recv data: Connection reset by peer"))
    inventory.mark_unreachable(a, DriverError("still down"))  # already offline: no second event

    delivery = Delivery.objects.get()
    assert delivery.event == "host.offline"
    assert delivery.payload["data"]["hypervisor"]["previous_state"] == "online"
    assert "Connection reset by peer" in delivery.payload["summary"]


def test_metrics_count_deliveries_by_outcome(loopback_allowed, receiver, enqueued):
    webhook(receiver.url, ["host.offline"])
    (delivery_id,) = services.notify("host.offline", host_offline_data())
    services.notify("host.offline", host_offline_data())
    services.attempt_delivery(delivery_id)

    text = Client(REMOTE_ADDR="127.0.0.1").get(reverse("metrics")).content.decode()

    assert 'kvmcluster_webhook_deliveries_total{kind="webhook",outcome="delivered"} 1.0' in text
    assert 'kvmcluster_webhook_deliveries_pending{kind="webhook"} 1.0' in text


def test_a_redirect_is_not_followed(loopback_allowed, enqueued):
    moved = Receiver(status=302)
    try:
        webhook(moved.url, ["host.offline"])
        (delivery_id,) = services.notify("host.offline", host_offline_data())
        delivery = services.attempt_delivery(delivery_id)
    finally:
        moved.close()
    assert (delivery.status, delivery.last_http_status) == ("pending", 302)
    assert delivery.last_error == "HTTP 302 redirects are not followed" and len(moved.requests) == 1
