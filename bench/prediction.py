"""Benchmark the move prediction against real moves on the lab: converge or not, and how long.

    .venv/bin/python bench/prediction.py [--dirty 0,8,24,40] [--caps 8,32] [--fill 32] [--timeout 30]

Needs the lab (`python manage.py lab up`). Uses a throwaway embedded-profile database (or the production
one from DATABASE_URL/REDIS_URL) and starts its own django-q2 worker (stopped by its process group).

For each --dirty value a throwaway diskless guest (lab-gpredict: the lab's definition, --fill MiB written
once, DIRTY MiB rewritten every second) boots on hv-a. Diskless and booted afresh after every completed
move: under TCG the moved copy of a busy guest can hang or panic (docs/lab.md). Then, for each --caps
value, one case:
  1. libvirt measures the guest's dirty rate (hosts.services.dirty_rates, the dashboard's own round);
  2. the move is requested through migrations_app.services.migration_request with that bandwidth cap and
     a completion timeout of --timeout s (abort): the job keeps the prediction the Migrate form shows for
     the same options (services.predictions.predict_move);
  3. the worker moves it; the job ends succeeded (converged) or is aborted at the timeout (did not).
classified_ok counts the cases whose converge-or-not was predicted right. The error of a case is
|predicted - actual| / actual total time, actual being libvirt's job time (the "Total time" of the job
page), over the cases that were predicted to converge and did. Before the grid, one unlimited move of an
idle throwaway guest gives the link speed and the memory a first pass sends their first past move, as
any cluster has after its first moves (the prediction learns both from past moves).

Last line, exactly:
    prediction cases=<n> classified_ok=<k> median_abs_err_pct=<x>
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lab_guests import throwaway_guests, where  # noqa: E402
from bench.processes import start_worker, stop_group  # noqa: E402

GUEST = "lab-gpredict"


def setup(data_dir: str) -> None:
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dirty", default="0,8,24,40", help="MiB the guest rewrites every second, one guest each")
    ap.add_argument("--caps", default="8,32", help="bandwidth caps in MiB/s, one case each")
    ap.add_argument("--fill", type=int, default=32, help="MiB of data the guest holds")
    ap.add_argument("--timeout", type=int, default=30, help="completion timeout of each move (abort), s")
    args = ap.parse_args()
    dirty_values = [int(x) for x in args.dirty.split(",")]
    caps = [int(x) for x in args.caps.split(",")]
    if os.environ.get("DATABASE_URL"):
        print("note: production profile from DATABASE_URL/REDIS_URL; the bench uses that database", flush=True)
    setup(tempfile.mkdtemp(prefix="kvmcluster-bench-prediction-"))

    from django.contrib.auth.models import User

    from hosts.drivers import libvirt as driver
    from hosts.models import Guest, Hypervisor
    from hosts.services import dirty_rates
    from lab import config, registry
    from lab import guests as lab_guests
    from lab.handle import LabHandle
    from migrations_app import services
    from migrations_app.models import MigrationJob

    LabHandle()  # the lab's SASL login for this process
    registry.register()
    user, _ = User.objects.get_or_create(username="bench-operator", defaults={"is_superuser": True})

    def move(cap: int) -> MigrationJob:
        registry.refresh_inventory()
        guest = Guest.objects.select_related("hypervisor").get(name=GUEST)
        target = Hypervisor.objects.exclude(pk=guest.hypervisor_id).get(name__in=["hv-a", "hv-b"])
        options = {"bandwidth_mibps": cap, "completion_timeout_s": args.timeout}
        job = services.migration_request(
            guest=guest, target=target, kind="live", options=options, actor=user, source_ip="127.0.0.1"
        )
        deadline = time.monotonic() + args.timeout + 120
        while not job.is_terminal:
            if time.monotonic() > deadline:
                raise SystemExit(f"guest migration #{job.pk} still {job.state} after its timeout")
            time.sleep(0.3)
            job = MigrationJob.objects.get(pk=job.pk)
        return job

    def measure_dirty_rate() -> float | None:
        registry.refresh_inventory()
        Guest.objects.filter(name=GUEST).update(dirty_rate_at=None)  # due now, whatever an earlier case left
        dirty_rates.measure_round()  # starts, waits the period out, stores
        return Guest.objects.get(name=GUEST).dirty_rate_mibps

    def reboot_where_it_is() -> None:
        host = where(GUEST)
        uri = config.host(host).uri
        uuid = lab_guests.uuid_of(GUEST)
        mark = lab_guests.console_size(config.paths(), GUEST)
        driver.destroy(uri, uuid)
        driver.start(uri, uuid)
        lab_guests.wait_heartbeat(GUEST, after_offset=mark, timeout=120)

    worker = start_worker(warm_s=3)  # the cluster forks its workers
    rows: list[tuple[int, int, bool, bool, float, float]] = []
    try:
        with throwaway_guests([GUEST], "hv-a", fill=args.fill, disk=False):
            first = move(0)  # the pair's first move: what later predictions learn the link and memory from
            print(
                f"first move (unlimited, idle): {first.state} libvirt {(first.total_ms or 0) / 1000:.2f}s, "
                f"sent {(first.data_sent or 0) / 2**20:.1f} MiB, predicted {first.prediction.get('summary')}",
                flush=True,
            )
        for dirty in dirty_values:
            with throwaway_guests([GUEST], "hv-a", fill=args.fill, dirty=dirty, disk=False):
                for cap in caps:
                    measured = measure_dirty_rate()
                    job = move(cap)
                    p = job.prediction
                    converged = job.state == "succeeded"
                    actual_s = (job.total_ms or 0) / 1000
                    rows.append(
                        (dirty, cap, bool(p["converges"]), converged, float(p["total_s"]), actual_s, p.get("uncertain"))
                    )
                    print(
                        f"dirty {dirty} cap {cap}: measured {measured} MiB/s; predicted {p['summary']} "
                        f"(link {p['link_mibps']}, dirty {p['dirty_mibps']}, {p.get('memory_source', '')}); "
                        f"actual {job.state} libvirt {actual_s:.2f}s sent {(job.data_sent or 0) / 2**20:.1f} MiB "
                        f"passes {job.iteration} dirty seen {job.dirty_rate_bps / 2**20:.1f} MiB/s"
                        + (f" ({job.error[:80]})" if job.error else ""),
                        flush=True,
                    )
                    if converged and dirty:
                        reboot_where_it_is()  # a busy guest's moved copy is at risk under TCG (docs/lab.md)
    finally:
        stop_group(worker)  # the qcluster we started, and its forked workers
    ok = sum(1 for r in rows if r[2] == r[3])
    errors = [abs(r[4] - r[5]) / r[5] * 100 for r in rows if r[2] and r[3] and r[5] > 0]
    median = statistics.median(errors) if errors else float("nan")
    print(f"errors (%): {', '.join(f'{e:.0f}' for e in errors)}", flush=True)
    # A verdict flagged uncertain still counts as what it says (classified_ok is converge-or-not, as asked).
    unsure = [r for r in rows if r[6]]
    print(
        f"uncertain verdicts: {len(unsure)} ({', '.join(f'dirty {r[0]} cap {r[1]}' for r in unsure) or 'none'}), "
        f"right {sum(1 for r in unsure if r[2] == r[3])}; certain verdicts right "
        f"{sum(1 for r in rows if not r[6] and r[2] == r[3])} of {len(rows) - len(unsure)}",
        flush=True,
    )
    print(f"prediction cases={len(rows)} classified_ok={ok} median_abs_err_pct={median:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
