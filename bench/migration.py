"""Benchmark guest migrations through the dashboard against bare libvirt, on the real two-host lab.

    .venv/bin/python bench/migration.py [--runs 5] [--guest lab-g1] [--bandwidth 0]

Needs the lab (`python manage.py lab up`). Uses a throwaway embedded-profile database and starts its
own django-q2 worker (`manage.py qcluster`, stopped by PID at the end). Interleaves --runs pairs of
  (a) a live move requested through migrations_app.services.migration_request (the dashboard's own
      request path: pre-flight, job row + audit, enqueue on commit) and finished by the worker,
      timed from the request to the job's terminal websocket message;
  (b) `virsh migrate --live --p2p --persistent --undefinesource` of the same guest (the other way).
Every progress message of (a) is received through the real consumer (channels' WebsocketCommunicator
over the configured channel layer) and its delay from libvirt's sample (data-sampled-at, stamped by the
worker when jobStats returned) is measured. Last line, exactly:

    migration overhead_ratio=<median a/b> progress_p95_ms=<x> updates_per_s=<x> pickup_p95_ms=<x>

overhead_ratio: median of (a) wall time / median of (b); progress_p95_ms: p95 delay libvirt sample ->
websocket message; updates_per_s: progress messages per second of migration (median over runs);
pickup_p95_ms: p95 of request committed -> worker claimed the job (started_at - requested_at).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def setup(data_dir: str):
    os.environ["KVMCLUSTER_DATA_DIR"] = data_dir
    os.environ.setdefault("KVMCLUSTER_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if "channels" in settings.DATABASES:
        call_command("migrate", database="channels", verbosity=0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--guest", default="lab-g1")
    ap.add_argument("--bandwidth", type=int, default=0, help="MiB/s cap for both (0 = unlimited)")
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="kvmcluster-bench-migration-")
    if os.environ.get("DATABASE_URL"):
        print("note: production profile from DATABASE_URL/REDIS_URL; the bench uses that database", flush=True)
    setup(data_dir)

    from asgiref.sync import sync_to_async
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import User

    from hosts.drivers import libvirt_driver as driver
    from hosts.lab import registry
    from hosts.lab.handle import LabHandle
    from hosts.models import Guest, Hypervisor
    from kvmcluster.routing import websocket_urlpatterns
    from migrations_app import services
    from migrations_app.models import MigrationJob

    lab = LabHandle()
    registry.register()
    registry.refresh_inventory()
    user, _ = User.objects.get_or_create(username="bench-operator", defaults={"is_superuser": True})
    uuid = lab.guest_uuids[args.guest]
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(3)  # the cluster forks its workers
    a_times, b_times, delays, rates, pickups = [], [], [], [], []
    try:
        for run in range(args.runs):
            # ---- (a) through the dashboard
            registry.refresh_inventory()
            guest = Guest.objects.get(name=args.guest)
            target = Hypervisor.objects.exclude(pk=guest.hypervisor_id).get(name__in=["hv-a", "hv-b"])

            async def dashboard_move(guest=guest, target=target):
                t0 = time.monotonic()
                job = await sync_to_async(services.migration_request)(
                    guest=guest,
                    target=target,
                    kind="live",
                    options={"bandwidth_mibps": args.bandwidth},
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
                await comm.disconnect()
                return job.pk, wall, got

            job_id, wall, got = asyncio.run(dashboard_move())
            job = MigrationJob.objects.get(pk=job_id)
            if job.state != "succeeded":
                print(f"run {run}: dashboard move #{job_id} {job.state}: {job.error}", flush=True)
                return 1
            a_times.append(wall)
            pickups.append((job.started_at - job.requested_at).total_seconds() * 1000)
            stamps = []
            for recv_ms, text in got:
                m = re.search(r'data-sampled-at="(\d+)"', text)
                if m and 'data-state="running"' in text:
                    stamps.append(int(m.group(1)))
                    delays.append(recv_ms - int(m.group(1)))
            if len(stamps) >= 2:
                rates.append((len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1000))
            # ---- (b) bare libvirt, the other way
            src = lab.current_host(args.guest)
            dst = lab.other_host(src)
            cmd = ["virsh", "-q", "-c", lab.uri(src), "migrate", "--live", "--p2p", "--persistent", "--undefinesource"]
            if args.bandwidth:
                cmd += ["--bandwidth", str(args.bandwidth)]
            t0 = time.monotonic()
            subprocess.run([*cmd, args.guest, lab.uri(dst)], check=True, timeout=600)
            b_times.append(time.monotonic() - t0)
            assert driver.find_domain(lab.uri(dst), uuid) is not None
            in_worker = (job.finished_at - job.started_at).total_seconds()
            print(
                f"run {run}: dashboard {wall:.2f}s (job #{job_id}, {len(stamps)} progress msgs, "
                f"pickup {pickups[-1]:.0f} ms, in the worker {in_worker:.2f}s, "
                f"libvirt job {job.total_ms / 1000:.2f}s) | virsh {b_times[-1]:.2f}s",
                flush=True,
            )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)  # the qcluster we started, and its forked workers
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    ratio = statistics.median(a_times) / statistics.median(b_times)
    rate = statistics.median(rates) if rates else 0.0
    print(
        f"dashboard median {statistics.median(a_times):.2f}s, virsh median {statistics.median(b_times):.2f}s, "
        f"{len(delays)} progress messages",
        flush=True,
    )
    print(
        f"migration overhead_ratio={ratio:.3f} progress_p95_ms={p95(delays):.1f} updates_per_s={rate:.2f} "
        f"pickup_p95_ms={p95(pickups):.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
