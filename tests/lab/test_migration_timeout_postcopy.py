"""Completion timeout and post-copy on the real lab."""

import pytest

from accounts.models import AuditEvent
from hosts.drivers import libvirt as driver
from migrations_app import services

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.once]


def test_completion_timeout_aborts_and_guest_stays_on_source(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    job = mlab.request("lab-g1", "hv-b", bandwidth_mibps=2, completion_timeout_s=3, timeout_action="abort")
    job = mlab.wait_done(job.pk)
    assert job.state == "failed"
    assert "completion timeout" in job.error and "aborted" in job.error.lower()
    assert job.where_guest_is == "source"
    assert lab.running_on("lab-g1") == ["hv-a"]
    assert driver.find_domain(lab.uri("hv-b"), lab.guest_uuids["lab-g1"]) is None


def test_switch_to_postcopy_only_when_allowed(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    job = mlab.request("lab-g1", "hv-b", bandwidth_mibps=3)
    job = mlab.wait_progress(job.pk)
    with pytest.raises(services.MigrationError, match="not allowed"):
        services.migration_switch_postcopy(job=job, actor=mlab.operator)
    services.migration_cancel(job=job, actor=mlab.operator)
    assert mlab.wait_done(job.pk).state == "cancelled"

    job = mlab.request("lab-g1", "hv-b", bandwidth_mibps=3, allow_postcopy=True)
    job = mlab.wait_progress(job.pk)
    services.migration_switch_postcopy(job=job, actor=mlab.operator)
    with pytest.raises(services.MigrationError, match="post-copy has started"):
        services.migration_cancel(job=job, actor=mlab.operator)
    job = mlab.wait_done(job.pk)
    assert job.state == "succeeded", job.error
    assert job.postcopy_started
    assert lab.running_on("lab-g1") == ["hv-b"]
    assert AuditEvent.objects.filter(migration_id=job.pk, action="migration.postcopy", outcome="ok").exists()
