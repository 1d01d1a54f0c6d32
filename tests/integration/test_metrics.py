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


def test_inventory_refresh_counts_time_and_failures(tmp_path):
    """Refreshes run in the worker; the web process reads what the inventory service wrote per host."""
    from hosts.services import inventory
    from tests.libvirt_nodes import NodeDomain, write_node

    good = Hypervisor.objects.create(name="r-ok", uri=write_node(tmp_path / "a.xml", [NodeDomain("web01")]))
    bad = Hypervisor.objects.create(name="r-bad", uri=write_node(tmp_path / "b.xml", []))
    (tmp_path / "b.xml").unlink()  # libvirt's test driver cannot open it: an unreachable host
    inventory.refresh_all()
    inventory.refresh_all([bad.pk])
    m = scrape(Client(REMOTE_ADDR="127.0.0.1"))
    assert m[("kvmcluster_inventory_refresh_seconds_count", (("hypervisor", "r-ok"),))] == 1
    assert m[("kvmcluster_inventory_refresh_seconds_count", (("hypervisor", "r-bad"),))] == 2
    assert m[("kvmcluster_inventory_refresh_failures_total", (("hypervisor", "r-bad"),))] == 2
    assert m[("kvmcluster_inventory_refresh_failures_total", (("hypervisor", "r-ok"),))] == 0
    assert m[("kvmcluster_inventory_refresh_seconds_sum", (("hypervisor", "r-ok"),))] >= 0
    stats = good.refresh_stats
    assert stats.last_refresh_at is not None
    assert m[("kvmcluster_inventory_refresh_last_seconds", (("hypervisor", "r-ok"),))] == stats.last_duration_ms / 1000
    Hypervisor.objects.filter(pk=good.pk).update(state="online")  # a form saving the host leaves the counts
    Hypervisor.objects.get(pk=good.pk).save()
    assert Hypervisor.objects.get(pk=good.pk).refresh_stats.refreshes == 1


@pytest.mark.django_db(transaction=True, databases="__all__")
async def test_open_websockets_are_counted_in_the_process_that_serves_metrics():
    from asgiref.sync import sync_to_async
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.db import connections

    from hosts.consumers import TopologyConsumer
    from tests.factories import make_user

    viewer = await database_sync_to_async(make_user)("m-viewer", "viewer", password=None)
    nobody = await database_sync_to_async(make_user)("m-nobody", None, password=None)
    key = ("kvmcluster_websocket_connections", (("consumer", "TopologyConsumer"),))
    count = database_sync_to_async(lambda: scrape(Client(REMOTE_ADDR="127.0.0.1")).get(key, 0))
    before = await count()

    def socket(user) -> WebsocketCommunicator:
        communicator = WebsocketCommunicator(TopologyConsumer.as_asgi(), "/ws/topology/")
        communicator.scope["user"] = user
        return communicator

    sockets = [socket(viewer), socket(viewer)]
    for s in sockets:
        assert (await s.connect())[0]
    assert await count() == before + 2
    assert (await socket(nobody).connect())[0] is False
    assert await count() == before + 2  # a refused socket never counts
    for s in sockets:
        await s.disconnect()
    assert await count() == before
    await sync_to_async(connections.close_all)()
