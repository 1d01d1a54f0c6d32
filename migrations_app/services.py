"""Every change to a guest migration goes through one function here (Zulip's do_<verb>, HackSoft's services).

Invariants kept here:
- a job's state moves only by `transition()`: a compare-and-set on the expected old states, along
  state_machine.TRANSITIONS; zero rows updated means someone else moved it -> TransitionConflict;
- Guest.migrating is set in the transaction that creates an active job and cleared in the one that
  makes it terminal; Guest.hypervisor changes only in a SUCCEEDED transition, on libvirt's word;
- each operator action writes its audit row in the same transaction, and pushes/enqueues on commit.
"""

from __future__ import annotations

import logging
from collections import Counter

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.roles import Perm
from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError
from hosts.models import Guest, Hypervisor
from migrations_app import events
from migrations_app import state_machine as sm
from migrations_app.choices import SLOT_STATES, TERMINAL_STATES, Kind, Phase, State, TimeoutAction
from migrations_app.models import MigrationEvent, MigrationJob
from migrations_app.orchestrator import facts
from migrations_app.orchestrator import preflight as pf

log = logging.getLogger(__name__)


class MigrationError(Exception):
    """An operator request that cannot be done; the message says why (shown as a form error / 4xx)."""


class PreflightFailed(MigrationError):
    def __init__(self, items: list[dict]):
        self.items = items
        reasons = "; ".join(f"{i['label']}: {i['evidence']}" for i in pf.failures(items))
        super().__init__(f"pre-flight refused the move: {reasons}")


class TransitionConflict(MigrationError):
    """The compare-and-set found the job in another state than expected."""


# ----------------------------------------------------------------------------------------- options

OPTION_DEFAULTS: dict = {
    "bandwidth_mibps": 0,
    "max_downtime_ms": 0,
    "auto_converge": False,
    "allow_postcopy": False,
    "compressed": False,
    "tls": False,
    "completion_timeout_s": 0,
    "timeout_action": TimeoutAction.ABORT.value,
    "persist_dest": True,
    "undefine_source": True,
    "shutdown_first": False,
    "shutdown_timeout_s": 60,
    "start_on_target": False,
}


def normalize_options(kind: str, options: dict | None) -> dict:
    """Known keys only, typed, with defaults; raises MigrationError on nonsense."""
    out = dict(OPTION_DEFAULTS)
    for key, value in (options or {}).items():
        if key not in OPTION_DEFAULTS:
            raise MigrationError(f"unknown option {key!r}")
        default = OPTION_DEFAULTS[key]
        if isinstance(default, bool):
            out[key] = bool(value)
        elif isinstance(default, int):
            try:
                out[key] = int(value or 0)
            except (TypeError, ValueError) as err:
                raise MigrationError(f"{key} must be a whole number") from err
            if out[key] < 0 or out[key] > 10_000_000:
                raise MigrationError(f"{key} must be between 0 and 10000000")
        else:
            out[key] = str(value)
    if out["timeout_action"] not in TimeoutAction.values:
        raise MigrationError("timeout_action must be abort or postcopy")
    if out["timeout_action"] == TimeoutAction.POSTCOPY and not out["allow_postcopy"]:
        raise MigrationError("switching to post-copy on timeout needs 'allow post-copy'")
    if kind not in Kind.values:
        raise MigrationError("mode must be live or offline")
    return out


def _require(actor, perm: Perm = Perm.RUN_MIGRATIONS) -> None:
    if actor is None or not actor.is_active or not actor.has_perm(perm):
        raise PermissionDenied("your role may not run guest migrations")


# ------------------------------------------------------------------------------------- the machine


def record_event(job_id: int, kind: str, message: str, data: dict | None = None) -> None:
    MigrationEvent.objects.create(job_id=job_id, kind=kind, message=message, data=data or {})


def transition(job_id: int, new: str, *, expected=None, message: str = "", **fields) -> MigrationJob:
    """Compare-and-set `job_id` into `new` from `expected` (default: every legal source state)."""
    expected = frozenset(expected) if expected is not None else sm.sources_of(new)
    for old in expected:
        sm.check(old, new)
    now = timezone.now()
    if new in TERMINAL_STATES:
        fields.setdefault("finished_at", now)
        fields.setdefault("phase", Phase.DONE)
    with transaction.atomic():
        n = MigrationJob.objects.filter(pk=job_id, state__in=[State(s).value for s in expected]).update(
            state=new, updated_at=now, **fields
        )
        if n == 0:
            current = MigrationJob.objects.filter(pk=job_id).values_list("state", flat=True).first()
            raise TransitionConflict(f"guest migration #{job_id} is {current}, not {'/'.join(sorted(expected))}")
        job = MigrationJob.objects.select_related("source", "target", "guest").get(pk=job_id)
        if new in TERMINAL_STATES and job.guest_id:
            Guest.objects.filter(pk=job.guest_id).update(migrating=False)
        record_event(job_id, "state", message or f"state → {new}", {"state": new})
        # The topology shows guests and hosts, not job states: only an ending changes the guest's record.
        transaction.on_commit(lambda: events.push_job(job_id, topology=new in TERMINAL_STATES))
        if new in TERMINAL_STATES or new in (State.CANCELLED,):
            transaction.on_commit(admit_queued)
    return job


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


ADMISSION_LOCK_KEY = 0x6B766D6D  # "kvmm": one advisory lock serializes slot accounting


def _admission_lock() -> None:
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
        _admission_lock()
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
            transition(job["pk"], State.PENDING, expected={State.QUEUED}, message="a slot is free: starting")
            out[src] += 1
            inc[dst] += 1
            admitted.append(job["pk"])
            transaction.on_commit(lambda pk=job["pk"]: enqueue(pk))
    return admitted


# ------------------------------------------------------------------------------- operator actions


def migration_request(
    *,
    guest: Guest,
    target: Hypervisor,
    kind: str,
    options: dict | None,
    actor,
    source_ip: str = "",
    idempotency_key: str = "",
) -> MigrationJob:
    """Request a guest migration: pre-flight, then one transaction creating the job and its audit row.

    The job starts PENDING (enqueued on commit) or QUEUED when a per-host slot is taken. A second
    active request for the same guest is refused by the database constraint.
    """
    _require(actor)
    opts = normalize_options(kind, options)
    guest = Guest.objects.select_related("hypervisor").get(pk=guest.pk)
    source = guest.hypervisor
    if target.pk == source.pk:
        raise MigrationError(f"{guest.name} already runs on {target.name}: pick another target")
    if "tls" not in (options or {}):
        # Not chosen (API, plans): encrypted wherever both hosts are set up for it.
        opts["tls"] = kind == Kind.LIVE and source.migration_tls and target.migration_tls
    items = facts.checklist(guest, target, kind, opts)
    audit = dict(
        actor=actor,
        source_ip=source_ip,
        guest=guest.name,
        guest_uuid=str(guest.uuid),
        hypervisor=source.name,
        target_hypervisor=target.name,
    )
    params = {"kind": kind, "options": opts, "preflight": items, "source": source.name, "target": target.name}
    if pf.verdict(items) == "blocked":
        err = PreflightFailed(items)
        audit_record(action="migration.requested", outcome="refused", params=params, message=str(err), **audit)
        raise err
    try:
        with transaction.atomic():
            _admission_lock()  # first: the job insert and the slot count must not interleave
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
                )
            Guest.objects.filter(pk=guest.pk).update(migrating=True)
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
                migration_id=job.pk,
                params=params,
                message=f"preflight {pf.verdict(items)}",
                **audit,
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


def migration_cancel(*, job: MigrationJob, actor, source_ip: str = "") -> MigrationJob:
    """Cancel: a waiting job ends at once; a running one goes CANCELLING and libvirt is told to abort.
    The guest stays on the source (libvirt aborts a pre-copy migration without touching it)."""
    _require(actor)
    job = MigrationJob.objects.select_related("source", "target").get(pk=job.pk)
    audit = _job_audit(job, actor, source_ip)
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


def _job_audit(job: MigrationJob, actor, source_ip: str, **extra) -> dict:
    """The audit fields every operator control on an existing job records."""
    return dict(
        actor=actor,
        source_ip=source_ip,
        guest=job.guest_name,
        guest_uuid=str(job.guest_uuid),
        hypervisor=job.source.name,
        target_hypervisor=job.target.name,
        migration_id=job.pk,
        **extra,
    )


def _abort_quietly(job: MigrationJob) -> None:
    """Best effort from the web process; the worker also aborts when it sees CANCELLING."""
    try:
        driver.abort_job(job.source.uri, str(job.guest_uuid))
    except DriverError as err:
        log.info("abort of #%s from the web process: %s (the worker will retry)", job.pk, err.message)


def _running_live(job: MigrationJob) -> None:
    if job.state != State.RUNNING or job.kind != Kind.LIVE:
        raise MigrationError(f"guest migration #{job.pk} is not a running live move (it is {job.state})")


def migration_set_bandwidth(*, job: MigrationJob, mibps: int, actor, source_ip: str = "") -> MigrationJob:
    """Change the bandwidth cap of a running live move (libvirt migrateSetMaxSpeed)."""
    _require(actor)
    job = MigrationJob.objects.select_related("source", "target").get(pk=job.pk)
    _running_live(job)
    if not 1 <= int(mibps) <= 100_000:
        raise MigrationError("bandwidth must be between 1 and 100000 MiB/s")
    audit = _job_audit(job, actor, source_ip, params={"from_mibps": job.bandwidth_mibps, "to_mibps": int(mibps)})
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


def migration_switch_postcopy(*, job: MigrationJob, actor, source_ip: str = "") -> MigrationJob:
    """Switch a running live move to post-copy; only if the operator allowed it at request time."""
    _require(actor)
    job = MigrationJob.objects.select_related("source", "target").get(pk=job.pk)
    _running_live(job)
    if not job.options.get("allow_postcopy"):
        raise MigrationError("post-copy was not allowed when this move was requested")
    audit = _job_audit(job, actor, source_ip)
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
