"""An operator's controls on an operation (pause, resume, cancel) and leaving maintenance.

Invariants kept here:
- each control checks the actor's permission, moves the state by compare-and-set and writes its audit
  row in the same transaction; a control that finds the operation elsewhere changes nothing and says why;
- cancel cancels the children still waiting (QUEUED/PENDING) and lets running moves finish: aborting a
  live move half-way gains nothing, the guest would stay on the source anyway;
- a host leaves maintenance only when no operation on it is active.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.audit import audit_record
from accounts.types import Actor
from hosts.models import Guest, Hypervisor
from hosts.services import placement
from migrations_app import events
from migrations_app.choices import OperationKind, OperationState, State
from migrations_app.models import Operation
from migrations_app.services.audit import require
from migrations_app.services.controls import migration_cancel
from migrations_app.services.errors import MigrationError
from migrations_app.services.operations import ACTIVE, operation_advance

OS = OperationState


def _control(op: Operation, *, actor: Actor, source_ip: str, new: str, expected: set[str], action: str) -> Operation:
    require(actor)
    with transaction.atomic():
        n = Operation.objects.filter(pk=op.pk, state__in=sorted(expected)).update(state=new)
        current = Operation.objects.filter(pk=op.pk).values_list("state", flat=True).first()
        if not n:
            raise MigrationError(f"operation #{op.pk} is {current}: it cannot be {action}")
        audit_record(
            action=f"operation.{action}",
            actor=actor,
            source_ip=source_ip,
            hypervisor=op.hypervisor.name,
            params={"operation_id": op.pk},
        )
        transaction.on_commit(lambda: events.push_operation(op.pk))
    return Operation.objects.select_related("hypervisor").get(pk=op.pk)


def operation_pause(*, operation: Operation, actor: Actor, source_ip: str = "") -> Operation:
    """No new move starts; moves already started run to their end."""
    return _control(operation, actor=actor, source_ip=source_ip, new=OS.PAUSED, expected={OS.RUNNING}, action="paused")


def operation_resume(*, operation: Operation, actor: Actor, source_ip: str = "") -> Operation:
    """Start the remaining moves again."""
    op = _control(operation, actor=actor, source_ip=source_ip, new=OS.RUNNING, expected={OS.PAUSED}, action="resumed")
    transaction.on_commit(lambda: operation_advance(op.pk))
    return op


def operation_cancel(*, operation: Operation, actor: Actor, source_ip: str = "") -> Operation:
    """Cancel the waiting children, let the running ones finish, then the operation ends CANCELLED."""
    op = _control(
        operation,
        actor=actor,
        source_ip=source_ip,
        new=OS.CANCELLING,
        expected={OS.RUNNING, OS.PAUSED},
        action="cancelled",
    )
    for job in op.jobs.filter(state__in=[State.QUEUED, State.PENDING]):
        try:
            migration_cancel(job=job, actor=actor, source_ip=source_ip)
        except MigrationError:
            pass  # it started meanwhile: it runs to its end
    return operation_advance(op.pk)


def maintenance_exit(*, hypervisor: Hypervisor, actor: Actor, source_ip: str = "") -> dict[str, Any]:
    """Take the host out of maintenance (ONLINE; the next inventory refresh corrects it if it does not
    answer) and offer the reverse of the last finished drain: its guests that left, back to this host."""
    require(actor)
    audit: dict[str, Any] = dict(actor=actor, source_ip=source_ip, hypervisor=hypervisor.name)
    if Operation.objects.filter(hypervisor=hypervisor, state__in=ACTIVE).exists():
        message = f"{hypervisor.name} has an operation in progress: cancel it or let it finish first"
        audit_record(action="maintenance.exited", outcome="refused", message=message, **audit)
        raise MigrationError(message)
    reverse = reverse_plan(hypervisor)
    with transaction.atomic():
        if not placement.set_maintenance(hypervisor.pk, False):
            raise MigrationError(f"{hypervisor.name} is not in maintenance")
        audit_record(action="maintenance.exited", params={"reverse_plan": reverse}, **audit)
    return {"hypervisor": hypervisor.name, "state": Hypervisor.State.ONLINE.value, "reverse_plan": reverse}


def reverse_plan(hypervisor: Hypervisor) -> list[dict[str, Any]]:
    """The guests the last finished drain of `hypervisor` moved away that are still where it put them."""
    last = (
        Operation.objects.filter(hypervisor=hypervisor, kind=OperationKind.DRAIN, state__in=[OS.DONE, OS.INCOMPLETE])
        .order_by("-finished_at", "-id")
        .first()
    )
    if last is None:
        return []
    moves = []
    for job in last.jobs.filter(state=State.SUCCEEDED, guest__isnull=False).select_related("target").order_by("id"):
        if job.guest_id is None:
            continue
        guest = Guest.objects.filter(pk=job.guest_id, hypervisor=job.target).first()
        if guest is not None:
            moves.append(
                {
                    "guest": guest.name,
                    "guest_id": guest.pk,
                    "from": job.target.name,
                    "from_id": job.target_id,
                    "to": hypervisor.name,
                    "mode": job.kind,
                    "of_operation": last.pk,
                }
            )
    return moves
