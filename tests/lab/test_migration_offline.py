"""Offline guest migration on the real lab: the definition moves, optionally the guest starts there."""

import pytest

from accounts.models import AuditEvent
from hosts.drivers import libvirt_driver as driver
from migrations_app import services

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_offline_move_defines_on_target_only(mlab, lab):
    uuid = lab.guest_uuids["lab-gcache"]
    mlab.ensure_on("lab-gcache", "hv-a", running=False)
    job = mlab.request("lab-gcache", "hv-b", kind="offline")  # cache=writeback is fine offline
    job = mlab.wait_done(job.pk)
    assert job.state == "succeeded", job.error
    on_b = driver.find_domain(lab.uri("hv-b"), uuid)
    assert on_b is not None and on_b.persistent and on_b.state == "shutoff"
    assert driver.find_domain(lab.uri("hv-a"), uuid) is None
    assert mlab.guest("lab-gcache").hypervisor.name == "hv-b"
    assert AuditEvent.objects.filter(migration_id=job.pk, action="migration.succeeded").exists()
    # and back, for the other tests
    job = mlab.wait_done(mlab.request("lab-gcache", "hv-a", kind="offline").pk)
    assert job.state == "succeeded", job.error


def test_offline_move_of_stopped_guest_then_start_on_target(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a", running=False)
    mark = lab.heartbeat("lab-g1") or 0
    job = mlab.request("lab-g1", "hv-b", kind="offline", start_on_target=True)
    job = mlab.wait_done(job.pk)
    assert job.state == "succeeded", job.error
    assert lab.running_on("lab-g1") == ["hv-b"]
    assert driver.find_domain(lab.uri("hv-a"), lab.guest_uuids["lab-g1"]) is None
    lab.wait_heartbeat("lab-g1", timeout=60)
    assert mlab.guest("lab-g1").hypervisor.name == "hv-b"
    assert mark is not None


def test_offline_move_of_running_guest_without_shutdown_is_refused(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    with pytest.raises(services.PreflightFailed, match="needs it shut off"):
        mlab.request("lab-g1", "hv-b", kind="offline")
    assert lab.running_on("lab-g1") == ["hv-a"]
