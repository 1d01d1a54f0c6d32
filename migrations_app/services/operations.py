"""Maintenance mode as an Operation: drain a host by starting its plan's moves as child guest migrations.

Invariants kept here:
- the host is set to MAINTENANCE in the transaction that stores the Operation, before any child starts,
  so nothing new lands on it (pre-flight and the power action refuse a host in maintenance);
- a child is created only through services.requests.migration_request (its pre-flight, audit and queue),
  with the idempotency key `op<operation>-guest<guest>`: a retried step finds the existing child instead
  of starting a second move of the guest (the database's unique constraint says no to a race);
- at most `window` children are active at once (MIGRATION_MAX_OUTGOING: the source's slots); the admission
  queue still decides when each may start;
- everything operation_advance decides comes from the database, so calling it again (a child ending, the
  reconciler after a worker crash) resumes where it stopped;
- the operation's state moves by compare-and-set; each action writes its audit row in its transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.types import Actor
from hosts.models import Guest, Hypervisor
from hosts.services import placement
from migrations_app import events
from migrations_app.choices import ACTIVE_STATES, Kind, OperationKind, OperationState, State
from migrations_app.models import MigrationJob, Operation
from migrations_app.services.audit import require
from migrations_app.services.drain import drain_plan, plan_as_dict
from migrations_app.services.errors import MigrationError
from migrations_app.services.requests import migration_request

log = logging.getLogger(__name__)
OS = OperationState
ACTIVE = [s.value for s in (OS.RUNNING, OS.PAUSED, OS.CANCELLING)]


def child_key(operation_id: int, guest_id: int) -> str:
    return f"op{operation_id}-guest{guest_id}"


@dataclass
class Progress:
    """Where an operation's children stand, from the database."""

    total: int = 0
    done: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0
    jobs: list[MigrationJob] = field(default_factory=list)
    eta_s: int | None = None  # seconds left, from the plan's predictions and the running moves' own ETA

    @property
    def percent(self) -> int:
        return round(100 * (self.done + self.failed) / self.total) if self.total else 100

    @property
    def eta_text(self) -> str:
        if self.eta_s is None:
            return "–"
        return f"about {self.eta_s} s" if self.eta_s < 120 else f"about {round(self.eta_s / 60)} min"


def operation_progress(operation: Operation) -> Progress:
    """Counts for the page and the API: a planned move with no child yet is waiting."""
    jobs = list(operation.jobs.select_related("source", "target").order_by("id"))
    refused = len(operation.refusals or {})
    p = Progress(total=len(operation.plan.get("moves", [])), jobs=jobs)
    for job in jobs:
        if job.state == State.SUCCEEDED:
            p.done += 1
        elif job.state in (State.FAILED, State.CANCELLED):
            p.failed += 1
        elif job.state == State.QUEUED:
            p.waiting += 1
        else:
            p.running += 1
    p.failed += refused
    p.waiting += max(0, p.total - len(jobs) - refused)
    p.eta_s = _eta_s(operation, jobs)
    return p


def _eta_s(operation: Operation, jobs: list[MigrationJob]) -> int | None:
    """What is left, in seconds: each running move's own ETA (its prediction until libvirt gives one),
    plus the predicted time of the moves still to start while the operation runs, spread over the
    plan's parallel slots. None once the operation has ended."""
    if not operation.is_active:
        return None
    by_guest = {j.guest_id: j for j in jobs}
    refused = operation.refusals or {}
    left = 0.0
    for move in operation.plan.get("moves", []):
        predicted = float((move.get("prediction") or {}).get("total_s") or 0)
        job = by_guest.get(move["guest_id"])
        if job is None:
            if operation.state == OS.RUNNING and not operation.stopped and str(move["guest_id"]) not in refused:
                left += predicted
        elif job.is_active:
            left += job.eta_s if job.eta_s is not None else predicted
    return round(left / max(1, int(operation.plan.get("max_parallel") or 1)))


def maintenance_enter(
    *,
    hypervisor: Hypervisor,
    actor: Actor,
    stop_on_first_failure: bool = False,
    force: bool = False,
    source_ip: str = "",
) -> Operation:
    """Confirm the drain: recompute the plan, refuse if a guest cannot move (unless `force`: then only the
    movable ones move and the operation ends incomplete), set the host to MAINTENANCE, store the operation
    with its plan and start the first children."""
    require(actor)
    plan = drain_plan(hypervisor)
    plan_dict = plan_as_dict(plan)
    audit: dict[str, Any] = dict(actor=actor, source_ip=source_ip, hypervisor=hypervisor.name)
    left = [*plan.blocked, *plan.skipped]
    if left and not force:
        reason = "; ".join(f"{b.guest.name}: {', '.join(b.reasons)}" for b in left)
        message = f"{len(left)} guest(s) cannot leave {hypervisor.name}: {reason}"
        audit_record(
            action="maintenance.confirmed", outcome="refused", params={"plan": plan_dict}, message=message, **audit
        )
        raise MigrationError(message)
    return operation_open(OperationKind.DRAIN, hypervisor, plan_dict, stop_on_first_failure, actor, source_ip)


# The audit action of each kind's confirmation (a balance round's operation is the balancer's, not confirmed here).
CONFIRMED = {OperationKind.DRAIN: "maintenance.confirmed", OperationKind.RETURN: "maintenance.return_confirmed"}


def operation_open(
    kind: OperationKind,
    hypervisor: Hypervisor,
    plan: dict[str, Any],
    stop_on_first_failure: bool,
    actor: Actor,
    source_ip: str,
) -> Operation:
    """Store a confirmed plan (a drain's or a return's) as an Operation and write its confirmation audit row
    with the plan in one transaction; a drain also sets its host to maintenance in it. Then start the first
    children. One active operation per host (a database constraint): a second is refused, audited as
    refused, and nothing of it is kept."""
    audit_action = CONFIRMED[kind]
    audit: dict[str, Any] = dict(actor=actor, source_ip=source_ip, hypervisor=hypervisor.name)
    try:
        with transaction.atomic():
            op = Operation.objects.create(
                kind=kind,
                hypervisor=hypervisor,
                plan=plan,
                stop_on_first_failure=stop_on_first_failure,
                requested_by_id=getattr(actor, "pk", None),  # the callers' require() let only a signed-in user in
                requested_from_ip=source_ip,
            )
            if kind == OperationKind.DRAIN:
                placement.set_maintenance(hypervisor.pk, True)
            audit_record(
                action=audit_action,
                params={"operation_id": op.pk, "stop_on_first_failure": stop_on_first_failure, "plan": plan},
                message=plan["verdict"],
                **audit,
            )
    except IntegrityError as err:
        refusal = f"{hypervisor.name} already has an operation in progress"
        audit_record(action=audit_action, outcome="refused", message=refusal, **audit)
        raise MigrationError(refusal) from err
    operation_advance(op.pk)
    op.refresh_from_db()
    return op


def operation_advance(operation_id: int) -> Operation:
    """One step, from the database: start the next planned moves while the window has room, stop after a
    failure when asked, and finish the operation once no child is active and nothing is left to start.
    Called when a child ends and by the reconciler; calling it twice changes nothing the first did not.
    The operation's page is pushed its new counts once the step has committed."""
    try:
        return _advance(operation_id)
    finally:
        transaction.on_commit(lambda: events.push_operation(operation_id))


def _advance(operation_id: int) -> Operation:
    op = Operation.objects.select_related("hypervisor", "requested_by").get(pk=operation_id)
    if op.is_terminal:
        return op
    children = {j.guest_id: j for j in op.jobs.all()}
    _maybe_stop(op, children)
    if op.state == OS.RUNNING and not op.stopped:
        _start_next(op, children)
        _maybe_stop(op, children)
    if op.jobs.filter(state__in=[s.value for s in ACTIVE_STATES]).exists():
        return op
    if op.state != OS.CANCELLING and not op.stopped and _unstarted(op, children):
        return op  # paused with moves left (RUNNING cannot get here: the window had room)
    _finish(op)
    op.refresh_from_db()
    return op


def _maybe_stop(op: Operation, children: dict[int | None, MigrationJob]) -> None:
    if not (op.stop_on_first_failure and not op.stopped and _failed(op, children)):
        return
    with transaction.atomic():
        if Operation.objects.filter(pk=op.pk, stopped=False).update(stopped=True):
            audit_record(
                action="operation.stopped",
                actor=op.requested_by,
                hypervisor=op.hypervisor.name,
                params={"operation_id": op.pk},
                message="a move failed and stop on first failure was chosen: no further move starts",
            )
    op.stopped = True


def _failed(op: Operation, children: dict[int | None, MigrationJob]) -> bool:
    return bool(op.refusals) or any(j.state in (State.FAILED, State.CANCELLED) for j in children.values())


def _unstarted(op: Operation, children: dict[int | None, MigrationJob]) -> list[dict[str, Any]]:
    refused = op.refusals or {}
    return [m for m in op.plan.get("moves", []) if m["guest_id"] not in children and str(m["guest_id"]) not in refused]


def _start_next(op: Operation, children: dict[int | None, MigrationJob]) -> None:
    # a drain's moves all leave its host, a return's all land on it: that host's limit is the window
    window = max(
        1, settings.MIGRATION_MAX_INCOMING if op.kind == OperationKind.RETURN else settings.MIGRATION_MAX_OUTGOING
    )
    room = window - sum(1 for j in children.values() if j.state in ACTIVE_STATES)
    for move in sorted(_unstarted(op, children), key=lambda m: m["position"]):
        if room <= 0:
            return
        guest = Guest.objects.filter(pk=move["guest_id"], hypervisor_id=move.get("source_id", op.hypervisor_id)).first()
        target = Hypervisor.objects.filter(pk=move["target_id"]).first()
        try:
            if guest is None or target is None:
                raise MigrationError(f"{move['guest']} or {move['target']} is no longer where the plan found it")
            job = migration_request(
                guest=guest,
                target=target,
                kind=Kind.LIVE if move["mode"] == "live" else Kind.OFFLINE,
                options=None,
                actor=op.requested_by,
                source_ip=op.requested_from_ip,
                idempotency_key=child_key(op.pk, guest.pk),
            )
        except MigrationError as err:
            existing = MigrationJob.objects.filter(idempotency_key=child_key(op.pk, move["guest_id"])).first()
            if existing is not None:  # a concurrent step created it first: adopt, never a second move
                MigrationJob.objects.filter(pk=existing.pk, operation__isnull=True).update(operation=op)
                continue
            refusals = dict(op.refusals or {}, **{str(move["guest_id"]): str(err)})
            Operation.objects.filter(pk=op.pk).update(refusals=refusals)
            op.refusals = refusals
            if op.stop_on_first_failure:
                return
            continue
        MigrationJob.objects.filter(pk=job.pk).update(operation=op)
        children[guest.pk] = job
        room -= 1


def _finish(op: Operation) -> None:
    """End the operation: cancelled, done when no guest is left on the host (a return: when every guest of
    its plan is back on the host; the DB inventory), else incomplete with a reason per guest left. A balance
    round is done when every planned move succeeded."""
    if op.kind == OperationKind.BALANCE:
        left, reasons = _balance_left(op)
    else:
        guests = _left(op)
        left = [g.name for g in guests]
        reasons = [f"{g.name}: {_why_left(op, g)}" for g in guests]
    if op.state == OS.CANCELLING:
        new = OS.CANCELLED
    else:
        new = OS.DONE if not left else OS.INCOMPLETE
    with transaction.atomic():
        n = Operation.objects.filter(pk=op.pk, state__in=ACTIVE).update(
            state=new, reasons=reasons, finished_at=timezone.now()
        )
        if n:
            audit_record(
                action="operation.finished",
                actor=op.requested_by,
                hypervisor=op.hypervisor.name,
                params={"operation_id": op.pk, "state": new, "left": reasons},
                message=f"{op.hypervisor.name}: {new}" + (f", {len(left)} guest(s) left" if left else ""),
            )


def _balance_left(op: Operation) -> tuple[list[str], list[str]]:
    """The planned moves of a balance round that did not happen, and why."""
    jobs = {j.guest_id: j for j in op.jobs.all()}
    left, reasons = [], []
    for move in op.plan.get("moves", []):
        job = jobs.get(move["guest_id"])
        if job is not None and job.state == State.SUCCEEDED:
            continue
        left.append(move["guest"])
        if job is not None:
            reasons.append(f"{move['guest']}: move #{job.pk} {job.state}" + (f": {job.error}" if job.error else ""))
        else:
            why = (op.refusals or {}).get(str(move["guest_id"]), "not started")
            reasons.append(f"{move['guest']}: {why}")
    return left, reasons


def _left(op: Operation) -> list[Guest]:
    if op.kind == OperationKind.RETURN:
        ids = [m["guest_id"] for m in op.plan.get("moves", [])]
        return list(Guest.objects.filter(pk__in=ids).exclude(hypervisor=op.hypervisor).order_by("name"))
    return list(Guest.objects.filter(hypervisor=op.hypervisor).order_by("name"))


def _why_left(op: Operation, guest: Guest) -> str:
    job = op.jobs.filter(guest=guest).order_by("-id").first()
    if job is not None:
        return f"move #{job.pk} {job.state}" + (f": {job.error}" if job.error else "")
    if str(guest.pk) in (op.refusals or {}):
        return op.refusals[str(guest.pk)]
    for b in [*op.plan.get("blocked", []), *op.plan.get("skipped", [])]:
        if b["guest_id"] == guest.pk:
            return "; ".join(b["reasons"])
    if op.stopped:
        return "not started: an earlier move failed and stop on first failure was chosen"
    if op.state == OS.CANCELLING:
        return "not started: the operation was cancelled"
    return "not in the plan (it arrived after the plan was made)"


def advance_active() -> list[int]:
    """The reconciler's step: advance every active operation, so a worker crash mid-operation resumes."""
    ids = list(Operation.objects.filter(state__in=ACTIVE).values_list("pk", flat=True))
    for pk in ids:
        try:
            operation_advance(pk)
        except Exception:  # one broken operation must not stop the reconciler settling the others
            log.exception("operation #%s: advance failed", pk)
    return ids


def advance_after_child(operation_id: int) -> None:
    """on_commit hook of a child's terminal transition (errors logged: the reconciler retries)."""
    try:
        operation_advance(operation_id)
    except Exception:
        log.exception("operation #%s: advance after a child ended failed", operation_id)
