"""Read-only queries of guest migrations (HackSoft's selectors)."""

from __future__ import annotations

from django.db.models import QuerySet

from migrations_app.choices import ACTIVE_STATES, TERMINAL_STATES
from migrations_app.models import MigrationJob


def jobs() -> QuerySet[MigrationJob]:
    return MigrationJob.objects.select_related("source", "target", "requested_by", "guest")


def job_history(*, guest: str = "", state: str = "") -> QuerySet[MigrationJob]:
    """The history page's rows; arguments come from MigrationFilterForm (checked, NUL-free)."""
    qs = jobs()
    if state:
        qs = qs.filter(state=state)
    if guest:
        qs = qs.filter(guest_name__icontains=guest)
    return qs


def active_jobs() -> list[MigrationJob]:
    return list(jobs().filter(state__in=[s.value for s in ACTIVE_STATES]).order_by("requested_at", "id"))


def samples_for_chart(job: MigrationJob, limit: int = 2000) -> list[dict]:
    return list(
        job.samples.order_by("at").values("elapsed_ms", "data_remaining", "throughput_bps", "dirty_rate_bps")[:limit]
    )


def guest_moves_since(guest_id: int, since) -> list[MigrationJob]:
    """The guest's guest migrations that ended at or after `since`, oldest first (its load chart's markers).
    One query; the finished_at index is not needed at a guest's handful of jobs."""
    return list(
        MigrationJob.objects.select_related("source", "target")
        .filter(guest_id=guest_id, state__in=[s.value for s in TERMINAL_STATES], finished_at__gte=since)
        .order_by("finished_at", "id")
    )
