"""A maintenance operation whose worker is killed mid-move finishes once a worker runs again, and moves
each guest exactly once.

A real django-q2 cluster (`manage.py qcluster` on the test databases, its own process group) runs the
operation's children: lab-gcache (shut off: offline), lab-g1 and a throwaway guest holding 96 MiB (live),
one at a time (the per-host limit is 1). While a live child is copying memory the whole group gets SIGKILL;
libvirt carries the move on. A new cluster starts: its start-up reconciler settles the orphaned child from
libvirt's view and advances the operation, which starts the rest. lab-g3 cannot leave hv-a (its bridge),
so the drain is confirmed with force and ends "incomplete" naming only lab-g3.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connections

from hosts.drivers import libvirt as driver
from hosts.services import placement
from migrations_app.choices import State
from migrations_app.models import MigrationJob, Operation
from migrations_app.services import operations
from tests.lab.migration_support import extra_guest

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

LIVE = ["lab-g1", "lab-gbig"]
OFFLINE = ["lab-gcache"]


@pytest.fixture
def runner():
    """No in-process runner: the children go through the real broker to the cluster this test starts."""
    return None


def start_cluster(log_path) -> subprocess.Popen:
    """The cluster's output goes to `log_path`: printed when the test fails, to show what the worker did."""
    names = {alias: str(connections[alias].settings_dict["NAME"]) for alias in connections}
    env = {**os.environ, "KVMCLUSTER_MAX_OUTGOING": "1", "KVMCLUSTER_MAX_INCOMING": "1"}
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "tests.lab.qcluster_worker", json.dumps(names)],
            cwd=os.getcwd(),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the cluster and its forked workers, and nothing else
        )


def stop_cluster(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_killed_worker_mid_operation_then_restarted_finishes_it_moving_each_guest_once(mlab, lab, tmp_path):
    mlab.ensure_on("lab-g1", "hv-a")
    mlab.ensure_on("lab-g2", "hv-b")  # not part of this drain, wherever an earlier test left it
    mlab.ensure_on("lab-g3", "hv-a")
    mlab.ensure_on("lab-gcache", "hv-a", running=False)
    hv_a = mlab.hv("hv-a")
    clusters: list[subprocess.Popen] = []
    with extra_guest(mlab, "lab-gbig", "hv-a", start=True, fill=96, disk=False):
        try:
            clusters.append(start_cluster(tmp_path / f"cluster{len(clusters)}.log"))
            op = operations.maintenance_enter(hypervisor=hv_a, actor=mlab.operator, force=True, source_ip="127.0.0.1")
            running = wait_for(
                lambda: MigrationJob.objects.filter(
                    operation=op, kind="live", state=State.RUNNING, data_processed__gt=0
                ).first(),
                120,
                "a live child copying memory",
            )
            stop_cluster(clusters[0], signal.SIGKILL)  # the whole group, mid-move
            assert not Operation.objects.get(pk=op.pk).is_terminal
            print(f"killed the cluster while #{running.pk} ({running.guest_name}) was copying memory")

            clusters.append(start_cluster(tmp_path / f"cluster{len(clusters)}.log"))
            op = wait_for(
                lambda: (o := Operation.objects.get(pk=op.pk)).is_terminal and o,
                300,
                f"operation #{op.pk} to finish after the restart",
            )
        except BaseException:
            for path in sorted(tmp_path.glob("cluster*.log")):
                print(f"--- {path.name}\n{path.read_text(errors='replace')[-20000:]}")
            raise
        finally:
            for proc in clusters:
                stop_cluster(proc)
            placement.set_maintenance(hv_a.pk, False)  # never leave the lab's hv-a refusing guests

        jobs = list(MigrationJob.objects.filter(operation=op))
        # exactly one move per guest, and each succeeded
        assert sorted(j.guest_name for j in jobs) == sorted(LIVE + OFFLINE)
        assert {j.guest_name: j.state for j in jobs} == {n: "succeeded" for n in LIVE + OFFLINE}
        assert MigrationJob.objects.filter(guest_name__in=LIVE + OFFLINE).count() == len(jobs)
        assert MigrationJob.objects.get(pk=running.pk).events.filter(kind="reconciler").exists()
        assert op.state == "incomplete" and [r.split(":")[0] for r in op.reasons] == ["lab-g3"]
        # libvirt's word on both hosts: each guest is on hv-b only, the live ones running there
        for name in LIVE + OFFLINE:
            uuid = str(mlab.guest(name).uuid)
            assert driver.find_domain(lab.uri("hv-a"), uuid) is None, name
            assert driver.find_domain(lab.uri("hv-b"), uuid) is not None, name
        for name in LIVE:
            assert driver.get_domain(lab.uri("hv-b"), str(mlab.guest(name).uuid)).state == "running", name
