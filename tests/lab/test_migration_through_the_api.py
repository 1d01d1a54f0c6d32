"""A script moves a lab guest through the REST API with a token: the same request service as the page,
the guest ends on the target according to libvirt, and the audit row names the token's user."""

import pytest
from django.test import Client
from knox.models import AuthToken

from accounts.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_a_token_holder_live_migrates_a_lab_guest_through_the_api(mlab, lab):
    guest = mlab.ensure_on("lab-g1", "hv-a")
    _, token = AuthToken.objects.create(user=mlab.operator)
    api = Client(REMOTE_ADDR="127.0.0.5", HTTP_AUTHORIZATION=f"Token {token}")
    body = {"guest": guest.pk, "target": mlab.hv("hv-b").pk, "kind": "live", "options": {"bandwidth_mibps": 0}}
    created = api.post("/api/v1/migrations/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    job = created.json()
    assert job["state"] in ("pending", "running") and {c["status"] for c in job["preflight"]} <= {"pass", "warn"}
    done = mlab.wait_done(job["id"])
    assert done.state == "succeeded", done.error
    assert lab.running_on("lab-g1") == ["hv-b"]  # libvirt's word, not ours
    assert api.get(f"/api/v1/migrations/{job['id']}/").json()["state"] == "succeeded"
    metrics = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    assert 'kvmcluster_migrations_total{kind="live",outcome="succeeded"} 1.0' in metrics
    assert 'kvmcluster_migration_duration_seconds_count{kind="live"} 1.0' in metrics
    requested = AuditEvent.objects.get(action="migration.requested", migration_id=job["id"])
    assert requested.actor_username == mlab.operator.username and requested.source_ip == "127.0.0.5"
