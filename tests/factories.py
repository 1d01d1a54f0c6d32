"""Test data made the same way in every tier: users holding a role, guests on a hypervisor."""

import uuid

from django.contrib.auth import get_user_model

from accounts.services import _set_role_groups
from hosts.models import Guest, GuestDisk, GuestNic

PASSWORD = "Corr3ct-Horse-Battery"


def make_user(username: str, role: str | None = None, password: str | None = PASSWORD, **extra):
    """A user holding `role` (the role groups are created if a flush emptied them); password=None skips
    the (slow, on purpose) password hashing."""
    user = get_user_model().objects.create_user(username=username, password=password, **extra)
    if role:
        _set_role_groups(user, role)
    return user


def add_guest(hv, name, *, power="running", vcpus=1, memory_mib=512, disk=None, cache="none", storage=None):
    """A guest row on `hv` with one bridged NIC and, if `disk` is a path, one file disk."""
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
