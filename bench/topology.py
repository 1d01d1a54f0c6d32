"""Benchmark the topology page and the guest table at 500 and 5 000 guests on 100 hypervisors.

Runs on a fresh embedded-profile database in a temporary directory (never your real data):

    .venv/bin/python bench/topology.py [--runs 30]

Renders each page through Django's test Client (full middleware, session, permissions, templates),
counts its queries once and times it `--runs` times. Last line, exactly:

    topology queries_small=<n> queries_large=<n> p95_ms_large=<x>
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HOSTS = 100
SMALL_PER_HOST = 5  # 500 guests
LARGE_PER_HOST = 50  # 5 000 guests


def setup_django(data_dir: str) -> None:
    for var in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(var, None)  # the embedded profile, in a throwaway directory
    os.environ["KVMCLUSTER_DATA_DIR"] = data_dir
    os.environ.setdefault("KVMCLUSTER_DEBUG", "0")
    os.environ.setdefault("KVMCLUSTER_LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("migrate", database="channels", verbosity=0)


def operator_client():
    """A Django test Client signed in as an operator (role groups synced first)."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from accounts.roles import sync_role_groups

    sync_role_groups()
    user = User.objects.create_user("bench", password="bench-password-123")
    user.groups.add(Group.objects.get(name="operator"))
    client = Client()
    client.force_login(user)
    return client


def make_hosts():
    from hosts.models import Hypervisor, StorageServer

    nfs = StorageServer.objects.create(name="nfs1", address="127.0.0.1", export_path="/srv/images")
    local = StorageServer.objects.create(
        name="scratch", address="localhost", export_path="/scratch", mount_path="/scratch", protocol="local"
    )
    hosts = Hypervisor.objects.bulk_create(
        Hypervisor(
            name=f"hv-{i:03d}",
            uri=f"qemu+tcp://127.1.{i // 250}.{i % 250 + 1}/system",  # never opened: the rows are data
            state="online" if i % 17 else "offline",
            last_error="" if i % 17 else "unable to connect to server: Connection refused",
            cpus=64,
            vcpus_allocated=i % 80,
            memory_total_mib=262144,
            memory_free_mib=262144 - (i * 2000) % 262144,
        )
        for i in range(HOSTS)
    )
    for h in hosts:
        h.storage_servers.add(nfs)
    return hosts, nfs, local


def add_guests(hosts, nfs, local, start: int, stop: int) -> None:
    """Guests number start..stop-1 on every host, each with one disk and one NIC."""
    from hosts.models import Guest, GuestDisk, GuestNic

    powers = ["running"] * 6 + ["shutoff", "paused"]
    guests = [
        Guest(
            uuid=uuid.uuid4(),
            name=f"vm-{h.pk:03d}-{n:03d}",
            hypervisor=h,
            power=powers[n % len(powers)],
            vcpus=1 + n % 4,
            memory_mib=512 * (1 + n % 8),
        )
        for h in hosts
        for n in range(start, stop)
    ]
    guests = Guest.objects.bulk_create(guests, batch_size=1000)
    disks, nics = [], []
    for i, g in enumerate(guests):
        on_local = i % 23 == 0
        disks.append(
            GuestDisk(
                guest=g,
                target="vda",
                source_type="file",
                source=f"{'/scratch' if on_local else '/var/lib/libvirt/images'}/{g.name}.qcow2",
                cache="writeback" if i % 31 == 0 else "none",
                storage_server=local if on_local else nfs,
            )
        )
        nics.append(
            GuestNic(
                guest=g,
                mac=f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                kind="bridge",
                bridge="br0",
            )
        )
    GuestDisk.objects.bulk_create(disks, batch_size=1000)
    GuestNic.objects.bulk_create(nics, batch_size=1000)


def measure(client, url: str, runs: int) -> tuple[int, list[float], int, list[float]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm template and permission caches
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    queries = len(ctx.captured_queries)  # now: a later reconnect clears the connection's query log
    assert response.status_code == 200, (url, response.status_code)
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return queries, times, len(response.content), cpu


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kvmcluster-bench-") as data_dir:
        setup_django(data_dir)
        client = operator_client()
        hosts, nfs, local = make_hosts()
        pages = {"topology": "/", "guest table": "/guests/", "guest table sorted": "/guests/?sort=-memory&page=7"}
        results: dict[str, dict[str, tuple[int, list[float], int, list[float]]]] = {}
        for label, per_host in (("small", SMALL_PER_HOST), ("large", LARGE_PER_HOST)):
            already = 0 if label == "small" else SMALL_PER_HOST
            add_guests(hosts, nfs, local, already, per_host)
            results[label] = {name: measure(client, url, args.runs) for name, url in pages.items()}

        print(f"{HOSTS} hypervisors; small = {HOSTS * SMALL_PER_HOST} guests, large = {HOSTS * LARGE_PER_HOST} guests;")
        print(f"{args.runs} timed renders per page (Django test Client, DEBUG off, SQLite WAL, 2-core machine)")
        print(f"load average before the run: {os.getloadavg()[0]:.2f} (other processes share the 2 cores)")
        print(
            f"{'page':<20} {'size':<6} {'queries':>7} {'min ms':>7} {'median ms':>10} {'p95 ms':>8}"
            f" {'cpu med ms':>10} {'KiB':>6}"
        )
        for name in pages:
            for label in ("small", "large"):
                queries, times, size, cpu = results[label][name]
                print(
                    f"{name:<20} {label:<6} {queries:>7} {min(times):>7.1f} {statistics.median(times):>10.1f}"
                    f" {p95(times):>8.1f}"
                    f" {statistics.median(cpu):>10.1f} {size / 1024:>6.0f}"
                )
            ratio = p95(results["large"][name][1]) / p95(results["small"][name][1])
            print(f"{name:<20} large/small p95 ratio = {ratio:.2f}")

        q_small = results["small"]["topology"][0]
        q_large = results["large"]["topology"][0]
        worst_p95 = max(p95(results["large"][name][1]) for name in pages)
        print(f"topology queries_small={q_small} queries_large={q_large} p95_ms_large={worst_p95:.1f}")


if __name__ == "__main__":
    main()
