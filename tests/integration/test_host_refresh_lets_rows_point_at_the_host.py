"""A host's refresh locks its row against other refreshes, not against rows that point at it.

On PostgreSQL a plain SELECT ... FOR UPDATE of the hypervisor blocks the foreign-key check of any insert
that references it (a migration request's job, a guest). The request held its guest row while the refresh
waited for that row: "deadlock detected", a 500 on the Migrate form (seen in CI,
tests/scale/test_a_restart_mid_migration.py). The refresh's lock is FOR NO KEY UPDATE now.
"""

import threading

import pytest
from django.db import connection, transaction

from hosts.drivers.types import HostInfo
from hosts.models import Guest, Hypervisor
from hosts.services import inventory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL (SQLite locks the whole file)")
def test_a_row_pointing_at_a_host_is_inserted_while_its_refresh_holds_the_host(monkeypatch):
    hv = Hypervisor.objects.create(name="hv-a", uri="test:///default")
    locked, release = threading.Event(), threading.Event()
    real_picture = inventory._host_picture

    def picture_then_wait(h):  # called right after the refresh locked the host's row
        locked.set()
        release.wait(10)
        return real_picture(h)

    monkeypatch.setattr(inventory, "_host_picture", picture_then_wait)
    info = HostInfo(
        uri=hv.uri, hostname="a", host_uuid="", cpu_model="x", cpus=2, memory_total_mib=1024,
        memory_free_mib=512, libvirt_version="", hypervisor_type="QEMU",
    )  # fmt: skip

    def refresh():
        try:
            inventory.apply_host_facts(hv, info, [])
        finally:
            connection.close()

    refresher = threading.Thread(target=refresh)
    refresher.start()
    try:
        assert locked.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            # the foreign-key check of this insert takes FOR KEY SHARE on the host's row
            Guest.objects.create(uuid="6d0c8e1e-0000-4000-8000-000000000001", name="points-at-hv-a", hypervisor=hv)
    finally:
        release.set()
        refresher.join(15)
    assert Guest.objects.filter(name="points-at-hv-a", hypervisor=hv).exists()
