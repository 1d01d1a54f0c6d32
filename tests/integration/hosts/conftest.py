"""Fixtures for the hosts pages: users in each role and a small cluster written straight to the DB."""

import pytest

from hosts.models import Hypervisor, StorageServer
from tests import factories
from tests.factories import add_guest

IMAGES = "/var/lib/libvirt/images"


@pytest.fixture
def make_user(db):
    """make_user(role, username=None): a user holding `role` (None: no role), named after it by default."""

    def make(role: str | None, username: str | None = None):
        return factories.make_user(username or role or "nobody", role)

    return make


@pytest.fixture
def client_as(client, make_user):
    def login(role: str | None):
        client.force_login(make_user(role))
        return client

    return login


@pytest.fixture
def cluster(db):
    """nfs1 -> hv-a (web01 running, db01 shut off with a local writeback disk), hv-b offline, empty."""
    nfs = StorageServer.objects.create(name="nfs1", address="10.0.0.5", export_path="/srv/images", mount_path=IMAGES)
    hv_a = Hypervisor.objects.create(
        name="hv-a",
        uri="qemu+tcp://10.0.0.2/system",
        state=Hypervisor.State.ONLINE,
        cpus=8,
        vcpus_allocated=2,
        memory_total_mib=32768,
        memory_free_mib=16384,
    )
    hv_a.storage_servers.add(nfs)
    hv_b = Hypervisor.objects.create(
        name="hv-b",
        uri="qemu+tcp://10.0.0.3/system",
        state=Hypervisor.State.OFFLINE,
        last_error="unable to connect to server at '10.0.0.3:16509': Connection refused",
    )
    web = add_guest(hv_a, "web01", vcpus=2, memory_mib=1024, disk=f"{IMAGES}/web01.qcow2", storage=nfs)
    db_guest = add_guest(hv_a, "db01", power="shutoff", disk="/local/db01.qcow2", cache="writeback")
    return {"nfs": nfs, "hv_a": hv_a, "hv_b": hv_b, "web": web, "db": db_guest}
