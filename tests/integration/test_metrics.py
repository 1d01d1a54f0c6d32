"""/metrics: Prometheus text computed from the tables (so the worker's moves show in the web process),
for loopback or a bearer token only."""

import uuid

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from hosts.models import Guest, Hypervisor
from migrations_app.models import MigrationJob

pytestmark = pytest.mark.django_db


def scrape(client: Client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def test_moves_hosts_and_guests_are_counted(settings):
    a = Hypervisor.objects.create(name="m-a", uri="test:///default", state="online")
    b = Hypervisor.objects.create(name="m-b", uri="test:///default?b", state="offline")
    g = Guest.objects.create(uuid=uuid.uuid4(), name="m-g", hypervisor=a, power="running")
    for state, total_ms, downtime in (("succeeded", 1500, 40), ("succeeded", 7000, 250), ("failed", None, None)):
        MigrationJob.objects.create(guest=g, guest_name=g.name, guest_uuid=g.uuid, source=a, target=b,
                                    state=state, total_ms=total_ms, downtime_ms=downtime)  # fmt: skip
    MigrationJob.objects.create(guest=g, guest_name=g.name, guest_uuid=g.uuid, source=a, target=b, state="queued")
    m = scrape(Client(REMOTE_ADDR="127.0.0.1"))
    assert m[("kvmcluster_migrations_total", (("kind", "live"), ("outcome", "succeeded")))] == 2
    assert m[("kvmcluster_migrations_total", (("kind", "live"), ("outcome", "failed")))] == 1
    assert m[("kvmcluster_migrations_active", (("state", "queued"),))] == 1
    assert m[("kvmcluster_migration_duration_seconds_bucket", (("kind", "live"), ("le", "2.0")))] == 1
    assert m[("kvmcluster_migration_duration_seconds_bucket", (("kind", "live"), ("le", "10.0")))] == 2
    assert m[("kvmcluster_migration_duration_seconds_sum", (("kind", "live"),))] == pytest.approx(8.5)
    assert m[("kvmcluster_migration_downtime_milliseconds_count", (("kind", "live"),))] == 2
    assert m[("kvmcluster_hypervisors", (("state", "offline"),))] == 1
    assert m[("kvmcluster_guests", (("hypervisor", "m-a"), ("power", "running")))] == 1


def test_other_addresses_need_the_bearer_token(settings):
    settings.KVMCLUSTER_METRICS_TOKEN = "s3cret-scrape-token"
    outside = Client(REMOTE_ADDR="127.0.0.1")
    settings.KVMCLUSTER_METRICS_ALLOW = ["::1/128"]
    refused = outside.get("/metrics")
    assert refused.status_code == 403 and "KVMCLUSTER_METRICS_TOKEN" in refused.content.decode()
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 200
