"""A drain plan asks libvirt about each target host once, however many guests it judges against it
(libvirt's test driver, its calls counted by wrapping the driver functions the pre-flight facts use)."""

from __future__ import annotations

from collections import Counter

import pytest

from hosts.models import Hypervisor, StorageServer
from migrations_app.orchestrator import facts
from migrations_app.services.drain import drain_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_guests_two_targets(tmp_path):
    """dp-a holds three shut-off guests on shared storage; dp-b and dp-c can take them."""
    from hosts.services import inventory
    from tests.libvirt_nodes import NodeDomain, write_node

    nfs = StorageServer.objects.create(
        name="dp-nfs", address="127.0.0.1", export_path="/srv", mount_path="/var/lib/libvirt/images"
    )
    doms = [
        NodeDomain(n, running=False, memory_mib=256, disk_path=f"/var/lib/libvirt/images/{n}.qcow2")
        for n in ("g1", "g2", "g3")
    ]
    uris = {"dp-a": write_node(tmp_path / "a.xml", doms)}
    uris |= {n: write_node(tmp_path / f"{n}.xml", []) for n in ("dp-b", "dp-c")}
    for name, uri in uris.items():
        Hypervisor.objects.create(name=name, uri=uri).storage_servers.set([nfs])
    inventory.refresh_all()
    Hypervisor.objects.exclude(name="dp-a").update(memory_free_mib=8192)  # the test driver reports none
    return uris


def _count(monkeypatch, name: str) -> Counter:
    calls: Counter = Counter()
    real = getattr(facts.driver, name)

    def counted(uri, *args, **kwargs):
        calls[uri] += 1
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(facts.driver, name, counted)
    return calls


def test_each_target_is_asked_once_per_plan(three_guests_two_targets, monkeypatch):
    uris = three_guests_two_targets
    host_info, domains, guest = (_count(monkeypatch, n) for n in ("host_info", "list_domains", "get_domain"))
    plan = drain_plan(Hypervisor.objects.get(name="dp-a"))
    assert sorted(m.guest.name for m in plan.moves) == ["g1", "g2", "g3"] and not plan.blocked
    for target in ("dp-b", "dp-c"):
        assert host_info[uris[target]] == 1, f"{target}: host facts asked {host_info[uris[target]]} times"
        assert domains[uris[target]] == 1, f"{target}: its domains listed {domains[uris[target]]} times"
    assert host_info[uris["dp-a"]] == 1
    assert guest[uris["dp-a"]] == 3  # each guest looked up once on its host, not once per target
