"""The body of the django-q2 task: claim the job, re-check the actor and the pre-flight, run the move."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.denials import record_denial
from accounts.roles import Perm
from kvmcluster.workers import worker_label
from migrations_app import services
from migrations_app.choices import Kind, Phase, State
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import facts, live, outcome, timing
from migrations_app.orchestrator import preflight as pf
from migrations_app.orchestrator.offline import run_offline

log = logging.getLogger(__name__)


def owner_id() -> str:
    """The worker label (`<name>/<host>:<pid>`, kvmcluster.workers) written as the job's owner."""
    return worker_label()


def claim(job_id: int) -> MigrationJob | None:
    """Compare-and-set PENDING -> RUNNING; None if someone else has it (a duplicate delivery is a no-op)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            job = services.transition(
                job_id,
                State.RUNNING,
                expected={State.PENDING},
                started_at=now,
                heartbeat_at=now,
                owner=owner_id(),
                phase=Phase.PREFLIGHT,
                message=f"picked up by worker {owner_id()}",
            )
            audit_record(action="migration.started", **services.job_audit_fields(job, params={"worker": owner_id()}))
    except services.TransitionConflict as err:
        log.info("guest migration #%s not claimed: %s", job_id, err)
        return None
    return job


def run_migration(job_id: int) -> str:
    timing.mark(job_id, "picked_up")
    job = claim(job_id)
    if job is None:
        timing.take(job_id)
        return "skipped"
    timing.mark(job_id, "claimed")
    actor = job.requested_by
    if actor is None or not actor.is_active or not actor.has_perm(Perm.RUN_MIGRATIONS):
        # The requester lost the right between request and start: a refused action like any other.
        record_denial(
            user=actor, method="JOB", path=f"job:migration/{job.pk}", perm=str(Perm.RUN_MIGRATIONS), interface="job"
        )
        return outcome.settle(job.pk, error=f"{actor or 'the requester'} may no longer run guest migrations").state
    if job.guest is None:
        return outcome.settle(job.pk, error="the guest was removed from the inventory").state
    # The connections a live move runs on open meanwhile (changing nothing on any host), so the move
    # starts as soon as the checklist passes; if it does not, they are only closed.
    opener = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"migration-{job.pk}-open")
    ahead = opener.submit(live.prepare, job) if job.kind == Kind.LIVE else None
    opener.shutdown(wait=False)
    prepared = None
    try:
        # the checklist again, now that the move is about to happen (hosts and guest may have changed)
        gathered = facts.gather(
            job.guest, job.source, job.target, job.kind, job.options, exclude_job=job.pk, at_start=True
        )
        timing.mark(job.pk, "preflight_facts")
        items = [i.as_dict() for i in pf.run_checks(gathered)]
        verdict = pf.verdict(items)
        with transaction.atomic():  # one commit: the checklist, its timeline line, and (live, passed) SETUP
            MigrationJob.objects.filter(pk=job.pk).update(
                preflight=items, **({"phase": Phase.SETUP} if ahead is not None and verdict != "blocked" else {})
            )
            services.record_event(
                job.pk, "preflight", f"pre-flight re-run at start: {verdict}", {"failures": pf.failures(items)}
            )
        if verdict == "blocked":
            reasons = "; ".join(f"{i['label']}: {i['evidence']}" for i in pf.failures(items))
            return outcome.settle(job.pk, error=f"pre-flight failed at start: {reasons}").state
        timing.mark(job.pk, "preflight_done")
        job.refresh_from_db()  # one read: the job as libvirt's move will see it, and whether it is being cancelled
        if job.state == State.CANCELLING:
            return outcome.settle(job.pk, error="cancelled before libvirt started", aborted=True).state
        if ahead is not None:
            prepared = ahead.result()
            return live.run_live(job, unsafe=facts.needs_unsafe(gathered.guest), prepared=prepared).state
        return run_offline(job).state
    finally:
        if ahead is not None:
            (prepared or ahead.result()).close()  # run_live closed it already; a refused move's closes here
