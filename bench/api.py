"""Benchmark the REST API: the guest list at 5 000 guests (first and a deep cursor page) and the
guest migration create path (pre-flight against libvirt's test driver, job, audit row, then cancel).

Runs on a fresh embedded-profile database in a temporary directory (never your real data):

    .venv/bin/python bench/api.py [--runs 30]

Baseline in the same run: the HTML guest table (same rows, same middleware), so the ratio says what
the API's serialization costs beyond a page. Nothing here opens a network connection: the inventory
rows name loopback URIs that are never opened, and the create path uses test:/// hosts. Last line, exactly:

    api guests_p95_ms=<x> queries=<n> create_p95_ms=<x>
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["KVMCLUSTER_ALLOW_TEST_URIS"] = "1"  # the create path's two hosts are libvirt's test driver

from bench.topology import (
    HOSTS,
    LARGE_PER_HOST,
    add_guests,
    make_hosts,
    measure,
    operator_client,
    p95,
    setup_django,
)


def create_path(client, data_dir: str, runs: int) -> list[float]:
    """POST a move of a shut-off guest between two test-driver hosts, then cancel it (the guest is free
    again for the next run). Times the POST only."""
    from hosts.models import Guest, Hypervisor, StorageServer
    from hosts.services import inventory
    from migrations_app.models import MigrationJob
    from tests.libvirt_nodes import NodeDomain, write_node

    images = "/var/lib/libvirt/images"
    nfs = StorageServer.objects.create(name="bench-nfs", address="127.0.0.1", export_path="/srv", mount_path=images)
    a = write_node(
        Path(data_dir) / "a.xml", [NodeDomain("bench-g", running=False, disk_path=f"{images}/bench-g.qcow2")]
    )
    b = write_node(Path(data_dir) / "b.xml", [])
    for name, uri in (("bench-a", a), ("bench-b", b)):
        Hypervisor.objects.create(name=name, uri=uri).storage_servers.set([nfs])
    inventory.refresh_all(Hypervisor.objects.filter(name__startswith="bench-").values_list("pk", flat=True))
    guest = Guest.objects.get(name="bench-g")
    body = {"guest": guest.pk, "target": "bench-b", "kind": "offline"}
    times = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        response = client.post("/api/v1/migrations/", body, content_type="application/json")
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 201, response.content
        assert client.post(f"/api/v1/migrations/{response.json()['id']}/cancel/").status_code == 202
    assert MigrationJob.objects.filter(state="cancelled").count() == runs + 1
    return times[1:]  # the first pays imports and the test driver's first open


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kvmcluster-bench-") as data_dir:
        setup_django(data_dir)
        client = operator_client()
        hosts, nfs, local = make_hosts()
        add_guests(hosts, nfs, local, 0, LARGE_PER_HOST)
        first = client.get("/api/v1/guests/").json()
        deep = first
        for _ in range(20):  # a cursor 20 pages in (1 000 rows): cost must not grow with depth
            deep = client.get(deep["next"]).json()
        pages = {
            "html guest table": "/guests/",
            "api guests": "/api/v1/guests/",
            "api guests page 21": deep["next"],
            "api guests ?q=": "/api/v1/guests/?q=vm-05",
        }
        results = {name: measure(client, url, args.runs) for name, url in pages.items()}
        create = create_path(client, data_dir, args.runs)

        print(f"{HOSTS} hypervisors, {HOSTS * LARGE_PER_HOST} guests; {args.runs} timed requests each")
        print(f"load average before the run: {os.getloadavg()[0]:.2f} (other processes share the 2 cores)")
        print(f"{'request':<20} {'queries':>7} {'median ms':>10} {'p95 ms':>8} {'KiB':>6}")
        for name, (queries, times, size, _cpu) in results.items():
            print(f"{name:<20} {queries:>7} {statistics.median(times):>10.1f} {p95(times):>8.1f} {size / 1024:>6.0f}")
        print(f"{'api create+pre-flight':<20} {'':>7} {statistics.median(create):>10.1f} {p95(create):>8.1f}")
        base = p95(results["html guest table"][1])
        worst = max(p95(results[n][1]) for n in pages if n.startswith("api"))
        print(f"api guests p95 / html guest table p95 = {worst / base:.2f} (same run, same rows)")
        queries = max(results[n][0] for n in pages if n.startswith("api"))
        time.sleep(1)  # let the last background pushes finish before their database is removed
        print(f"api guests_p95_ms={worst:.1f} queries={queries} create_p95_ms={p95(create):.1f}")


if __name__ == "__main__":
    main()
