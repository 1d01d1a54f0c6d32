"""Two hosts on libvirt's test driver for the HA tests: hv-a with the given domains, hv-b empty, both mounting
one NFS export (shared storage), some guests marked "restart on failure" by an operator."""

from __future__ import annotations

from pathlib import Path

from django.utils import timezone

from hosts.models import Guest, Hypervisor, StorageServer
from hosts.services import ha, inventory
from tests import factories
from tests.libvirt_nodes import NodeDomain, write_node

IMAGES = "/srv/images"


def ha_domain(name: str, **spec) -> NodeDomain:
    """A domain with its disk on the shared export and a sanlock lease, as HA requires."""
    return NodeDomain(name, disk_path=f"{IMAGES}/{name}.qcow2", lease=f"kvmlab/{name}", **spec)


def ha_pair(
    tmp_path: Path, doms: list[NodeDomain], flagged: dict[str, int], failed: bool = True
) -> tuple[Hypervisor, Hypervisor]:
    """hv-a holding `doms` (failed, when `failed`), hv-b healthy with room; `flagged`: guest name -> priority."""
    nfs = StorageServer.objects.create(name="nfs1", address="127.0.0.5", export_path=IMAGES, mount_path=IMAGES)
    a = Hypervisor.objects.create(name="hv-a", uri=write_node(tmp_path / "a.xml", doms))
    b = Hypervisor.objects.create(name="hv-b", uri=write_node(tmp_path / "b.xml", []))
    for hv in (a, b):
        hv.storage_servers.add(nfs)
        inventory.refresh_hypervisor(hv)
    operator = factories.make_user("operator", "operator", password=None)
    for name, priority in flagged.items():
        ha.guest_ha_set(guest=Guest.objects.get(name=name), restart=True, priority=priority, actor=operator)
    if failed:
        # The test driver shows hv-a's domains as the dead host left them (shut off); the dashboard last saw
        # them running, which is what a recovery goes by.
        Guest.objects.filter(hypervisor=a).update(power=Guest.Power.RUNNING)
        Hypervisor.objects.filter(pk=a.pk).update(health="failed", health_since=timezone.now())
        Hypervisor.objects.filter(pk=b.pk).update(memory_free_mib=8192)  # the test driver's own figure is tiny
    return a, b
