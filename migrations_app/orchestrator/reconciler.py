"""Settles guest migrations that lost their worker (crash, kill, reboot): our table joined with libvirt's truth.

A job is orphaned when its owner process is gone (same machine, pid dead) or its heartbeat is older than
STALE_S. For each, both hosts are asked where the guest is and whether libvirt still runs a migration job:
still running -> left RUNNING (re-checked next pass; the heartbeat note says so); otherwise settled
SUCCEEDED / CANCELLED / FAILED by outcome.settle, with an audit row "migration.reconciled". PENDING jobs
whose task vanished are re-enqueued (the task's compare-and-set makes a duplicate harmless). An HA restart
whose worker is gone has its guest's "recovering" claim released (migrations_app.services.recovery).

One pass at a time cluster-wide: the pass holds the `reconciler` WorkerLease (every worker runs the
pass at its start, and the minute schedule on whichever worker its turn falls). The lease only saves
work: every step of a pass is a compare-and-set, so two passes that overlapped after a lease expired
still settle each job once. A job adopted in the pass is followed after the lease is released (it may
take minutes; the adopter's heartbeat keeps other passes off it).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError
from hosts.services.watcher import release_lease, take_lease
from kvmcluster.workers import is_dead_here
from migrations_app import services
from migrations_app.choices import State
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import outcome
from migrations_app.services import operations, recovery

log = logging.getLogger(__name__)

STALE_S = 30
PENDING_STALE_S = 120
LEASE_NAME = "reconciler"
LEASE_TTL = dt.timedelta(seconds=30)


def orphaned(job: MigrationJob, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    if job.owner and is_dead_here(job.owner):
        return True
    beat = job.heartbeat_at or job.started_at or job.requested_at
    return (now - beat).total_seconds() > STALE_S


def libvirt_still_migrating(job: MigrationJob) -> bool:
    try:
        return driver.job_stats(job.source.uri, str(job.guest_uuid)).active
    except DriverError:
        return False


def reconcile() -> list[str] | None:
    """One pass; None when another worker's pass holds the lease."""
    from migrations_app.orchestrator.run import owner_id

    holder = owner_id()
    if not take_lease(LEASE_NAME, holder, LEASE_TTL):
        log.debug("reconciler pass already running elsewhere")
        return None
    since = time.time()
    adopted: list[MigrationJob] = []
    try:
        decisions = _pass(adopted)
        decisions += [f"{name}: abandoned HA restart released" for name in recovery.release_abandoned()]
    finally:
        release_lease(LEASE_NAME, holder, since)
    for job in adopted:
        _follow(job)
        job.refresh_from_db()
        if not job.is_terminal:
            try:
                decisions.append(_settle(job))
            except services.TransitionConflict:
                pass  # another reconciler (or the worker itself) got there first
    return decisions


def _pass(adopted: list[MigrationJob]) -> list[str]:
    decisions: list[str] = []
    now = timezone.now()
    active = MigrationJob.objects.select_related("source", "target").filter(state__in=[State.RUNNING, State.CANCELLING])
    for job in active:
        if not orphaned(job, now):
            continue
        if libvirt_still_migrating(job):
            if job.state == State.CANCELLING:
                try:
                    driver.abort_job(job.source.uri, str(job.guest_uuid))
                except DriverError:
                    pass
            if not _adopt(job, now):
                continue  # another reconciler adopted it first
            services.record_event(job.pk, "reconciler", "worker gone but libvirt still migrates: re-attached")
            decisions.append(f"#{job.pk} re-attached")
            adopted.append(job)  # followed once the pass has released its lease
            continue
        try:
            decisions.append(_settle(job))
        except services.TransitionConflict:
            continue  # another reconciler (or the worker itself) got there first
    stale_pending = MigrationJob.objects.filter(
        state=State.PENDING, requested_at__lt=now - dt.timedelta(seconds=PENDING_STALE_S)
    )
    for job in stale_pending:
        services.enqueue(job.pk)
        services.record_event(job.pk, "reconciler", "still pending: task re-enqueued")
        decisions.append(f"#{job.pk} re-enqueued")
    services.admit_queued()
    operations.advance_active()  # a worker crash mid-operation resumes from the database
    if decisions:
        log.info("reconciler: %s", "; ".join(decisions))
    return decisions


def _settle(job: MigrationJob, note: str = "") -> str:
    """Settle an orphaned job from libvirt's view; SUCCEEDED only if the guest verifiably moved. `note`: why
    the follower ended the move (its completion timeout), said instead of the lost worker."""
    moved = outcome.moved(job, outcome.locate(job))
    lost = note or f"the worker running this move ({job.owner or 'unknown'}) was lost and libvirt runs no migration job"
    settled = outcome.settle(
        job.pk, error="" if moved else lost, aborted=job.state == State.CANCELLING, reconciled=True
    )
    services.record_event(job.pk, "reconciler", f"worker {job.owner or '?'} lost: settled {settled.state}")
    return f"#{job.pk} {settled.state} ({settled.where_guest_is})"


FOLLOW_POLL_S = 0.25
FOLLOW_MAX_S = 3600


def _adopt(job: MigrationJob, now) -> bool:
    """Take ownership of an orphaned job (compare-and-set on the old owner), so one reconciler follows it."""
    from migrations_app.orchestrator.run import owner_id

    return bool(
        MigrationJob.objects.filter(pk=job.pk, owner=job.owner, state__in=[State.RUNNING, State.CANCELLING]).update(
            owner=owner_id(), heartbeat_at=now
        )
    )


def _follow(job: MigrationJob) -> None:
    """Re-attach to a libvirt job whose worker died: keep pushing its progress from a monitor connection
    and keep applying the operator's controls (cancel, completion timeout: live.Controls, as the worker did)
    until libvirt finishes, then settle from libvirt's view like a worker would."""
    from migrations_app.orchestrator.live import CONTROL_EVERY_S, Controls
    from migrations_app.orchestrator.progress import ProgressReporter

    try:
        monitor = driver.MigrationMonitor(job.source.uri, str(job.guest_uuid))
    except DriverError:
        return  # the source went away: the next pass settles from where the guest is
    reporter = ProgressReporter(job)
    started = job.started_at or job.requested_at
    controls = Controls(job, monitor, reporter, running_for_s=(timezone.now() - started).total_seconds())
    deadline = time.monotonic() + FOLLOW_MAX_S
    next_control = 0.0
    try:
        while time.monotonic() < deadline:
            try:
                stats = monitor.stats()
            except DriverError:
                break
            if not stats.active:
                break
            reporter.sample(stats)
            if (now := time.monotonic()) >= next_control:
                next_control = now + CONTROL_EVERY_S
                controls.apply(now)
            time.sleep(FOLLOW_POLL_S)
    finally:
        monitor.close()
    job.refresh_from_db()
    if job.is_terminal:
        return
    try:
        _settle(job, note=controls.timeout_note)
    except services.TransitionConflict:
        pass
