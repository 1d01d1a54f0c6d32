"""Benchmark one balancer round on 100 hypervisors and 5 000 guests with measured-load history in the DB.

    .venv/bin/python bench/balancer.py [--runs 30]

A fresh embedded-profile database in a temporary directory; the hosts are libvirt test-driver nodes
(`test:///<file>.xml`, one file per host, in-process), so the round's pre-flight of its chosen moves asks
a real libvirt driver. 10 of the 100 hosts have been at 92 % CPU for 10 minutes, the others 20-60 %;
every guest has 10 minutes of 10 s rows. Measured:

- decide_p95_ms: planning.balance.decide() on the round's own inputs, `--runs` times;
- queries: the database queries of one full round (selectors, pre-flight of the chosen moves, stored
  proposals), also printed for a 500-guest cluster (a child run) to show it does not grow with guests;
- proposals: how many moves the round proposed (the pre-flight of each ran against the test driver, whose
  free memory is replaced by the inventory's figure: the driver reports none);
- stats_round_ms_per_host: one load-sampling round (hosts.services.load_history.record_round: the bulk
  stats of every host, in parallel) against the same 100 test-driver hosts, divided by the hosts.

Last line, exactly:

    balancer hosts=100 guests=5000 decide_p95_ms=<x> queries=<n> stats_round_ms_per_host=<x>
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

HOSTS = 100
HOT_HOSTS = 10
HISTORY_S = 600
ROOT = Path(__file__).resolve().parent.parent


def setup_django(data_dir: str) -> None:
    for var in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(var, None)
    os.environ["KVMCLUSTER_DATA_DIR"] = data_dir
    os.environ["KVMCLUSTER_ALLOW_TEST_URIS"] = "1"  # the hosts are libvirt test-driver node files
    os.environ.setdefault("KVMCLUSTER_LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("migrate", database="channels", verbosity=0)


def build(per_host: int, node_dir: Path, now) -> None:
    """Hosts as test-driver node files, their guests (rows matching the files), 10 min of load rows."""
    from hosts.models import Guest, GuestLoadSample, GuestNic, HostLoadSample, Hypervisor
    from migrations_app.models import BalancerPolicy
    from tests.libvirt_nodes import NodeDomain, write_node

    rng = random.Random(14)
    hosts, guests, nics = [], [], []
    for i in range(HOSTS):
        doms = [NodeDomain(f"g{i:03d}-{j:02d}", vcpus=2, memory_mib=512 * rng.randint(1, 4)) for j in range(per_host)]
        uri = write_node(node_dir / f"hv-{i:03d}.xml", doms, cpus=16, memory_mib=65536)
        hosts.append(Hypervisor(name=f"hv-{i:03d}", uri=uri, state="online", cpus=16, memory_total_mib=65536,
                                memory_free_mib=40000, bridges=["br0"]))  # fmt: skip
        guests.append(doms)
    hosts = Hypervisor.objects.bulk_create(hosts)
    rows = [
        Guest(uuid=d.uuid, name=d.name, hypervisor=h, power="running", vcpus=2, memory_mib=d.memory_mib)
        for h, doms in zip(hosts, guests, strict=True)
        for d in doms
    ]
    rows = Guest.objects.bulk_create(rows, batch_size=1000)
    for g in rows:
        nics.append(GuestNic(guest=g, mac=f"52:54:00:{g.pk >> 16 & 255:02x}:{g.pk >> 8 & 255:02x}:{g.pk & 255:02x}",
                             kind="bridge", bridge="br0"))  # fmt: skip
    GuestNic.objects.bulk_create(nics, batch_size=1000)
    ats = [now - timedelta(seconds=s) for s in range(0, HISTORY_S, 10)]
    HostLoadSample.objects.bulk_create(
        (HostLoadSample(hypervisor=h, at=at, resolution_s=10, cpu_pct=92.0 if i < HOT_HOSTS else 20.0 + (i * 7) % 40,
                        memory_used_mib=25536, memory_total_mib=65536)
         for i, h in enumerate(hosts) for at in ats),
        batch_size=2000,
    )  # fmt: skip
    GuestLoadSample.objects.bulk_create(
        (GuestLoadSample(guest=g, at=at, resolution_s=10, cpu_cores=rng.uniform(0.1, 2.0), cpu_pct_of_vcpus=50.0,
                         memory_mib=g.memory_mib)
         for g in rows for at in ats),
        batch_size=5000,
    )  # fmt: skip
    BalancerPolicy.objects.update_or_create(
        pk=1, defaults=dict(mode="recommend", hold_s=300, max_moves_per_round=5, max_moves_per_hour=100)
    )


def measure(per_host: int, runs: int) -> dict:
    from dataclasses import replace

    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from hosts.drivers import libvirt as driver
    from hosts.services import load_history
    from migrations_app.orchestrator import facts
    from migrations_app.planning.balance import decide
    from migrations_app.services.balancer import balancer_round, round_inputs

    # libvirt's test driver reports no free memory (the pre-flight would refuse every move): report what the
    # inventory says, as a real host would; every other pre-flight check asks the test driver as it is.
    real_host_info = facts.driver.host_info
    facts.driver.host_info = lambda uri, **kw: replace(real_host_info(uri, **kw), memory_free_mib=40000)
    now = timezone.now()
    node_dir = Path(tempfile.mkdtemp(prefix="kvt-balancer-nodes."))
    t0 = time.perf_counter()
    build(per_host, node_dir, now)
    build_s = time.perf_counter() - t0
    inputs = round_inputs(now)
    pic, policy = inputs.picture, inputs.decision_policy
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = decide(pic.hosts, pic.guests, policy)
        times.append((time.perf_counter() - t) * 1000)
    reset_queries()
    t = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        rnd = balancer_round(now=now)
    round_ms = (time.perf_counter() - t) * 1000
    # the metrics round: twice (the first only sets each host's baseline counters), the second timed
    load_history.record_round(now + timedelta(seconds=10))
    t = time.perf_counter()
    sampled = load_history.record_round(now + timedelta(seconds=20))
    stats_ms = (time.perf_counter() - t) * 1000
    driver.close_all()
    return {
        "guests": len(pic.guests),
        "build_s": build_s,
        "decide_ms": times,
        "decided": len(result.proposals),
        "proposals": rnd.proposals if rnd else -1,
        "notes": rnd.notes if rnd else [],
        "queries": len(queries),
        "round_ms": round_ms,
        "stats_ms": stats_ms,
        "sampled_hosts": sampled.hosts,
        "sampled_guests": sampled.guests,
    }


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--per-host", type=int, default=50)
    parser.add_argument("--child", action="store_true", help="print one result line only (used for the baseline)")
    args = parser.parse_args()
    baseline = None
    if not args.child:
        out = subprocess.run(
            [sys.executable, __file__, "--per-host", "5", "--runs", str(args.runs), "--child"],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        baseline = dict(kv.split("=", 1) for kv in out.split()[1:])
    setup_django(tempfile.mkdtemp(prefix="kvt-balancer-bench."))
    r = measure(args.per_host, args.runs)
    line = (
        f"balancer hosts={HOSTS} guests={r['guests']} decide_p95_ms={p95(r['decide_ms']):.1f} "
        f"queries={r['queries']} stats_round_ms_per_host={r['stats_ms'] / HOSTS:.2f}"
    )
    if args.child:
        print(line + f" proposals={r['proposals']} round_ms={r['round_ms']:.0f}")
        return
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min)")
    print(f"baseline, 500 guests: {baseline}")
    print(
        f"5 000 guests: build {r['build_s']:.1f} s; decide min {min(r['decide_ms']):.1f} ms, "
        f"median {statistics.median(r['decide_ms']):.1f} ms, p95 {p95(r['decide_ms']):.1f} ms ({args.runs} runs); "
        f"round {r['round_ms']:.0f} ms, {r['queries']} queries, {r['proposals']} proposal(s)"
    )
    print(f"round notes: {r['notes']}")
    print(
        f"metrics round against libvirt's test:/// driver: {r['stats_ms']:.0f} ms for {r['sampled_hosts']} hosts "
        f"and {r['sampled_guests']} guests"
    )
    if baseline:
        print(
            f"ratios 5 000 / 500: queries {r['queries']} / {baseline['queries']}, decide p95 "
            f"{p95(r['decide_ms']) / float(baseline['decide_p95_ms']):.2f}x, stats per host "
            f"{r['stats_ms'] / HOSTS / float(baseline['stats_round_ms_per_host']):.2f}x"
        )
    print(line)


if __name__ == "__main__":
    main()
