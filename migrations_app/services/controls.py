"""An operator's controls on an existing move: cancel, bandwidth, post-copy.

Invariants kept here:
- each control checks the actor's permission first and writes its audit row in the transaction of the
  change it makes; a control libvirt refuses writes a "failed" audit row and changes nothing;
- a cancel of a running move only asks (CANCELLING): the worker settles the job from libvirt's view.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from accounts.audit import audit_record
from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError
from migrations_app.choices import Kind, Phase, State
from migrations_app.models import MigrationJob
from migrations_app.services.audit import job_audit_fields, require
from migrations_app.services.errors import MigrationError, TransitionConflict
from migrations_app.services.transitions import record_event, transition

log = logging.getLogger(__name__)


def migration_cancel(*, job: MigrationJob, actor: Any, source_ip: str = "") -> MigrationJob:
    """Cancel: a waiting job ends at once; a running one goes CANCELLING and libvirt is told to abort.
    The guest stays on the source (libvirt aborts a pre-copy migration without touching it)."""
    require(actor)
    job = MigrationJob.objects.select_related("source", "target").get(pk=job.pk)
    audit = job_audit_fields(job, actor, source_ip)
    if job.postcopy_started:
        raise MigrationError("post-copy has started: the target owns the guest now, so it cannot be cancelled")
    try:
        with transaction.atomic():
            if job.state in (State.QUEUED, State.PENDING):
                job = transition(
                    job.pk,
                    State.CANCELLED,
                    expected={State.QUEUED, State.PENDING},
                    message=f"cancelled by {actor} before it started",
                    cancelled_by=actor,
                    where_guest_is="source",
                )
                audit_record(action="migration.cancelled", message="cancelled before start; guest untouched", **audit)
                return job
            job = transition(
                job.pk,
                State.CANCELLING,
                expected={State.RUNNING},
                message=f"cancel requested by {actor}",
                cancelled_by=actor,
            )
            audit_record(action="migration.cancel_requested", message="abort sent to libvirt", **audit)
    except TransitionConflict as err:
        raise MigrationError(f"nothing to cancel: {err}") from err
    transaction.on_commit(lambda: _abort_quietly(job))
    return job


def _abort_quietly(job: MigrationJob) -> None:
    """Best effort from the web process; the worker also aborts when it sees CANCELLING."""
    try:
        driver.abort_job(job.source.uri, str(job.guest_uuid))
    except DriverError as err:
        log.info("abort of #%s from the web process: %s (the worker will retry)", job.pk, err.message)


def _running_live(job: MigrationJob) -> None:
    if job.state != State.RUNNING or job.kind != Kind.LIVE:
        raise MigrationError(f"guest migration #{job.pk} is not a running live move (it is {job.state})")


def migration_set_bandwidth(*, job: MigrationJob, mibps: int, actor: Any, source_ip: str = "") -> MigrationJob:
    """Change the bandwidth cap of a running live move (libvirt migrateSetMaxSpeed)."""
    require(actor)
    job = MigrationJob.objects.select_related("source", "target").get(pk=job.pk)
    _running_live(job)
    if not 1 <= int(mibps) <= 100_000:
        raise MigrationError("bandwidth must be between 1 and 100000 MiB/s")
    audit = job_audit_fields(job, actor, source_ip, params={"from_mibps": job.bandwidth_mibps, "to_mibps": int(mibps)})
    try:
        driver.set_max_speed(job.source.uri, str(job.guest_uuid), int(mibps))
    except DriverError as err:
        audit_record(action="migration.bandwidth_changed", outcome="failed", message=err.message, **audit)
        raise MigrationError(f"libvirt refused the new bandwidth: {err.message}") from err
    with transaction.atomic():
        MigrationJob.objects.filter(pk=job.pk).update(bandwidth_mibps=int(mibps))
        record_event(job.pk, "control", f"bandwidth {job.bandwidth_mibps or '∞'} → {mibps} MiB/s by {actor}")
        audit_record(action="migration.bandwidth_changed", **audit)
    job.bandwidth_mibps = int(mibps)
    return job


def migration_switch_postcopy(*, job: MigrationJob, actor: Any, source_ip: str = "") -> MigrationJob:
    """Switch a running live move to post-copy; only if the operator allowed it at request time."""
    require(actor)
    job = MigrationJob.objects.select_related("source", "target").get(pk=job.pk)
    _running_live(job)
    if not job.options.get("allow_postcopy"):
        raise MigrationError("post-copy was not allowed when this move was requested")
    audit = job_audit_fields(job, actor, source_ip)
    try:
        driver.start_postcopy(job.source.uri, str(job.guest_uuid))
    except DriverError as err:
        audit_record(action="migration.postcopy", outcome="failed", message=err.message, **audit)
        raise MigrationError(f"libvirt refused post-copy: {err.message}") from err
    with transaction.atomic():
        MigrationJob.objects.filter(pk=job.pk).update(postcopy_started=True, phase=Phase.POSTCOPY)
        record_event(job.pk, "control", f"switched to post-copy by {actor}")
        audit_record(action="migration.postcopy", **audit)
    return job
