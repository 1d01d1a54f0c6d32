"""An operator's answer to a balancer proposal: Apply (a guest migration through the normal request
service, pre-flight and audit as always) or Dismiss. One function each, each with its audit row.

Invariants kept here:
- only a PROPOSED proposal is applied or dismissed; the state moves by compare-and-set, so of two people
  answering at once one wins and the other is told what happened;
- Apply creates the job through services.requests.migration_request (its own pre-flight, transaction and
  `migration.requested` audit row), then marks the proposal APPLIED with the job and writes
  `balancer.proposal_applied`; a refused request leaves the proposal open and is audited as refused;
- a proposal whose guest has left its source since the round expires instead of moving from elsewhere.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from migrations_app.choices import Kind
from migrations_app.models import BalancerProposal, MigrationJob, ProposalState
from migrations_app.services.audit import audit_fields, require
from migrations_app.services.errors import MigrationError
from migrations_app.services.requests import migration_request


def _audit(p: BalancerProposal, actor: Any, source_ip: str, **extra: Any) -> dict[str, Any]:
    params = {
        "proposal_id": p.pk,
        "imbalance_before": p.imbalance_before,
        "imbalance_after": p.imbalance_after,
        "predicted_s": p.predicted_s,
        "why": p.why,
    }
    return audit_fields(
        actor=actor,
        source_ip=source_ip,
        guest_name=p.guest_name,
        guest_uuid=p.guest.uuid if p.guest else "",
        source_name=p.source.name,
        target_name=p.target.name,
        params=params,
        **extra,
    )


def _fresh(proposal: BalancerProposal) -> BalancerProposal:
    return BalancerProposal.objects.select_related("guest", "source", "target").get(pk=proposal.pk)


def proposal_apply(*, proposal: BalancerProposal, actor: Any, source_ip: str = "") -> MigrationJob:
    """Start the proposed move as a live guest migration requested by `actor`; returns the job."""
    require(actor)
    p = _fresh(proposal)
    if p.state != ProposalState.PROPOSED:
        reason = f"proposal #{p.pk} is {p.get_state_display().lower()}: there is nothing to apply"
        audit_record(
            action="balancer.proposal_applied", outcome="refused", message=reason, **_audit(p, actor, source_ip)
        )
        raise MigrationError(reason)
    if p.guest is None or p.guest.hypervisor_id != p.source_id:
        BalancerProposal.objects.filter(pk=p.pk, state=ProposalState.PROPOSED).update(
            state=ProposalState.EXPIRED, updated_at=timezone.now()
        )
        reason = f"{p.guest_name} is no longer on {p.source.name}: the proposal has expired"
        audit_record(
            action="balancer.proposal_applied", outcome="refused", message=reason, **_audit(p, actor, source_ip)
        )
        raise MigrationError(reason)
    try:
        job = migration_request(
            guest=p.guest,
            target=p.target,
            kind=Kind.LIVE,
            options=None,
            actor=actor,
            source_ip=source_ip,
            idempotency_key=f"balancer-proposal-{p.pk}",
        )
    except MigrationError as err:
        audit_record(
            action="balancer.proposal_applied", outcome="refused", message=str(err), **_audit(p, actor, source_ip)
        )
        raise
    now = timezone.now()
    with transaction.atomic():
        # The job exists whatever happened to the proposal meanwhile: the proposal says which job carried it.
        BalancerProposal.objects.filter(pk=p.pk).update(
            state=ProposalState.APPLIED, decided_at=now, decided_by=actor, job=job, updated_at=now
        )
        audit_record(
            action="balancer.proposal_applied",
            message=p.headline,
            **_audit(p, actor, source_ip, migration_id=job.pk),
        )
    return job


def proposal_dismiss(*, proposal: BalancerProposal, actor: Any, source_ip: str = "") -> BalancerProposal:
    """Say no to a proposal: the balancer does not propose that guest to that target again within the
    policy's cooldown."""
    require(actor)
    p = _fresh(proposal)
    now = timezone.now()
    with transaction.atomic():
        changed = BalancerProposal.objects.filter(pk=p.pk, state=ProposalState.PROPOSED).update(
            state=ProposalState.DISMISSED, decided_at=now, decided_by=actor, updated_at=now
        )
        if changed:
            audit_record(action="balancer.proposal_dismissed", message=p.headline, **_audit(p, actor, source_ip))
    p.refresh_from_db()
    if not changed:
        reason = f"proposal #{p.pk} is {p.get_state_display().lower()}: it can no longer be dismissed"
        audit_record(
            action="balancer.proposal_dismissed", outcome="refused", message=reason, **_audit(p, actor, source_ip)
        )
        raise MigrationError(reason)
    return p
