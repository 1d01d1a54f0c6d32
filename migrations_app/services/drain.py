"""Can this host be taken down? Its drain plan, from the inventory and libvirt's facts (nothing starts).

The decision is planning.drain's (pure); this module only gathers what it needs:
- every guest on the host with its power state, memory, what its last moves sent and its dirty rate;
- every other host with its free memory (less what moves in flight will take), maintenance state and the
  link speed learned from past moves between the pair;
- the pre-flight checklist of each (guest, target) pair, run exactly as a move's would be (the same
  facts from libvirt, the same checks), sorted into what stops a guest anywhere (a disk on storage the
  target does not share, a cache mode that cannot move live) and what stops one pair only (a missing
  bridge, an incompatible CPU, the target down).
Memory and the per-host limits are left to the planner, which books them across the whole plan.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from accounts.audit import audit_record
from accounts.types import Actor
from hosts.models import Guest, Hypervisor
from migrations_app.choices import Kind, State
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import facts
from migrations_app.orchestrator import preflight as pf
from migrations_app.planning.drain import DrainPlan, DrainPolicy, GuestFacts, TargetFacts, plan_drain
from migrations_app.planning.prediction import link_speed
from migrations_app.services import predictions
from migrations_app.services.options import normalize_options

# Checks the planner answers itself across the plan (memory booked guest by guest, slots in the schedule).
PLANNED_BY_THE_PLANNER = {"memory", "concurrency"}
# Failures that are the guest's own, whichever target: listed once, with their fix.
GUEST_BLOCKERS = {"shared_storage", "guest_state"}
LIVE_ONLY_BLOCKERS = {"cache_none"}


def drain_plan(hypervisor: Hypervisor, policy: DrainPolicy | None = None) -> DrainPlan:
    """The plan for emptying `hypervisor` now. Asks libvirt for facts only; changes nothing."""
    policy = policy or DrainPolicy(
        per_host_limit=min(settings.MIGRATION_MAX_OUTGOING, settings.MIGRATION_MAX_INCOMING) or 1
    )
    guests = list(Guest.objects.filter(hypervisor=hypervisor).prefetch_related("disks", "nics").order_by("name"))
    others = list(Hypervisor.objects.exclude(pk=hypervisor.pk).prefetch_related("storage_servers").order_by("name"))
    source_snap = facts.host_snap(hypervisor)
    # libvirt is asked about each target once per plan, not once per guest: every guest is judged against
    # the same snapshot (its free memory, domains, bridges), as the planner books memory against one figure
    target_snaps = facts.host_snaps(others, with_domains=True)
    guest_facts: list[GuestFacts] = []
    refusals: dict[tuple[int, int], str] = {}
    for guest in guests:
        kind = Kind.LIVE if guest.power in (Guest.Power.RUNNING, Guest.Power.PAUSED) else Kind.OFFLINE
        failed: dict[str, dict[int, str]] = {}  # check key -> target pk -> what it said
        live = facts.find_domain(hypervisor.uri, str(guest.uuid))  # the guest as its host sees it, once
        for target in others:
            options = normalize_options(kind, {"tls": hypervisor.migration_tls and target.migration_tls})
            gathered = facts.gather(
                guest, hypervisor, target, kind, options,
                source_snap=source_snap, live=live, target_snap=target_snaps[target.pk],
            )  # fmt: skip
            for item in pf.run_checks(gathered):
                if item.status == pf.FAIL and item.key not in PLANNED_BY_THE_PLANNER:
                    failed.setdefault(item.key, {})[target.pk] = _said(item)
        blockers, live_blockers = [], []
        for key, by_target in failed.items():
            first = next(iter(by_target.values()))
            if key in LIVE_ONLY_BLOCKERS:
                live_blockers.append(first)
            elif key in GUEST_BLOCKERS and len(by_target) == len(others):
                blockers.append(first)  # the guest's own problem: it fails wherever it would go
            else:
                for target_pk, text in by_target.items():
                    refusals.setdefault((guest.pk, target_pk), text)
        dirty = predictions.guest_dirty_rate(guest)
        guest_facts.append(
            GuestFacts(
                guest_id=guest.pk,
                name=guest.name,
                power=_power(guest.power),
                memory_mib=guest.memory_mib,
                memory_used_mib=predictions.guest_memory_sent(guest).value,  # what its first pass sends
                dirty_mibps=dirty.value if dirty else 0.0,
                dirty_sampled_over_s=dirty.sampled_over_s if dirty else 0.0,
                blockers=tuple(blockers),
                live_blockers=tuple(live_blockers),
            )
        )
    targets = [_target(hypervisor, t, target_snaps[t.pk]) for t in others]
    return plan_drain(hypervisor.name, guest_facts, targets, policy, refusals)


def drain_plan_shown(*, hypervisor: Hypervisor, plan: DrainPlan, actor: Actor, source_ip: str = "") -> None:
    """The audit row for a plan an operator looked at: what it said, so a later drain can be compared."""
    audit_record(
        action="maintenance.plan_shown",
        actor=actor,
        source_ip=source_ip,
        hypervisor=hypervisor.name,
        params={"verdict": plan.verdict(), "moves": len(plan.moves), "blocked": len(plan.blocked)},
    )


def plan_as_dict(plan: DrainPlan) -> dict[str, Any]:
    """The plan as the API and `kvmctl drain --dry-run --json` show it."""
    return {
        "source": plan.source,
        "verdict": plan.verdict(),
        "can_empty": plan.can_empty,
        "total_s": round(plan.total_s, 1),
        "max_parallel": plan.max_parallel,
        "moves": [
            {
                "position": m.position,
                "guest": m.guest.name,
                "guest_id": m.guest.guest_id,
                "target": m.target.name,
                "target_id": m.target.host_id,
                "mode": m.mode,
                "start_s": round(m.start_s, 1),
                "end_s": round(m.end_s, 1),
                "prediction": {
                    "converges": m.prediction.converges,
                    "via": m.prediction.via,
                    "passes": m.prediction.passes,
                    "total_s": round(m.prediction.total_s, 1),
                    "downtime_ms": round(m.prediction.downtime_ms),
                    "summary": m.prediction.summary(),
                },
                "why_this_target": list(m.reasons),
            }
            for m in plan.moves
        ],
        "blocked": [
            {"guest": b.guest.name, "guest_id": b.guest.guest_id, "reasons": list(b.reasons)} for b in plan.blocked
        ],
        "skipped": [
            {"guest": b.guest.name, "guest_id": b.guest.guest_id, "reasons": list(b.reasons)} for b in plan.skipped
        ],
    }


def _said(item: pf.CheckItem) -> str:
    return f"{item.evidence} — {item.hint}" if item.hint else item.evidence


def _power(power: str) -> str:
    if power == Guest.Power.RUNNING:
        return "running"
    if power == Guest.Power.PAUSED:
        return "paused"
    return "shutoff"


def _target(source: Hypervisor, target: Hypervisor, snap: pf.HostSnap) -> TargetFacts:
    recent = predictions.recent_link_speeds(source, target)
    in_flight = MigrationJob.objects.filter(target=target, state__in=[State.PENDING, State.QUEUED, State.RUNNING])
    return TargetFacts(
        host_id=target.pk,
        name=target.name,
        memory_free_mib=target.memory_free_mib if snap.reachable else 0,
        in_maintenance=target.state == Hypervisor.State.MAINTENANCE,
        link_mibps=link_speed(recent).value if recent else None,
        committed_mib=snap.reserved_incoming_mib,
        incoming=in_flight.count(),
    )
