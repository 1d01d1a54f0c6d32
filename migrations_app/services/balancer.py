"""The balancer round: read the picture, let planning.balance.decide choose, check each choice with the
real pre-flight, then store proposals (recommend) or start them as one Operation (automatic).

Invariants kept here:
- one round at a time cluster-wide: the round holds the `balancer-round` WorkerLease (take_lease's
  compare-and-set), so two workers firing the schedule together make one round, not two;
- the round's database reads are a fixed number of queries whatever the number of guests (the selectors
  in migrations_app.balancer_selectors); libvirt is asked only for the pre-flight of the few moves chosen;
- a move is proposed only if decide() chose it (the imbalance falls, the pair's gap narrows by more than
  the margin, the target stays under both marks, the guest is out of its cooldown) and its pre-flight is
  not blocked; a blocked pair is left out and decide() asked again;
- at most one PROPOSED row per guest: a proposal made again is refreshed in place, one no longer made
  expires (compare-and-set on PROPOSED, so an Apply in flight wins or loses cleanly);
- automatic mode starts its moves as one Operation of kind "balance" under the system actor `balancer`,
  with one audit row, and waits while an earlier balance operation is still active.
docs/balancing.md tells the whole story.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.system_actors import BALANCER, system_actor
from hosts.models import Guest, Hypervisor
from hosts.services.watcher import release_lease, take_lease
from kvmcluster.workers import worker_label
from migrations_app import balancer_selectors as sel
from migrations_app.choices import OPERATION_ACTIVE_STATES, Kind, OperationKind
from migrations_app.models import (
    BalancerMode,
    BalancerPolicy,
    BalancerProposal,
    BalancerRound,
    Operation,
    ProposalState,
)
from migrations_app.orchestrator import facts
from migrations_app.orchestrator import preflight as pf
from migrations_app.planning.balance import BalancePolicy, Proposal, Round, decide
from migrations_app.services.operations import operation_advance
from migrations_app.services.options import normalize_options

log = logging.getLogger(__name__)

LEASE_NAME = "balancer-round"
LEASE_TTL = timedelta(minutes=5)
# decide() is asked again at most this often when the pre-flight refuses one of its moves.
MAX_DECISIONS = 4
ROUNDS_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Inputs:
    """Everything decide() takes, gathered once (the bench times decide() on exactly this)."""

    policy: BalancerPolicy
    decision_policy: BalancePolicy
    picture: sel.Picture
    notes: tuple[str, ...]


def round_inputs(now: datetime) -> Inputs:
    policy = BalancerPolicy.get()
    notes = []
    used = sel.moves_in_the_last_hour(now)
    budget = max(0, min(policy.max_moves_per_round, policy.max_moves_per_hour - used))
    if budget == 0:
        notes.append(f"the limit of {policy.max_moves_per_hour} move(s) an hour is used up ({used} in the last hour)")
    decision_policy = sel.decide_policy(policy, budget, sel.dismissed_pairs(now, policy.cooldown_s))
    picture = sel.picture(decision_policy, now, policy.host_load_from)
    return Inputs(policy, decision_policy, picture, tuple(notes))


def balancer_round(*, now: datetime | None = None) -> BalancerRound | None:
    """One round, cluster-wide once (None when another worker holds the round's lease)."""
    holder = worker_label()
    if not take_lease(LEASE_NAME, holder, LEASE_TTL):
        log.info("balancer round already running elsewhere")
        return None
    since = time.time()
    try:
        return _round(now or timezone.now())
    finally:
        release_lease(LEASE_NAME, holder, since)


def _round(now: datetime) -> BalancerRound:
    # A round a minute: those that proposed nothing are kept a day (the panel shows the latest).
    BalancerRound.objects.filter(at__lt=now - ROUNDS_KEPT, proposal_rows__isnull=True).delete()
    policy = BalancerPolicy.get()
    if policy.mode == BalancerMode.OFF:
        _expire_open(now)
        return BalancerRound.objects.create(at=now, mode=policy.mode, notes=["balancing is off"])
    if policy.mode == BalancerMode.AUTOMATIC:
        busy = Operation.objects.filter(
            kind=OperationKind.BALANCE, state__in=[s.value for s in OPERATION_ACTIVE_STATES]
        ).first()
        if busy is not None:
            _expire_open(now)
            note = f"balance operation #{busy.pk} is still running: this round waits for it"
            return BalancerRound.objects.create(at=now, mode=policy.mode, notes=[note])
    inputs = round_inputs(now)
    result, notes = _checked_decision(inputs)
    notes = [*inputs.notes, *inputs.picture.notes, *notes, *result.notes]
    with transaction.atomic():
        rnd = BalancerRound.objects.create(
            at=now,
            mode=policy.mode,
            imbalance=round(result.imbalance, 2),
            hot=list(result.hot),
            notes=notes,
            proposals=len(result.proposals),
        )
        rows = _store(rnd, result.proposals, inputs.picture, now)
    if policy.mode == BalancerMode.AUTOMATIC and rows:
        _start_operation(rnd, rows, now)
        rnd.refresh_from_db()
    return rnd


def _checked_decision(inputs: Inputs) -> tuple[Round, list[str]]:
    """decide(), then the pre-flight of each chosen move; a blocked pair is refused and decide() asked again."""
    policy, pic = inputs.decision_policy, inputs.picture
    refused = set(policy.refused)
    passed: set[tuple[int, int]] = set()
    notes: list[str] = []
    result = decide(pic.hosts, pic.guests, policy)
    for _ in range(MAX_DECISIONS):
        blocked = False
        for p in result.proposals:
            pair = (p.guest.guest_id, p.target.host_id)
            if pair in passed:
                continue
            reason = _preflight_refusal(p)
            if reason:
                refused.add(pair)
                notes.append(f"{p.guest.name} → {p.target.name} refused by the pre-flight: {reason}")
                blocked = True
            else:
                passed.add(pair)
        if not blocked:
            return result, notes
        result = decide(pic.hosts, pic.guests, replace(policy, refused=frozenset(refused)))
    kept = tuple(p for p in result.proposals if (p.guest.guest_id, p.target.host_id) in passed)
    return replace(result, proposals=kept), notes


def _preflight_refusal(p: Proposal) -> str:
    """The pre-flight's failures for this move, as the move itself would run it ("" when not blocked)."""
    guest = Guest.objects.select_related("hypervisor").filter(pk=p.guest.guest_id).first()
    target = Hypervisor.objects.filter(pk=p.target.host_id).first()
    if guest is None or target is None:
        return "the guest or the target is gone"
    options = normalize_options(Kind.LIVE, {"tls": guest.hypervisor.migration_tls and target.migration_tls})
    items = facts.checklist(guest, target, Kind.LIVE, options)
    return "; ".join(f"{i['label']}: {i['evidence']}" for i in pf.failures(items))


def _store(rnd: BalancerRound, proposals: tuple[Proposal, ...], pic: sel.Picture, now: datetime) -> list:
    """Refresh proposals made again, create new ones, expire the rest (all in the caller's transaction)."""
    open_rows = {r.guest_id: r for r in BalancerProposal.objects.filter(state=ProposalState.PROPOSED)}
    rows = []
    for p in proposals:
        predicted = pic.predictions.get(p.guest.guest_id)
        fields: dict[str, Any] = dict(
            round=rnd,
            imbalance_before=round(p.imbalance_before, 2),
            imbalance_after=round(p.imbalance_after, 2),
            predicted_s=round(predicted.total_s, 1) if predicted else p.guest.predicted_s,
            why=p.why,
            updated_at=now,
        )
        row = open_rows.pop(p.guest.guest_id, None)
        if row is not None and (row.source_id, row.target_id) == (p.source.host_id, p.target.host_id):
            if BalancerProposal.objects.filter(pk=row.pk, state=ProposalState.PROPOSED).update(**fields):
                row.refresh_from_db()
                rows.append(row)
            continue  # (answered meanwhile: an Apply or a Dismiss won, nothing to propose again)
        if row is not None:
            _expire([row.pk], now)
        rows.append(
            BalancerProposal.objects.create(
                guest_id=p.guest.guest_id,
                guest_name=p.guest.name,
                source_id=p.source.host_id,
                target_id=p.target.host_id,
                created_at=now,
                **fields,
            )
        )
    _expire([r.pk for r in open_rows.values()], now)
    return rows


def _expire(pks: list[int], now: datetime) -> None:
    if pks:
        BalancerProposal.objects.filter(pk__in=pks, state=ProposalState.PROPOSED).update(
            state=ProposalState.EXPIRED, updated_at=now
        )


def _expire_open(now: datetime) -> None:
    BalancerProposal.objects.filter(state=ProposalState.PROPOSED).update(state=ProposalState.EXPIRED, updated_at=now)


def _start_operation(rnd: BalancerRound, rows: list[BalancerProposal], now: datetime) -> Operation | None:
    """Automatic mode: the round's proposals become one Operation of kind balance under the actor balancer."""
    actor = system_actor(BALANCER)
    moves: list[dict[str, Any]] = [
        {
            "position": i,
            "guest": r.guest_name,
            "guest_id": r.guest_id,
            "source": r.source.name,
            "source_id": r.source_id,
            "target": r.target.name,
            "target_id": r.target_id,
            "mode": "live",
            "proposal_id": r.pk,
            "predicted_s": r.predicted_s,
            "why_this_target": [r.why],
            "headline": r.headline,
        }
        for i, r in enumerate(rows, start=1)
    ]
    plan = {
        "round_id": rnd.pk,
        "imbalance_before": rows[0].imbalance_before,
        "imbalance_after": rows[-1].imbalance_after,
        "moves": moves,
    }
    headline = f"imbalance from {plan['imbalance_before']:.1f} to {plan['imbalance_after']:.1f}: {len(rows)} move(s)"
    try:
        with transaction.atomic():
            op = Operation.objects.create(
                kind=OperationKind.BALANCE, hypervisor_id=rows[0].source_id, plan=plan, requested_by=actor
            )
            BalancerProposal.objects.filter(pk__in=[r.pk for r in rows], state=ProposalState.PROPOSED).update(
                state=ProposalState.APPLIED, decided_at=now, decided_by=actor, operation=op, updated_at=now
            )
            BalancerRound.objects.filter(pk=rnd.pk).update(operation=op)
            audit_record(
                action="balancer.operation_started",
                actor=actor,
                hypervisor=rows[0].source.name,
                params={"operation_id": op.pk, "round_id": rnd.pk, "moves": [m["headline"] for m in moves]},
                message=headline,
            )
    except IntegrityError:
        note = f"{rows[0].source.name} already has an operation in progress: the moves stay proposed"
        BalancerRound.objects.filter(pk=rnd.pk).update(notes=[*list(rnd.notes), note])
        return None
    operation_advance(op.pk)
    return op
