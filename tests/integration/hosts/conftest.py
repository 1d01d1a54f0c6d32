"""Fixtures for the hosts pages: users in each role and a small cluster written straight to the DB."""

import uuid

import pytest
from django.contrib.auth.models import Group, User

from accounts.roles import sync_role_groups
from hosts.models import Guest, GuestDisk, GuestNic, Hypervisor, StorageServer

PASSWORD = "correct-horse-battery-staple"
IMAGES = "/var/lib/libvirt/images"


@pytest.fixture
def make_user(db):
    def make(role: str | None, username: str | None = None) -> User:
        sync_role_groups()  # a transactional test's flush may have emptied auth tables
        user = User.objects.create_user(username or role or "nobody", password=PASSWORD)
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def client_as(client, make_user):
    def login(role: str | None):
        client.force_login(make_user(role))
        return client

    return login


def add_guest(hv, name, *, power="running", vcpus=1, memory_mib=512, disk=None, cache="none", storage=None):
    guest = Guest.objects.create(
        uuid=uuid.uuid4(), name=name, hypervisor=hv, power=power, vcpus=vcpus, memory_mib=memory_mib
    )
    if disk:
        GuestDisk.objects.create(
            guest=guest, target="vda", source_type="file", source=disk, cache=cache, storage_server=storage
        )
    GuestNic.objects.create(
        guest=guest, mac=f"52:54:00:00:{guest.pk // 256:02x}:{guest.pk % 256:02x}", kind="bridge", bridge="br0"
    )
    return guest


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
