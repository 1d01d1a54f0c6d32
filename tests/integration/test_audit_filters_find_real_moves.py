"""The audit list's filters find the rows real guest-migration flows write, on libvirt test-driver hosts:
a request the real pre-flight refuses is found by its source, by its target and by outcome. Moves that
run (succeed or fail) need QEMU: tests/lab/test_audit_filters_find_lab_moves.py does those on the lab."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor, StorageServer
from hosts.services import inventory
from migrations_app import services
from migrations_app.models import MigrationJob
from tests.factories import make_user
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
IMAGES = "/var/lib/libvirt/images"


@pytest.fixture
def world(tmp_path):
    nfs = StorageServer.objects.create(name="nfs1", address="127.0.0.5", export_path="/srv/images", mount_path=IMAGES)
    hosts = {}
    for name, domains in (
        ("hv-a", [NodeDomain("web01", disk_path=f"{IMAGES}/web01.qcow2")]),
        ("hv-b", []),
    ):
        hv = Hypervisor.objects.create(name=name, uri=write_node(tmp_path / f"{name}.xml", domains))
        hv.storage_servers.add(nfs)
        hosts[name] = hv
    for hv in hosts.values():
        inventory.refresh_hypervisor(hv)
    return {name: Hypervisor.objects.get(pk=hv.pk) for name, hv in hosts.items()}


def _found(client, **query) -> set[tuple[str, str, str, str]]:
    response = client.get(reverse("audit-export"), {**query, "format": "json"})
    rows = json.loads(b"".join(response.streaming_content))
    return {(r["action"], r["hypervisor"], r["target_hypervisor"], r["outcome"]) for r in rows}


def test_a_refused_move_is_found_by_either_host_and_by_outcome(world):
    """The test driver reports no free memory on hv-b, so the real pre-flight refuses the move."""
    op = make_user("olga", "operator", password=None)
    web = Guest.objects.get(name="web01")
    with pytest.raises(services.PreflightFailed, match="Enough free memory"):
        services.migration_request(guest=web, target=world["hv-b"], kind="live", options={}, actor=op)
    assert not MigrationJob.objects.exists()
    client = Client()
    client.force_login(make_user("vera", "viewer", password=None))
    row = ("migration.requested", "hv-a", "hv-b", "refused")
    assert row in _found(client, hypervisor="hv-a")  # the source...
    assert row in _found(client, hypervisor="hv-b")  # ...and the target
    assert _found(client, hypervisor="hv-b", outcome="refused") == {row}
    assert row not in _found(client, hypervisor="hv-c")
    page = client.get(reverse("audit-list"), {"hypervisor": "hv-b"}).content.decode()
    assert "hv-a → hv-b" in page
    event = AuditEvent.objects.get(action="migration.requested")
    assert (event.hypervisor, event.target_hypervisor) == ("hv-a", "hv-b")
