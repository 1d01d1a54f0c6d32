"""Crashes mid-move on the real lab: the worker process killed (the reconciler settles the job where
libvirt says the guest is; a move it re-attached to still obeys a cancel and its completion timeout) and the
destination libvirtd killed (FAILED with the reason, guest on source)."""

import os
import signal
import subprocess
import tempfile
import threading
import time

import pytest
from django.db import connections

from accounts.models import AuditEvent
from lab import service as lab_service
from migrations_app import services
from migrations_app.models import MigrationJob
from migrations_app.orchestrator.reconciler import reconcile
from tests.lab.migration_support import Runner, worker_command

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture
def runner(monkeypatch):
    r = Runner(autostart=False)
    monkeypatch.setattr(services.admission, "_enqueue", r.enqueue)
    yield r
    r.join()


def test_worker_killed_mid_migration_is_settled_by_reconciler(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    job = mlab.request("lab-g1", "hv-b", bandwidth_mibps=5)
    worker = subprocess.Popen(worker_command(job.pk), cwd=os.getcwd(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        job = mlab.wait_progress(job.pk)
        assert job.state == "running" and job.owner.endswith(f":{worker.pid}")
    finally:
        os.kill(worker.pid, signal.SIGKILL)  # our own child, by PID
        worker.wait(10)
    deadline = time.monotonic() + 120
    decisions: list[str] = []
    while time.monotonic() < deadline:
        decisions += reconcile() or []
        job.refresh_from_db()
        if job.is_terminal:
            break
        time.sleep(1)
    assert job.is_terminal, f"not settled: {decisions}"
    print("reconciler decisions:", decisions, job.state, job.where_guest_is, job.error)  # for the record (-rA)
    where = lab.running_on("lab-g1")
    assert len(where) == 1
    guest = mlab.guest("lab-g1")
    assert guest.hypervisor.name == where[0] and not guest.migrating
    assert job.state == ("succeeded" if where == ["hv-b"] else "failed"), (job.state, job.error, where)
    assert AuditEvent.objects.filter(migration_id=job.pk, action="migration.reconciled").exists()
    assert lab.wait_heartbeat("lab-g1", above=lab.heartbeat("lab-g1"), timeout=30)


def _orphan_then_reattach(mlab, **options) -> tuple[MigrationJob, threading.Thread]:
    """A slow lab-g1 move whose worker is killed mid-copy, then a reconciler pass (on a thread: it follows
    the move it re-attached to until libvirt ends it). Returns once the pass has re-attached."""
    mlab.ensure_on("lab-g1", "hv-a")
    job = mlab.request("lab-g1", "hv-b", bandwidth_mibps=1, **options)
    with tempfile.TemporaryFile() as out:
        worker = subprocess.Popen(worker_command(job.pk), cwd=os.getcwd(), stdout=out, stderr=subprocess.STDOUT)
        try:
            mlab.wait_progress(job.pk)
        except AssertionError as err:
            # it never got going (seen once in CI: stuck in pre-flight 60 s): where was it waiting?
            os.kill(worker.pid, signal.SIGUSR1)  # migration_worker.py dumps its threads' stacks
            time.sleep(1)
            out.seek(0)
            raise AssertionError(f"{err}\nthe worker's output:\n{out.read().decode(errors='replace')[-6000:]}") from err
        finally:
            os.kill(worker.pid, signal.SIGKILL)  # our own child, by PID
            worker.wait(10)

    def follow() -> None:
        try:
            reconcile()
        finally:
            connections.close_all()  # this thread's own connections

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    deadline = time.monotonic() + 60
    while not job.events.filter(kind="reconciler", message__contains="re-attached").exists():
        assert time.monotonic() < deadline and follower.is_alive(), "the reconciler did not re-attach"
        time.sleep(0.2)
    return job, follower


def test_a_cancel_reaches_a_move_the_reconciler_reattached_to(mlab, lab):
    job, follower = _orphan_then_reattach(mlab)
    services.migration_cancel(job=job, actor=mlab.operator)
    follower.join(60)
    job.refresh_from_db()
    # at 1 MiB/s the move had minutes left: only the abort ends it this soon
    assert job.state == "cancelled", (job.state, job.error)
    assert lab.running_on("lab-g1") == ["hv-a"]
    assert mlab.guest("lab-g1").hypervisor.name == "hv-a" and not mlab.guest("lab-g1").migrating


def test_a_move_the_reconciler_reattached_to_keeps_its_completion_timeout(mlab, lab):
    job, follower = _orphan_then_reattach(mlab, completion_timeout_s=12, timeout_action="abort")
    follower.join(60)
    job.refresh_from_db()
    assert job.state == "failed" and "12 s completion timeout" in job.error, (job.state, job.error)
    assert job.events.filter(kind="control", message__contains="completion timeout 12s: aborting").exists()
    assert lab.running_on("lab-g1") == ["hv-a"]
    assert (job.finished_at - job.started_at).total_seconds() < 40  # not the minutes the copy had left


def _libvirtd_pid(name: str) -> int:
    for h in lab_service.status()["hosts"]:
        if h["name"] == name:
            return h["pid"]
    raise LookupError(name)


def test_destination_libvirtd_killed_mid_migration_fails_and_guest_stays_on_source(mlab, lab, runner):
    mlab.ensure_on("lab-g1", "hv-a")
    job = mlab.request("lab-g1", "hv-b", bandwidth_mibps=5)
    runner.start(job.pk)
    mlab.wait_progress(job.pk)
    os.kill(_libvirtd_pid("hv-b"), signal.SIGKILL)  # the lab's own daemon, by PID
    try:
        job = mlab.wait_done(job.pk, timeout=120)
    finally:
        lab_service.up(wait=True)  # bring hv-b back for the other tests
    assert job.state == "failed"
    assert job.error  # libvirt's own message
    assert job.where_guest_is == "source"
    assert lab.running_on("lab-g1") == ["hv-a"]
    assert mlab.guest("lab-g1").hypervisor.name == "hv-a"
    failed = AuditEvent.objects.get(migration_id=job.pk, action="migration.failed")
    assert job.error in failed.message
