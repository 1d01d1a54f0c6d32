"""Bringing the guests of a drain back: the reverse plan, confirmed, runs as an Operation of kind "return".

Invariants kept here (the rest are services.operations'):
- the reverse plan is recomputed at confirmation (operation_controls.reverse_plan: the guests the last
  finished drain moved away that are still where it put them), so a guest moved since is not dragged back;
- the host must be out of maintenance (pre-flight would refuse every move to it anyway);
- the Operation row and the `maintenance.return_confirmed` audit row commit together; its children are
  started by operation_advance, as a drain's are, each through migration_request (pre-flight, audit,
  queue, idempotency key `op<operation>-guest<guest>`), at most MIGRATION_MAX_INCOMING at once (they all
  land on this host).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from accounts.audit import audit_record
from accounts.types import Actor
from hosts.models import Guest, Hypervisor
from migrations_app.choices import OperationKind
from migrations_app.models import Operation
from migrations_app.services import predictions
from migrations_app.services.audit import require
from migrations_app.services.errors import MigrationError
from migrations_app.services.operation_controls import reverse_plan
from migrations_app.services.operations import operation_open


def return_plan(hypervisor: Hypervisor) -> dict[str, Any]:
    """The reverse plan in the shape an Operation carries (services.drain.plan_as_dict's): each move names
    its source, since the guests come back from several hosts."""
    reverse = reverse_plan(hypervisor)
    guests = Guest.objects.in_bulk([m["guest_id"] for m in reverse])
    sources = Hypervisor.objects.in_bulk({m["from_id"] for m in reverse})
    moves = [
        {
            "position": n,
            "guest": m["guest"],
            "guest_id": m["guest_id"],
            "source": m["from"],
            "source_id": m["from_id"],
            "target": hypervisor.name,
            "target_id": hypervisor.pk,
            "mode": m["mode"],
            "of_operation": m["of_operation"],
            # as the Migrate form predicts it (the operation page's time left adds these up)
            "prediction": predictions.predict_move(
                guests[m["guest_id"]], sources[m["from_id"]], hypervisor, m["mode"], {}
            ),
        }
        for n, m in enumerate(reverse, start=1)
    ]
    verdict = f"bring {len(moves)} guest(s) back to {hypervisor.name}" if moves else "nothing to bring back"
    return {
        "source": hypervisor.name,
        "verdict": verdict,
        "moves": moves,
        "blocked": [],
        "skipped": [],
        "max_parallel": max(1, settings.MIGRATION_MAX_INCOMING),
    }


def return_start(
    *, hypervisor: Hypervisor, actor: Actor, stop_on_first_failure: bool = False, source_ip: str = ""
) -> Operation:
    """Confirm the reverse plan: store it as an Operation (kind "return") on `hypervisor`, the host the
    guests come back to, and start its first moves."""
    require(actor)
    hypervisor = Hypervisor.objects.get(pk=hypervisor.pk)  # its state now
    audit: dict[str, Any] = dict(actor=actor, source_ip=source_ip, hypervisor=hypervisor.name)
    plan = return_plan(hypervisor)
    refusal = ""
    if hypervisor.state == Hypervisor.State.MAINTENANCE:
        refusal = f"{hypervisor.name} is in maintenance: exit maintenance first"
    elif not plan["moves"]:
        refusal = f"no guest of the last drain of {hypervisor.name} is left to bring back"
    if refusal:
        audit_record(action="maintenance.return_confirmed", outcome="refused", message=refusal, **audit)
        raise MigrationError(refusal)
    return operation_open(OperationKind.RETURN, hypervisor, plan, stop_on_first_failure, actor, source_ip)
