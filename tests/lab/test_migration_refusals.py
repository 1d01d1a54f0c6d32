"""Each pre-flight refusal on the real lab: the request is refused with the reason, no job starts,
libvirt is untouched, and the refusal is in the audit trail."""

import pytest

from accounts.models import AuditEvent
from migrations_app import services
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import facts
from tests.lab.migration_support import extra_guest

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def refused(mlab, name, target, kind="live", **options) -> services.PreflightFailed:
    with pytest.raises(services.PreflightFailed) as exc:
        mlab.request(name, target, kind, **options)
    assert not MigrationJob.objects.filter(guest_name=name).exists()
    assert AuditEvent.objects.filter(action="migration.requested", outcome="refused", guest=name).exists()
    return exc.value


def failed_keys(err: services.PreflightFailed) -> set[str]:
    return {i["key"] for i in err.items if i["status"] == "fail"}


def test_cache_mode_other_than_none_refuses_live(mlab, lab):
    mlab.ensure_on("lab-gcache", "hv-a", running=True)
    err = refused(mlab, "lab-gcache", "hv-b")
    assert "cache_none" in failed_keys(err)
    assert "vda has cache='writeback'" in str(err)
    assert lab.running_on("lab-gcache") == ["hv-a"]
    mlab.ensure_on("lab-gcache", "hv-a", running=False)


def test_missing_bridge_on_target_refused(mlab, lab):
    mlab.ensure_on("lab-g3", "hv-a")
    err = refused(mlab, "lab-g3", "hv-b")
    assert failed_keys(err) == {"bridges"}
    assert "br-a-only" in str(err)


def test_storage_not_shared_with_target_refused_naming_disk(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    mlab.hv("hv-b").storage_servers.clear()
    err = refused(mlab, "lab-g1", "hv-b")
    assert "shared_storage" in failed_keys(err)
    assert "vda" in str(err) and "lab-g1.qcow2" in str(err)


def test_not_enough_memory_counting_moves_in_flight(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    mlab.ensure_on("lab-g2", "hv-a")
    g2 = mlab.guest("lab-g2")
    # another move already heading to hv-b reserves (much) more memory than hv-b has free
    MigrationJob.objects.create(
        guest=g2,
        guest_name=g2.name,
        guest_uuid=g2.uuid,
        source=mlab.hv("hv-a"),
        target=mlab.hv("hv-b"),
        state="queued",
        memory_mib=10**8,
    )
    err = refused(mlab, "lab-g1", "hv-b")
    assert "memory" in failed_keys(err)
    assert "reserved by moves in flight" in str(err)


def test_same_host_refused(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    with pytest.raises(services.MigrationError, match="already runs on hv-a"):
        mlab.request("lab-g1", "hv-a")
    assert not MigrationJob.objects.exists()


def test_same_host_uuid_refused(mlab, lab):
    """Two hypervisor records pointing at one libvirtd: libvirt's host UUIDs match -> refused."""
    mlab.ensure_on("lab-g1", "hv-a")
    from hosts.models import Hypervisor

    alias = Hypervisor.objects.create(name="hv-a-alias", uri="qemu+tcp://127.0.55.2:16509/system")
    alias.storage_servers.set(mlab.hv("hv-a").storage_servers.all())
    err = refused(mlab, "lab-g1", "hv-a-alias")
    assert "hosts_distinct" in failed_keys(err)
    assert "same host UUID" in str(err)


def test_guest_cpu_the_target_cannot_provide_refused_naming_the_features(mlab, lab):
    """The check judges the guest's own CPU model, not the hosts': both lab hosts are this machine, yet
    a guest whose model requires AVX-512 cannot run under the target's TCG, and libvirt says which feature."""
    cpu = "<cpu mode='custom' match='exact'><model>qemu64</model><feature policy='require' name='avx512f'/></cpu>"
    with extra_guest(mlab, "lab-gcpu", "hv-a", cpu=cpu) as guest:
        err = refused(mlab, "lab-gcpu", "hv-b", kind="offline", start_on_target=True)
        assert failed_keys(err) == {"cpu"}
        assert "avx512f" in str(err)
        # Copying only the definition is allowed: the CPU matters once it starts there (a warning).
        items = facts.checklist(guest, mlab.hv("hv-b"), "offline", {})
        cpu_item = next(i for i in items if i["key"] == "cpu")
        assert cpu_item["status"] == "warn" and "avx512f" in cpu_item["evidence"]


def test_a_guest_shut_off_after_the_request_fails_the_pre_flight_at_start(mlab, lab, runner):
    """The pre-flight re-runs when the worker takes the job, on what libvirt says then (the re-run asks
    again only what can change, docs/migrations.md): a guest shut off between the request and the start
    fails the job with the reason, and libvirt never moves it."""
    from hosts.drivers import libvirt as driver

    mlab.ensure_on("lab-g1", "hv-a")
    uuid = lab.guest_uuids["lab-g1"]
    runner.autostart = False
    job = mlab.request("lab-g1", "hv-b")
    driver.destroy(lab.uri("hv-a"), uuid)
    runner.start(job.pk)
    job = mlab.wait_done(job.pk)
    assert job.state == "failed"
    assert "pre-flight failed at start" in job.error and "a live move needs it running" in job.error
    assert driver.find_domain(lab.uri("hv-a"), uuid).state == "shutoff"
    assert driver.find_domain(lab.uri("hv-b"), uuid) is None
    mlab.ensure_on("lab-g1", "hv-a")  # running again, as the lab boots it


def test_memory_taken_after_the_request_fails_the_pre_flight_at_start(mlab, lab, runner):
    """What the database says at start counts too: another move claiming the target's memory between
    the request and the start fails the job, and the guest keeps running where it was."""
    mlab.ensure_on("lab-g1", "hv-a")
    mlab.ensure_on("lab-g2", "hv-a")
    runner.autostart = False
    job = mlab.request("lab-g1", "hv-b")
    g2 = mlab.guest("lab-g2")
    MigrationJob.objects.create(
        guest=g2,
        guest_name=g2.name,
        guest_uuid=g2.uuid,
        source=mlab.hv("hv-a"),
        target=mlab.hv("hv-b"),
        state="queued",
        memory_mib=10**8,
    )
    runner.start(job.pk)
    job = mlab.wait_done(job.pk)
    assert job.state == "failed"
    assert "pre-flight failed at start" in job.error and "reserved by moves in flight" in job.error
    assert lab.running_on("lab-g1") == ["hv-a"]
