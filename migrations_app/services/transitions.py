"""The one way a job's state moves: a compare-and-set on the expected old states, along
state_machine.TRANSITIONS, with its timeline event and its push to the browser after commit.

Invariants kept here:
- zero rows updated means someone else moved the job -> TransitionConflict (nothing written);
- a terminal transition releases the guest (Guest.migrating cleared, through hosts.services.placement)
  and, on commit, lets the next queued job take the freed slot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from hosts.services import placement
from migrations_app import events
from migrations_app import state_machine as sm
from migrations_app.choices import TERMINAL_STATES, Phase, State
from migrations_app.models import MigrationEvent, MigrationJob
from migrations_app.services import admission
from migrations_app.services.errors import TransitionConflict
from migrations_app.signals import job_state_changed


def record_event(job_id: int, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    MigrationEvent.objects.create(job_id=job_id, kind=kind, message=message, data=data or {})


def transition(
    job_id: int, new: str, *, expected: Iterable[str] | None = None, message: str = "", **fields: Any
) -> MigrationJob:
    """Compare-and-set `job_id` into `new` from `expected` (default: every legal source state)."""
    sources = frozenset(expected) if expected is not None else sm.sources_of(new)
    for old in sources:
        sm.check(old, new)
    now = timezone.now()
    if new in TERMINAL_STATES:
        fields.setdefault("finished_at", now)
        fields.setdefault("phase", Phase.DONE)
    with transaction.atomic():
        n = MigrationJob.objects.filter(pk=job_id, state__in=[State(s).value for s in sources]).update(
            state=new, updated_at=now, **fields
        )
        if n == 0:
            current = MigrationJob.objects.filter(pk=job_id).values_list("state", flat=True).first()
            raise TransitionConflict(f"guest migration #{job_id} is {current}, not {'/'.join(sorted(sources))}")
        job = MigrationJob.objects.select_related("source", "target", "guest").get(pk=job_id)
        if new in TERMINAL_STATES and job.guest_id:
            placement.set_migrating(job.guest_id, False)
        record_event(job_id, "state", message or f"state → {new}", {"state": new})
        job_state_changed.send_robust(sender=MigrationJob, job=job, state=new, created=False)
        # The topology shows guests and hosts, not job states: only an ending changes the guest's record.
        transaction.on_commit(lambda: events.push_job(job_id, topology=new in TERMINAL_STATES))
        if new in TERMINAL_STATES or new in (State.CANCELLED,):
            transaction.on_commit(admission.admit_queued)
        if (parent := job.operation_id) is not None:  # the operation's page counts its children: push it
            transaction.on_commit(lambda: events.push_operation(parent))
        if new in TERMINAL_STATES and job.operation_id:
            # the parent operation starts its next move or finishes (imported here: operations imports us)
            from migrations_app.services.operations import advance_after_child

            op_id = job.operation_id
            transaction.on_commit(lambda: advance_after_child(op_id))
    return job
