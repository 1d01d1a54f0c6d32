"""Offline guest migration on the real lab: the definition moves, optionally the guest is shut down
gracefully first (ACPI: the lab guests honour the power button) and started there afterwards."""

import pytest

from accounts.models import AuditEvent
from hosts.drivers import libvirt as driver
from migrations_app import services
from migrations_app.models import MigrationEvent
from tests.lab.migration_support import extra_guest

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
    mark = lab.console_offset("lab-g1")
    job = mlab.request("lab-g1", "hv-b", kind="offline", start_on_target=True)
    job = mlab.wait_done(job.pk)
    assert job.state == "succeeded", job.error
    assert lab.running_on("lab-g1") == ["hv-b"]
    assert driver.find_domain(lab.uri("hv-a"), lab.guest_uuids["lab-g1"]) is None
    lab.wait_heartbeat("lab-g1", timeout=60, after_offset=mark)  # this boot's, on hv-b
    assert mlab.guest("lab-g1").hypervisor.name == "hv-b"


def test_offline_move_of_running_guest_without_shutdown_is_refused(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    with pytest.raises(services.PreflightFailed, match="needs it shut off"):
        mlab.request("lab-g1", "hv-b", kind="offline")
    assert lab.running_on("lab-g1") == ["hv-a"]


def test_offline_move_shuts_the_guest_down_gracefully_then_starts_it_on_target(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    mark = lab.console_offset("lab-g1")
    # Booted all the way: a power button pressed before the guest's ACPI driver and acpid are up is
    # lost, as on real hardware (the job would then fail, rightly, with the guest still on hv-a).
    lab.wait_heartbeat("lab-g1", timeout=60, after_offset=mark)
    job = mlab.request(
        "lab-g1", "hv-b", kind="offline", shutdown_first=True, shutdown_timeout_s=60, start_on_target=True
    )
    job = mlab.wait_done(job.pk)
    assert job.state == "succeeded", job.error
    # The guest's own init answered the ACPI power button (a forced stop would not print this).
    assert "GUEST-POWEROFF" in lab.console_text("lab-g1", after_offset=mark)
    assert lab.running_on("lab-g1") == ["hv-b"]
    assert driver.find_domain(lab.uri("hv-a"), lab.guest_uuids["lab-g1"]) is None
    lab.wait_heartbeat("lab-g1", after_offset=lab.console_offset("lab-g1"), timeout=60)  # alive on hv-b
    assert mlab.guest("lab-g1").hypervisor.name == "hv-b"
    assert MigrationEvent.objects.filter(job=job, message__startswith="asking the guest to shut down").exists()


def test_guest_that_ignores_shutdown_fails_the_move_and_keeps_running_on_source(mlab, lab):
    # acpi=off: the guest never sees the power button, like a guest hung or without ACPI support.
    with extra_guest(mlab, "lab-gdeaf", "hv-a", kernel_args="acpi=off", start=True):
        job = mlab.request("lab-gdeaf", "hv-b", kind="offline", shutdown_first=True, shutdown_timeout_s=3)
        job = mlab.wait_done(job.pk)
        assert job.state == "failed"
        assert "did not shut down within 3 s" in job.error and "still running on hv-a" in job.error
        assert driver.get_domain(lab.uri("hv-a"), str(job.guest_uuid)).state == "running"
        assert driver.find_domain(lab.uri("hv-b"), str(job.guest_uuid)) is None
        assert mlab.guest("lab-gdeaf").hypervisor.name == "hv-a"
