"""Per-host slots: how many moves a host may send and receive at once, and who goes next.

Invariants kept here:
- a job leaves QUEUED only when both of its hosts have a free slot (settings.MIGRATION_MAX_OUTGOING /
  MIGRATION_MAX_INCOMING), in request order: a job that must wait blocks later jobs on the same hosts;
- slot accounting is serialized (one advisory lock on PostgreSQL; SQLite writers are one at a time);
- an admitted job is handed to a worker only after the transaction that admitted it commits.
"""

from __future__ import annotations

import functools
from collections import Counter

from django.conf import settings
from django.db import connection, transaction

from migrations_app.choices import SLOT_STATES, State
from migrations_app.models import MigrationJob
from migrations_app.services import transitions

ADMISSION_LOCK_KEY = 0x6B766D6D  # "kvmm": one advisory lock serializes slot accounting


def _enqueue(job_id: int) -> None:
    """Hand the job to a django-q2 worker; tests replace this to run it in a thread."""
    from django_q.tasks import async_task

    async_task(
        "migrations_app.tasks.run_migration",
        job_id,
        task_name=f"migration-{job_id}",
        q_options={"max_attempts": 1, "timeout": settings.Q_CLUSTER["timeout"], "task_name": f"migration-{job_id}"},
    )


def enqueue(job_id: int) -> None:
    _enqueue(job_id)


def admission_lock() -> None:
    """Serialize slot accounting. PostgreSQL: a transaction-level advisory lock (row locks on hypervisors
    deadlocked against the job insert's FK key-share locks and the inventory's updates). SQLite: every
    transaction is BEGIN IMMEDIATE (settings), so writers are already one at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [ADMISSION_LOCK_KEY])


def admit_queued() -> list[int]:
    """Promote QUEUED jobs to PENDING, in request order, while both of their hosts have a free slot.

    A job that must wait also blocks later jobs on the same hosts, so nobody overtakes it.
    """
    admitted: list[int] = []
    with transaction.atomic():
        admission_lock()
        slot = MigrationJob.objects.filter(state__in=[s.value for s in SLOT_STATES])
        out = Counter(slot.values_list("source_id", flat=True))
        inc = Counter(slot.values_list("target_id", flat=True))
        blocked_out: set[int] = set()
        blocked_in: set[int] = set()
        queued = MigrationJob.objects.filter(state=State.QUEUED).order_by("requested_at", "id")
        for job in queued.values("pk", "source_id", "target_id"):
            src, dst = job["source_id"], job["target_id"]
            free = (
                out[src] < settings.MIGRATION_MAX_OUTGOING
                and inc[dst] < settings.MIGRATION_MAX_INCOMING
                and src not in blocked_out
                and dst not in blocked_in
            )
            if not free:
                blocked_out.add(src)
                blocked_in.add(dst)
                continue
            transitions.transition(
                job["pk"], State.PENDING, expected={State.QUEUED}, message="a slot is free: starting"
            )
            out[src] += 1
            inc[dst] += 1
            admitted.append(job["pk"])
            transaction.on_commit(functools.partial(enqueue, job["pk"]))
    return admitted
