"""Requesting a guest migration: pre-flight, then one transaction creating the job and its audit row.

Invariants kept here:
- a refused request (pre-flight, a second active move of the same guest) writes a "refused" audit row
  and no job;
- the job, the guest's `migrating` flag, the job's first timeline event and the audit row commit together;
- the database constraint, not this code, refuses a second active move of a guest.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from hosts.models import Guest, Hypervisor
from hosts.services import placement
from migrations_app import events
from migrations_app.choices import Kind, State
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import facts
from migrations_app.orchestrator import preflight as pf
from migrations_app.services import predictions
from migrations_app.services.admission import admission_lock, admit_queued
from migrations_app.services.audit import audit_fields, require
from migrations_app.services.errors import MigrationError, PreflightFailed
from migrations_app.services.options import normalize_options
from migrations_app.services.transitions import record_event
from migrations_app.signals import job_state_changed


def migration_request(
    *,
    guest: Guest,
    target: Hypervisor,
    kind: str,
    options: dict[str, Any] | None,
    actor: Any,
    source_ip: str = "",
    idempotency_key: str = "",
    target_reason: str = "",
) -> MigrationJob:
    """Request a guest migration: pre-flight, then one transaction creating the job and its audit row.

    The job starts PENDING (enqueued on commit) or QUEUED when a per-host slot is taken. A second
    active request for the same guest is refused by the database constraint. `target_reason` says how
    the target was chosen when the operator asked for "Auto" (services.auto_target); it is kept with the job
    and in its audit row.
    """
    require(actor)
    opts = normalize_options(kind, options)
    guest = Guest.objects.select_related("hypervisor").get(pk=guest.pk)
    target = Hypervisor.objects.get(pk=target.pk)  # its state now: a host gone into maintenance takes nothing
    source = guest.hypervisor
    if target.pk == source.pk:
        raise MigrationError(f"{guest.name} already runs on {target.name}: pick another target")
    if "tls" not in (options or {}):
        # Not chosen (API, plans): encrypted wherever both hosts are set up for it.
        opts["tls"] = kind == Kind.LIVE and source.migration_tls and target.migration_tls
    items = facts.checklist(guest, target, kind, opts)
    audit = audit_fields(
        actor=actor,
        source_ip=source_ip,
        guest_name=guest.name,
        guest_uuid=guest.uuid,
        source_name=source.name,
        target_name=target.name,
    )
    params = {"kind": kind, "options": opts, "preflight": items, "source": source.name, "target": target.name}
    if target_reason:
        params["target_reason"] = target_reason
    if pf.verdict(items) == "blocked":
        err = PreflightFailed(items)
        audit_record(action="migration.requested", outcome="refused", params=params, message=str(err), **audit)
        raise err
    prediction = predictions.predict_move(guest, source, target, kind, opts)
    try:
        with transaction.atomic():
            admission_lock()  # first: the job insert and the slot count must not interleave
            with transaction.atomic():  # savepoint: the constraint's IntegrityError must not poison the outer
                job = MigrationJob.objects.create(
                    guest=guest,
                    guest_name=guest.name,
                    guest_uuid=guest.uuid,
                    source=source,
                    target=target,
                    kind=kind,
                    state=State.QUEUED,
                    options=opts,
                    preflight=items,
                    memory_mib=guest.memory_mib,
                    requested_by=actor,
                    requested_from_ip=source_ip,
                    bandwidth_mibps=opts["bandwidth_mibps"],
                    idempotency_key=idempotency_key,
                    prediction=prediction,
                    target_reason=target_reason,
                )
            placement.set_migrating(guest.pk, True)
            job_state_changed.send_robust(sender=MigrationJob, job=job, state=job.state, created=True)
            record_event(
                job.pk,
                "state",
                f"requested by {actor}: {kind} move {source.name} → {target.name}",
                {"preflight": pf.verdict(items)},
            )
            admit_queued()  # before the audit row (accounts docs: audit last in its transaction)
            transaction.on_commit(lambda: events.push_job(job.pk))
            audit_record(
                action="migration.requested",
                params=params,
                message=f"preflight {pf.verdict(items)}",
                **(audit | {"migration_id": job.pk}),
            )
    except IntegrityError as err:
        active = MigrationJob.objects.filter(
            guest=guest, state__in=[State.PENDING, State.QUEUED, State.RUNNING, State.CANCELLING]
        ).first()
        reason = f"{guest.name} already has an active guest migration" + (f" (#{active.pk})" if active else "")
        audit_record(action="migration.requested", outcome="refused", params=params, message=reason, **audit)
        raise MigrationError(reason) from err
    job.refresh_from_db()
    return job
