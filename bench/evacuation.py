"""Benchmark evacuating a host through the dashboard's maintenance operation against the same moves by hand.

    .venv/bin/python bench/evacuation.py [--runs 3] [--extra 2] [--fill 150] [--limit 2]

Needs the lab (`python manage.py lab up`). Uses a throwaway embedded-profile database (or the production
one from DATABASE_URL/REDIS_URL) and starts its own django-q2 worker (`manage.py qcluster`, stopped by its
process group at the end), with the per-host limit set to --limit (KVMCLUSTER_MAX_OUTGOING / _INCOMING).

The guests: lab-g1 and lab-g2 plus --extra throwaway guests (lab-gevac1..N, the lab's definition under
another name), all running on hv-a and holding --fill MiB (the lab's reference workload, docs/lab.md).
lab-g3 stays on hv-a too and is not counted: its second NIC is on a bridge hv-b lacks, so no plan can move
it (the drain is confirmed with force and ends "incomplete" naming it, as the lab tests do); lab-gcache,
shut off, is kept on hv-b for the run so the evacuation is of running guests only.

Each run is a pair, both emptying hv-a to hv-b (odd runs let virsh go first):
  (a) maintenance_enter on hv-a (the dashboard's confirm: the plan recomputed, the operation stored, its
      children started within the limit), timed from the call to the operation's finished_at;
  (b) the same moves one after the other with `virsh migrate --live --p2p --persistent --undefinesource
      --tls` (the dashboard encrypts between hosts set up for it, as the lab's are).
Between them the guests go back to hv-a (untimed) and hv-a leaves maintenance. While (a) runs a thread asks
libvirt every 0.2 s which guests have a migration job on hv-a; the job rows' started/finished times give
the second count. Unlimited bandwidth for both (a drain's children take the default options).

Last line, exactly:
    evacuation guests=<n> total_s=<median a> serial_virsh_s=<median b> ratio=<a/b> max_parallel_seen=<k> limit=<k>
max_parallel_seen is the largest number of moves libvirt or the job rows showed at once, over all runs.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lab_guests import move_all, throwaway_guests, virsh_move, where  # noqa: E402
from bench.processes import start_worker, stop_group  # noqa: E402


def setup(data_dir: str, limit: int) -> None:
    os.environ["KVMCLUSTER_DATA_DIR"] = data_dir
    os.environ["KVMCLUSTER_MAX_OUTGOING"] = os.environ["KVMCLUSTER_MAX_INCOMING"] = str(limit)
    os.environ.setdefault("KVMCLUSTER_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if "channels" in settings.DATABASES:
        call_command("migrate", database="channels", verbosity=0)


def overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at the same instant as a start closes first)."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


class LibvirtWatch(threading.Thread):
    """Counts, every 0.2 s, the guests that have an active migration job on `uri` (libvirt's view)."""

    def __init__(self, uri: str, uuids: list[str]):
        super().__init__(daemon=True)
        self.uri, self.uuids, self.peak, self.stop = uri, uuids, 0, threading.Event()

    def run(self) -> None:
        from hosts.drivers import libvirt as driver
        from hosts.drivers.types import DriverError

        while not self.stop.is_set():
            active = 0
            for uuid in self.uuids:
                try:
                    active += driver.job_stats(self.uri, uuid).active
                except DriverError:
                    pass  # gone from the source: its move is over
            self.peak = max(self.peak, active)
            self.stop.wait(0.2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--extra", type=int, default=2, help="throwaway guests beside lab-g1 and lab-g2")
    ap.add_argument("--fill", type=int, default=150, help="MiB each guest holds (the reference workload)")
    ap.add_argument("--limit", type=int, default=2, help="moves per host at once")
    args = ap.parse_args()
    if os.environ.get("DATABASE_URL"):
        print("note: production profile from DATABASE_URL/REDIS_URL; the bench uses that database", flush=True)
    setup(tempfile.mkdtemp(prefix="kvmcluster-bench-evacuation-"), args.limit)

    from django.contrib.auth.models import User

    from hosts.drivers import libvirt as driver
    from hosts.drivers.types import MigrationOptions
    from hosts.models import Hypervisor
    from lab import guests as lab_guests
    from lab import registry
    from lab.config import guest as guest_spec
    from lab.handle import LabHandle
    from migrations_app.models import MigrationJob, Operation
    from migrations_app.services import operation_controls, operations

    lab = LabHandle()
    registry.register()
    user, _ = User.objects.get_or_create(username="bench-operator", defaults={"is_superuser": True})
    own = ["lab-g1", "lab-g2"]
    extra = [f"lab-gevac{i + 1}" for i in range(args.extra)]
    moved = own + extra

    def offline_to(name: str, host: str) -> None:
        here = lab.current_host(name)
        if here and here != host:
            driver.migrate(lab.uri(here), lab.uri(host), lab.guest_uuids[name], MigrationOptions(live=False))

    offline_to("lab-gcache", "hv-b")  # shut off: not a running guest of hv-a's for this bench
    move_all(own, "hv-a")
    print(f"setup: rebooting {', '.join(own)} holding {args.fill} MiB; {len(extra)} throwaway guest(s)", flush=True)
    marks = {name: lab.console_offset(name) for name in own}
    for name in own:
        lab.set_workload(name, fill=args.fill, dirty=0, wait=False)
    worker = None
    dashboard: list[float] = []
    serial: list[float] = []
    peaks: list[int] = []
    try:
        # Diskless: under TCG a guest writing to its disk can hang after being moved many times (docs/lab.md;
        # one did here after six moves, by virsh and the dashboard alike).
        with throwaway_guests(extra, "hv-a", fill=args.fill, disk=False):
            for name in own:
                lab.wait_heartbeat(name, timeout=120, after_offset=marks[name])
            registry.refresh_inventory()
            hv_a = Hypervisor.objects.get(name="hv-a")
            uuids = [str(u) for u in hv_a.guests.filter(name__in=moved).values_list("uuid", flat=True)]
            assert len(uuids) == len(moved), f"the inventory sees {len(uuids)} of {moved} on hv-a"
            # The cluster forks its workers, each warms itself (imports, first renders, libvirt connections)
            # and the start-up reconciler runs: a first operation right away waited ~3 s for all that.
            worker = start_worker(warm_s=10)

            def through_dashboard(run: int) -> str:
                registry.refresh_inventory()
                watch = LibvirtWatch(lab.uri("hv-a"), uuids)
                watch.start()
                t0 = time.time()
                op = operations.maintenance_enter(
                    hypervisor=Hypervisor.objects.get(name="hv-a"), actor=user, force=True, source_ip="127.0.0.1"
                )
                deadline = time.monotonic() + 600
                while not op.is_terminal:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"run {run}: operation #{op.pk} still {op.state}")
                    time.sleep(0.2)
                    op = Operation.objects.get(pk=op.pk)
                watch.stop.set()
                watch.join()
                assert op.finished_at is not None
                wall = op.finished_at.timestamp() - t0
                jobs = list(MigrationJob.objects.filter(operation=op))
                states = sorted({j.state for j in jobs})
                if states != ["succeeded"] or {j.guest_name for j in jobs} != set(moved):
                    raise SystemExit(f"run {run}: operation #{op.pk} {op.state}, children {states}: {op.reasons}")
                rows = overlap([(j.started_at.timestamp(), j.finished_at.timestamp()) for j in jobs])
                peaks.append(max(rows, watch.peak))
                dashboard.append(wall)
                for name in moved:  # libvirt's word: each moved guest runs on hv-b only
                    assert where(name) == "hv-b", f"{name} runs on {where(name)}"
                operation_controls.maintenance_exit(hypervisor=op.hypervisor, actor=user)
                for j in sorted(jobs, key=lambda j: j.requested_at):
                    print(
                        f"  #{j.pk} {j.guest_name}: requested +{j.requested_at.timestamp() - t0:.2f}s, "
                        f"started +{j.started_at.timestamp() - t0:.2f}s, libvirt {(j.total_ms or 0) / 1000:.2f}s, "
                        f"finished +{j.finished_at.timestamp() - t0:.2f}s",
                        flush=True,
                    )
                left = ", ".join(r.split(":")[0] for r in op.reasons)
                return (
                    f"dashboard {wall:.2f}s (operation #{op.pk} {op.state}, left {left}; at once: libvirt "
                    f"{watch.peak}, job rows {rows}; plan said {op.plan.get('total_s')}s, "
                    f"max_parallel {op.plan.get('max_parallel')})"
                )

            def by_hand() -> str:
                watch = LibvirtWatch(lab.uri("hv-a"), uuids)
                watch.start()
                t0 = time.monotonic()
                each = [virsh_move(name, "hv-a", "hv-b") for name in moved]
                serial.append(time.monotonic() - t0)
                watch.stop.set()
                watch.join()
                times = " + ".join(f"{t:.2f}" for t in each)
                return f"virsh one by one {serial[-1]:.2f}s ({times}; at once {watch.peak})"

            for run in range(args.runs):
                steps = [functools.partial(through_dashboard, run), by_hand]
                if run % 2:
                    steps.reverse()
                said = []
                for step in steps:
                    move_all(moved, "hv-a")
                    said.append(step())
                print(f"run {run}: {' | '.join(said)} (load {os.getloadavg()[0]:.2f})", flush=True)
            move_all(moved, "hv-a")
            for name in moved:  # still alive after all those moves? (said, not fatal: the figures stand)
                try:
                    lab_guests.wait_heartbeat(name, above=lab_guests.heartbeat(name) or 0, timeout=30)
                except lab_guests.LabError as err:
                    print(f"note: {err} (a TCG guest hung after its moves, docs/lab.md)", flush=True)
    finally:
        if worker is not None:
            stop_group(worker)  # the qcluster we started, and its forked workers
        move_all(["lab-g2"], "hv-b")
        offline_to("lab-gcache", "hv-a")
        for name in own:  # the lab's workload again, as it boots them
            spec = guest_spec(name)
            lab.set_workload(name, fill=spec.fill, dirty=spec.dirty, wait=False)
    a, b = statistics.median(dashboard), statistics.median(serial)
    print(f"medians: dashboard {a:.2f}s, virsh one by one {b:.2f}s over {args.runs} run(s)", flush=True)
    print(
        f"evacuation guests={len(moved)} total_s={a:.2f} serial_virsh_s={b:.2f} ratio={a / b:.3f} "
        f"max_parallel_seen={max(peaks)} limit={args.limit}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
