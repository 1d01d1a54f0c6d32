"""Benchmark the audit review pages at 10 000 and 1 000 000 rows: the list must not slow down with the table.

Runs on a fresh embedded-profile database in a temporary directory (never your real data):

    .venv/bin/python bench/audit.py [--rows 1000000] [--runs 20]

Fills a valid hash chain (bulk inserts, the same hash function as audit_record), then renders through
Django's test Client the unfiltered list, a filter on a rare guest, a filter on the rare "failed" outcome,
an action-prefix filter, a deep page (?before= near the oldest row) and a detail page, counting queries once
and timing each `--runs` times; finally times `manage.py audit verify`. Last line, exactly:

    audit rows=<n> queries_list=<n> p95_ms_small=<x> p95_ms_large=<y> ratio=<y/x> verify_s=<s>
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ACTIONS = [
    "auth.login",
    "auth.logout",
    "inventory.refresh_requested",
    "migration.requested",
    "migration.started",
    "migration.succeeded",
    "migration.bandwidth_changed",
    "hypervisor.updated",
    "guest.power",
]


def setup_django(data_dir: str) -> None:
    for var in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(var, None)
    os.environ["KVMCLUSTER_DATA_DIR"] = data_dir
    os.environ.setdefault("KVMCLUSTER_DEBUG", "0")
    os.environ.setdefault("KVMCLUSTER_LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(total: int, start_at: int = 0) -> None:
    """Append rows up to `total`, chained to whatever is there."""
    from accounts.audit import compute_hash, row_content
    from accounts.models import AuditEvent

    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or ""
    have = AuditEvent.objects.count()
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    batch = []
    for i in range(have, total):
        guest = f"g{i % 5000:04d}"
        row = {
            "created_at": t0 + dt.timedelta(seconds=i * 3),
            "actor_username": f"user{i % 7}",
            "source_ip": "127.0.0.1",
            "action": ACTIONS[i % len(ACTIONS)],
            "guest": guest,
            "guest_uuid": f"00000000-0000-4000-8000-{i % 5000:012d}",
            "hypervisor": f"hv-{i % 100:03d}",
            "migration_id": i // 4,
            "params": {"i": i, "kind": "live"},
            "outcome": "failed" if i % 97 == 0 else "ok",
            "message": "",
        }
        row["hash"] = compute_hash(row_content(row), last)
        row["prev_hash"], last = last, row["hash"]
        batch.append(AuditEvent(**row))
        if len(batch) == 20_000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    if batch:
        AuditEvent.objects.bulk_create(batch)


def measure(client, runs: int) -> tuple[dict[str, float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import AuditEvent

    oldest = AuditEvent.objects.order_by("id").values_list("id", flat=True).first()
    newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    pages = {
        "list": "/audit/",
        "guest": "/audit/?guest=g0042",
        "failed": "/audit/?outcome=failed",
        "prefix": "/audit/?action=migration.",
        "deep": f"/audit/?before={oldest + 120}",
        "range": "/audit/?since=2026-01-02T00:00&until=2026-01-02T01:00",
        "detail": f"/audit/{(oldest + newest) // 2}/",
    }
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(pages["list"]).status_code == 200
    queries = len(ctx.captured_queries)
    p95 = {}
    for name, url in pages.items():
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        p95[name] = statistics.quantiles(times, n=20)[-1]
    return p95, queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kvmcluster-bench-audit-") as data_dir:
        setup_django(data_dir)
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        from accounts.roles import sync_role_groups

        sync_role_groups()
        user = get_user_model().objects.create_user("bench-viewer")
        from django.contrib.auth.models import Group

        user.groups.add(Group.objects.get(name="viewer"))
        client = Client()
        client.force_login(user)

        results = {}
        for size in (10_000, args.rows):
            t = time.perf_counter()
            fill(size)
            print(f"filled to {size} rows in {time.perf_counter() - t:.1f}s", flush=True)
            p95, queries = measure(client, args.runs)
            results[size] = (p95, queries)
            print(f"{size:>9} rows  queries_list={queries}  " + "  ".join(f"{k}={v:.1f}ms" for k, v in p95.items()))
        t = time.perf_counter()
        call_command("audit", "verify", stdout=open(os.devnull, "w"))  # noqa: SIM115
        verify_s = time.perf_counter() - t
        small, large = max(results[10_000][0].values()), max(results[args.rows][0].values())
        print(
            f"audit rows={args.rows} queries_list={results[args.rows][1]} p95_ms_small={small:.1f} "
            f"p95_ms_large={large:.1f} ratio={large / small:.2f} verify_s={verify_s:.1f}"
        )


if __name__ == "__main__":
    main()
