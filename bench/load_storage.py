"""What measured-load history costs on disk: one host with GUESTS guests at the steady state of every tier.

    .venv/bin/python bench/load_storage.py                 # embedded profile, fresh SQLite in a temp dir
    DATABASE_URL=postgres://.../scratch .venv/bin/python bench/load_storage.py   # a scratch PostgreSQL DB

Writes each tier's rows as its keep holds them (10 s for 1 h, 1 min for 1 day, 10 min for 30 days),
then measures the two tables with their indexes. Last line, exactly:

    load_storage backend=<x> rows_per_owner=<n> host_bytes_per_row=<x> guest_bytes_per_row=<x>
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

GUESTS = 20


def setup_django() -> None:
    if "DATABASE_URL" not in os.environ:
        os.environ.pop("REDIS_URL", None)
        os.environ["KVMCLUSTER_DATA_DIR"] = tempfile.mkdtemp(prefix="kvt-load-bench.")
    os.environ.setdefault("KVMCLUSTER_LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def table_bytes(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("VACUUM " + table)  # autocommit: settles the free-space map before measuring
            cur.execute("SELECT pg_total_relation_size(%s)", [table])
            return cur.fetchone()[0]
        cur.execute("SELECT name FROM sqlite_master WHERE tbl_name = %s", [table])
        names = [r[0] for r in cur.fetchall()]
        cur.execute(
            f"SELECT SUM(pgsize) FROM dbstat WHERE name IN ({','.join(['%s'] * len(names))})",
            names,
        )
        return cur.fetchone()[0]


def main() -> None:
    setup_django()
    import uuid

    from django.db import connection

    from hosts.load_tiers import TIERS
    from hosts.models import Guest, GuestLoadSample, HostLoadSample, Hypervisor

    hv = Hypervisor.objects.create(name=f"bench-{uuid.uuid4().hex[:6]}", uri=f"test:///bench-{uuid.uuid4().hex}.xml")
    guests = [Guest.objects.create(uuid=uuid.uuid4(), name=f"g{i}", hypervisor=hv) for i in range(GUESTS)]
    now = datetime(2026, 12, 2, tzinfo=UTC)
    ats = [
        (tier.resolution_s, now - timedelta(seconds=s))
        for tier in TIERS
        for s in range(0, int(tier.keep.total_seconds()), tier.resolution_s)
    ]
    HostLoadSample.objects.bulk_create(
        (HostLoadSample(hypervisor=hv, at=at, resolution_s=r, cpu_pct=37.5, memory_used_mib=12345,
                        memory_total_mib=65536) for r, at in ats),
        batch_size=2000,
    )  # fmt: skip
    for g in guests:
        GuestLoadSample.objects.bulk_create(
            (GuestLoadSample(guest=g, at=at, resolution_s=r, cpu_pct_of_vcpus=42.0, cpu_cores=0.84, memory_mib=2048)
             for r, at in ats),
            batch_size=2000,
        )  # fmt: skip
    host_rows, guest_rows = HostLoadSample.objects.count(), GuestLoadSample.objects.count()
    host_b = table_bytes(HostLoadSample._meta.db_table) / host_rows
    guest_b = table_bytes(GuestLoadSample._meta.db_table) / guest_rows
    if "DATABASE_URL" in os.environ:  # leave a scratch PostgreSQL database as it was
        GuestLoadSample.objects.filter(guest__hypervisor=hv).delete()
        HostLoadSample.objects.filter(hypervisor=hv).delete()
        Guest.objects.filter(hypervisor=hv).delete()
        hv.delete()
    print(
        f"load_storage backend={connection.vendor} rows_per_owner={len(ats)} "
        f"host_bytes_per_row={host_b:.0f} guest_bytes_per_row={guest_b:.0f}"
    )


if __name__ == "__main__":
    main()
