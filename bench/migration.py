"""Benchmark guest migrations through the dashboard against bare libvirt, on the real two-host lab.

    .venv/bin/python bench/migration.py [--runs 5] [--guest lab-g1] [--fill 150] [--bandwidth 112]
                                        [--floor-runs 10] [--busy-core]

Needs the lab (`python manage.py lab up`). Uses a throwaway embedded-profile database and starts its
own django-q2 worker (`manage.py qcluster`, stopped by PID at the end). Interleaves --runs pairs of
  (a) a live move requested through migrations_app.services.migration_request (the dashboard's own
      request path: pre-flight, job row + audit, enqueue on commit) and finished by the worker,
      timed from the request to the job's terminal websocket message;
  (b) `virsh migrate --live --p2p --persistent --undefinesource` of the same guest,
with the same bandwidth cap for both; a pair moves the guest there and back, and odd pairs let virsh go
first, so both sides move as often in each direction.
Every progress message of (a) is received through the real consumer (channels' WebsocketCommunicator
over the configured channel layer) and its delay from libvirt's sample (data-sampled-at, stamped by the
worker when jobStats returned) is measured.

Two workloads, so that neither figure hides the other:
  floor      --floor-runs pairs of the guest as the lab boots it (16 MiB in use) over unlimited
             loopback: a ~0.6 s move, nearly all of it QEMU and libvirt start-up, so the dashboard's
             fixed cost (queue hop, second pre-flight, websocket) shows at its largest;
  reference  --runs pairs with the guest rebooted holding --fill MiB (the lab's reference
             workload, 150 MiB, docs/lab.md) over a --bandwidth cap (112 MiB/s: what a 1 GbE
             migration link carries, as between the reference lab's hosts). This is the last line.
--busy-core keeps one core busy for the whole run (a `python -c 'while 1: pass'` started by the bench and
stopped by its PID), to show the cost under a deliberate background load. The load average is printed
at the start and the end of each workload.
Afterwards the guest must still be alive (five more heartbeats, no panic or reboot on its console), and
gets its usual workload back. Last line, exactly:

    migration overhead_ratio=<median a/b> progress_p95_ms=<x> updates_per_s=<x> pickup_p95_ms=<x> own_cost_ms=<x>

overhead_ratio: median of (a) wall time / median of (b); progress_p95_ms: p95 delay libvirt sample ->
websocket message; updates_per_s: progress messages per second of migration (median over runs);
pickup_p95_ms: p95 of request committed -> worker claimed the job (started_at - requested_at);
own_cost_ms: median (a) - median (b), the dashboard's own cost.

Each workload also prints the medians of the phases of (a), from the worker's marks stored with the job
(MigrationJob.timings, epoch ms) and the bench's own clock: request (the request path: pre-flight, up
to the job row), pickup (job row -> task body entered: commit, enqueue, broker), claim, pre-flight
re-run, setup (-> migrateToURI3 called), libvirt (libvirt's job), verification (libvirt's call returned
-> where the guest is, from libvirt), settle + push (-> the terminal websocket message received here);
beside them worker_cpu, the CPU time the worker's processes (qcluster and its forks) used during the move.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import start_worker, stop_group  # noqa: E402


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


# (phase, from mark, to mark): the bench's marks (request, received; job_row is the job's requested_at) and the worker's
# (migrations_app.orchestrator.timing) on one wall clock
PHASES = (
    ("request", "request", "job_row"),
    ("pickup", "job_row", "picked_up"),
    ("claim", "picked_up", "claimed"),
    ("preflight", "claimed", "preflight_done"),
    ("preflight_facts", "claimed", "preflight_facts"),  # part of preflight: its facts (libvirt, DB reads)
    ("setup", "preflight_done", "libvirt_start"),
    ("libvirt", "libvirt_start", "libvirt_end"),
    ("verify", "libvirt_end", "verified"),
    ("settle_push", "verified", "received"),
)


def phases(marks: dict[str, float]) -> dict[str, float]:
    return {name: marks[b] - marks[a] for name, a, b in PHASES if a in marks and b in marks}


def group_cpu_ms(pgid: int) -> float:
    """CPU time (user + system, ms) of the live processes of a process group: the bench's worker
    (`qcluster`, started in a session of its own) and the processes it forks."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ...; utime stime are 12 and 13
            total += int(fields[11]) + int(fields[12])
    return 1000 * total / os.sysconf("SC_CLK_TCK")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, load {one:.2f} {five:.2f} {fifteen:.2f}"


def setup(data_dir: str):
    os.environ["KVMCLUSTER_DATA_DIR"] = data_dir
    os.environ.setdefault("KVMCLUSTER_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if "channels" in settings.DATABASES:
        call_command("migrate", database="channels", verbosity=0)


@dataclass
class Pairs:
    """The figures of one workload's interleaved (a)/(b) pairs."""

    a_times: list[float] = field(default_factory=list)
    b_times: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    pickups: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> str:
        a, b = statistics.median(self.a_times), statistics.median(self.b_times)
        rate = statistics.median(self.rates) if self.rates else 0.0
        return (
            f"overhead_ratio={a / b:.3f} progress_p95_ms={p95(self.delays):.1f} updates_per_s={rate:.2f} "
            f"pickup_p95_ms={p95(self.pickups):.1f} own_cost_ms={1000 * (a - b):.0f}"
        )

    def add_phases(self, durations: dict[str, float]) -> None:
        for name, ms in durations.items():
            self.phases.setdefault(name, []).append(ms)

    def phase_medians(self) -> str:
        parts = [f"{name} {statistics.median(v):.0f}" for name, v in self.phases.items() if v]
        b = statistics.median(self.b_times) * 1000
        return "phase medians (ms): " + ", ".join(parts) + f" | virsh {b:.0f}"

    def medians(self) -> str:
        a, b = statistics.median(self.a_times), statistics.median(self.b_times)
        return (
            f"dashboard median {a:.2f}s, virsh median {b:.2f}s, the dashboard's own cost {1000 * (a - b):.0f} ms, "
            f"{len(self.delays)} progress messages"
        )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5, help="pairs of the reference workload")
    ap.add_argument("--guest", default="lab-g1")
    ap.add_argument("--fill", type=int, default=150, help="MiB the guest holds in the reference workload")
    ap.add_argument("--bandwidth", type=int, default=112, help="MiB/s cap for both in the reference (0 = none)")
    ap.add_argument("--floor-runs", type=int, default=10, help="pairs of the floor workload (0 = skip)")
    ap.add_argument("--busy-core", action="store_true", help="keep one core busy during the run")
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="kvmcluster-bench-migration-")
    if os.environ.get("DATABASE_URL"):
        print("note: production profile from DATABASE_URL/REDIS_URL; the bench uses that database", flush=True)
    setup(data_dir)

    from asgiref.sync import sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import User

    from hosts.drivers import libvirt as driver
    from hosts.models import Guest, Hypervisor
    from kvmcluster.routing import websocket_urlpatterns
    from lab import registry
    from lab.config import guest as guest_spec
    from lab.handle import LabHandle
    from migrations_app import services
    from migrations_app.models import MigrationJob

    lab = LabHandle()
    registry.register()
    registry.refresh_inventory()
    user, _ = User.objects.get_or_create(username="bench-operator", defaults={"is_superuser": True})
    uuid = lab.guest_uuids[args.guest]

    async def dashboard_move(guest, target, bandwidth: int):
        t0 = time.monotonic()
        marks = {"request": time.time() * 1000}
        job = await sync_to_async(services.migration_request)(
            guest=guest,
            target=target,
            kind="live",
            options={"bandwidth_mibps": bandwidth},
            actor=user,
            source_ip="127.0.0.1",
        )
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/migrations/{job.pk}/")
        comm.scope["user"] = user
        ok, _ = await comm.connect()
        assert ok
        got = []
        while True:
            text = await comm.receive_from(timeout=300)
            got.append((time.time() * 1000, text))
            if 'data-terminal="1"' in text:
                break
        wall = time.monotonic() - t0
        marks["received"] = time.time() * 1000
        await comm.disconnect()
        return job.pk, wall, got, marks

    def through_dashboard(out: Pairs, label: str, bandwidth: int) -> str:
        registry.refresh_inventory()
        guest = Guest.objects.get(name=args.guest)
        target = Hypervisor.objects.exclude(pk=guest.hypervisor_id).get(name__in=["hv-a", "hv-b"])
        cpu0 = group_cpu_ms(worker.pid)
        job_id, wall, got, marks = asyncio.run(dashboard_move(guest, target, bandwidth))
        worker_cpu = group_cpu_ms(worker.pid) - cpu0  # the move's, and what the worker did meanwhile
        job = MigrationJob.objects.get(pk=job_id)
        if job.state != "succeeded":
            raise SystemExit(f"{label}: dashboard move #{job_id} {job.state}: {job.error}")
        out.a_times.append(wall)
        out.pickups.append((job.started_at - job.requested_at).total_seconds() * 1000)
        stamps = []
        for recv_ms, text in got:
            m = re.search(r'data-sampled-at="(\d+)"', text)
            if m and 'data-state="running"' in text:
                stamps.append(int(m.group(1)))
                out.delays.append(recv_ms - int(m.group(1)))
        if len(stamps) >= 2:
            out.rates.append((len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1000))
        in_worker = (job.finished_at - job.started_at).total_seconds()
        # the job row's insert (requested_at): the worker may pick the job up before migration_request returns
        durations = phases(marks | job.timings | {"job_row": job.requested_at.timestamp() * 1000})
        durations["worker_cpu"] = worker_cpu
        out.add_phases(durations)
        steps = " ".join(f"{k}={v:.0f}" for k, v in durations.items())
        return (
            f"dashboard {guest.hypervisor.name}->{target.name} {wall:.2f}s (job #{job_id}, {len(stamps)} progress "
            f"msgs, pickup {out.pickups[-1]:.0f} ms, in the worker {in_worker:.2f}s, "
            f"libvirt job {job.total_ms / 1000:.2f}s; ms: {steps})"
        )

    def through_virsh(out: Pairs, bandwidth: int) -> str:
        src = lab.current_host(args.guest)
        dst = lab.other_host(src)
        cmd = ["virsh", "-q", "-c", lab.uri(src), "migrate", "--live", "--p2p", "--persistent", "--undefinesource"]
        # The dashboard encrypts a move wherever both hosts are set up for it, as the lab's are: so does virsh.
        cmd += ["--tls"]
        if bandwidth:
            cmd += ["--bandwidth", str(bandwidth)]
        t0 = time.monotonic()
        subprocess.run([*cmd, args.guest, lab.uri(dst)], check=True, timeout=600)
        out.b_times.append(time.monotonic() - t0)
        assert driver.find_domain(lab.uri(dst), uuid) is not None
        return f"virsh {src}->{dst} {out.b_times[-1]:.2f}s"

    def run_pairs(label: str, runs: int, bandwidth: int) -> Pairs:
        out = Pairs()
        for run in range(runs):
            # Each pair moves the guest there and back. Odd pairs let virsh go first, so each side
            # moves as often hv-a -> hv-b as back: a move's time depends on more than its direction
            # here (one in two or three takes 0.2-0.3 s longer, either way, whoever asks).
            if run % 2 == 0:
                a = through_dashboard(out, f"{label} run {run}", bandwidth)
                b = through_virsh(out, bandwidth)
            else:
                b = through_virsh(out, bandwidth)
                a = through_dashboard(out, f"{label} run {run}", bandwidth)
            print(f"{label} run {run}: {a} | {b}", flush=True)
        return out

    worker = start_worker(warm_s=3)  # the cluster forks its workers
    busy = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if args.busy_core else None
    spec = guest_spec(args.guest)
    try:
        if args.floor_runs:
            print(f"floor: start, {load()}{', one core kept busy' if busy else ''}", flush=True)
            floor = run_pairs("floor", args.floor_runs, bandwidth=0)
            print(f"floor: end, {load()}", flush=True)
            print(f"floor: {spec.fill} MiB in use, unlimited loopback: {floor.medians()}", flush=True)
            print(f"floor: {floor.phase_medians()}", flush=True)
            print(f"floor: migration {floor.summary()}", flush=True)
        print(f"reference: rebooting {args.guest} holding {args.fill} MiB", flush=True)
        lab.set_workload(args.guest, fill=args.fill, dirty=0)
        since = lab.console_offset(args.guest)
        print(f"reference: start, {load()}{', one core kept busy' if busy else ''}", flush=True)
        reference = run_pairs("reference", args.runs, bandwidth=args.bandwidth)
        print(f"reference: end, {load()}", flush=True)
        beat = lab.assert_kept_running(args.guest, since)  # moved 2 x runs times and still alive
        print(f"reference: {args.guest} still beating after {2 * args.runs} moves (heartbeat {beat})", flush=True)
    finally:
        if busy is not None:
            busy.kill()  # by its PID: the busy loop we started
            busy.wait()
        stop_group(worker)  # the qcluster we started, and its forked workers
        lab.set_workload(args.guest, fill=spec.fill, dirty=spec.dirty, wait=False)  # as the lab boots it
    cap = f"{args.bandwidth} MiB/s" if args.bandwidth else "unlimited"
    print(f"reference: {args.fill} MiB in use, {cap}: {reference.medians()}", flush=True)
    print(f"reference: {reference.phase_medians()}", flush=True)
    print(f"migration {reference.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
