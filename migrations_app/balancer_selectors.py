"""What a balancer round decides from, read from the database in a fixed number of queries (whatever the
number of guests): each host's measured CPU and memory and how long it has stayed above a mark, each
running guest's measured CPU, its predicted move, and the policy's per-guest rules. docs/balancing.md.

Nothing here asks libvirt: the round's picture is the load history (hosts.services.load_history writes
it every 10 s). The pre-flight of each proposed move is the round's own step (services.balancer).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Max, Q, Sum

from hosts.load_selectors import LATEST_WITHIN
from hosts.load_tiers import RAW, tier_for
from hosts.models import Guest, GuestLoadSample, HostLoadSample, Hypervisor
from migrations_app.choices import ACTIVE_STATES, Kind, State
from migrations_app.models import (
    BalancerPolicy,
    BalancerProposal,
    GuestAffinity,
    GuestNeverMove,
    HostLoadFrom,
    MigrationJob,
    ProposalState,
)
from migrations_app.planning.balance import BalancePolicy, GuestLoad, HostLoad
from migrations_app.planning.prediction import (
    DEFAULT_MAX_DOWNTIME_MS,
    LINK_SAMPLES,
    MoveInputs,
    Prediction,
    dirty_rate,
    link_speed,
    predict_live,
)

MIB = 1024 * 1024
# A host's and a guest's CPU figure is the average of their rows over this last stretch (one row is noisy).
CPU_WINDOW = timedelta(seconds=60)
# Past moves read for link speeds and guests' last dirty rates.
HISTORY = timedelta(days=30)
LINK_ROWS = 500


@dataclass
class Picture:
    """The round's input: plain data for planning.balance.decide, plus what the round reports."""

    hosts: list[HostLoad] = field(default_factory=list)
    guests: list[GuestLoad] = field(default_factory=list)
    predictions: dict[int, Prediction] = field(default_factory=dict)  # guest id -> its move, for the hot hosts
    notes: list[str] = field(default_factory=list)


def decide_policy(policy: BalancerPolicy, budget: int, refused: frozenset[tuple[int, int]]) -> BalancePolicy:
    """The pure decision's policy from the stored one: this round's move budget, the per-guest rules."""
    groups: dict[int, set[int]] = defaultdict(set)
    kinds: dict[int, str] = {}
    through = GuestAffinity.guests.through.objects.values_list("guestaffinity_id", "guest_id", "guestaffinity__kind")
    for group_id, guest_id, kind in through:
        groups[group_id].add(guest_id)
        kinds[group_id] = kind
    apart = tuple(frozenset(g) for pk, g in groups.items() if kinds[pk] == GuestAffinity.Kind.APART and len(g) > 1)
    together = tuple(frozenset(g) for pk, g in groups.items() if kinds[pk] == GuestAffinity.Kind.TOGETHER)
    return BalancePolicy(
        cpu_high_pct=policy.cpu_high_pct,
        memory_high_pct=policy.memory_high_pct,
        hold_s=float(policy.hold_s),
        margin_pct=policy.margin_pct,
        max_moves=budget,
        cooldown_s=float(policy.cooldown_s),
        keep_apart=apart,
        keep_together=together,
        refused=refused,
    )


def moves_in_the_last_hour(now: datetime) -> int:
    """Balancer moves started (applied proposals) in the hour before `now`: the hourly budget's use."""
    return BalancerProposal.objects.filter(state=ProposalState.APPLIED, decided_at__gt=now - timedelta(hours=1)).count()


def dismissed_pairs(now: datetime, cooldown_s: int) -> frozenset[tuple[int, int]]:
    """(guest, target) pairs an operator dismissed within the cooldown: not proposed again meanwhile."""
    rows = BalancerProposal.objects.filter(
        state=ProposalState.DISMISSED, decided_at__gt=now - timedelta(seconds=cooldown_s), guest__isnull=False
    ).values_list("guest_id", "target_id")
    return frozenset((g, t) for g, t in rows)


def picture(policy: BalancePolicy, now: datetime, load_from: str = HostLoadFrom.HOST) -> Picture:
    """Hosts (online or in maintenance) with their measured load, and their running guests.

    With `load_from` "guests", each host row's CPU % is replaced by the sum of its guests' measured cores
    in that round, as a share of the host's CPUs (one more query, whatever the number of guests)."""
    out = Picture()
    host_rows = list(
        Hypervisor.objects.filter(state__in=[Hypervisor.State.ONLINE, Hypervisor.State.MAINTENANCE])
        .order_by("name")
        .values_list("pk", "name", "cpus", "memory_total_mib", "state")
    )
    since = now - timedelta(seconds=policy.hold_s) - LATEST_WITHIN
    tier = tier_for(since, now) if policy.hold_s > RAW.resolution_s else RAW
    samples: dict[int, list[tuple]] = defaultdict(list)
    for row in (
        HostLoadSample.objects.filter(resolution_s=tier.resolution_s, at__gte=since, at__lte=now)
        .order_by("hypervisor_id", "at")
        .values_list("hypervisor_id", "at", "cpu_pct", "memory_used_mib", "memory_total_mib")
    ):
        samples[row[0]].append(row[1:])
    if load_from == HostLoadFrom.GUESTS:
        _cpu_from_guests(samples, {pk: cpus for pk, _, cpus, _, _ in host_rows}, tier.resolution_s, since, now)
    incoming = dict(
        MigrationJob.objects.filter(state__in=[s.value for s in ACTIVE_STATES])
        .values("target_id")
        .annotate(m=Sum("memory_mib"))
        .values_list("target_id", "m")
    )
    unmeasured = []
    for pk, name, cpus, memory_total, state in host_rows:
        rows = samples.get(pk, [])
        in_maintenance = state == Hypervisor.State.MAINTENANCE
        cpu = _recent_cpu(rows, now)
        if cpu is None and not in_maintenance:
            unmeasured.append(name)
            continue
        used, total = (rows[-1][2], rows[-1][3]) if rows else (0, memory_total)
        total = max(int(total or memory_total or 0), 1)
        out.hosts.append(
            HostLoad(
                host_id=pk,
                name=name,
                cores=max(cpus, 1),
                cpu_pct=cpu or 0.0,
                memory_total_mib=total,
                memory_used_mib=int(used or 0) + int(incoming.get(pk) or 0),
                hot_for_s=_hot_for(rows, tier.resolution_s, policy, total),
                in_maintenance=in_maintenance,
            )
        )
    if unmeasured:
        out.notes.append(f"no measured load in the last {LATEST_WITHIN.seconds} s, left out: {', '.join(unmeasured)}")
    _add_guests(out, policy, now)
    return out


def _cpu_from_guests(
    samples: dict[int, list[tuple]], cpus: dict[int, int], resolution_s: int, since: datetime, now: datetime
) -> None:
    """Each host row's CPU % becomes 100 × (its guests' cores in that round) / the host's CPUs.

    A guest's rows count toward the host the inventory has it on now: right after a move its past load
    follows it to the target (which the move's fit check kept under the marks) and leaves the source, so
    neither looks hot for the hold because of it. A row without a host figure (no previous counters) has
    none here either: its guests had no previous counters in that round.
    """
    sums = {
        (host_id, at): cores
        for host_id, at, cores in GuestLoadSample.objects.filter(
            resolution_s=resolution_s, at__gte=since, at__lte=now, guest__hypervisor_id__in=list(samples)
        )
        .values("guest__hypervisor_id", "at")
        .annotate(c=Sum("cpu_cores"))
        .values_list("guest__hypervisor_id", "at", "c")
    }
    for host_id, rows in samples.items():
        cores = max(cpus.get(host_id) or 1, 1)
        samples[host_id] = [
            (at, None if cpu is None else 100.0 * float(sums.get((host_id, at)) or 0.0) / cores, *rest)
            for at, cpu, *rest in rows
        ]


def _recent_cpu(rows: list[tuple], now: datetime) -> float | None:
    """The average CPU % of the last minute's rows, if the newest row is recent and has a figure."""
    if not rows or rows[-1][0] < now - LATEST_WITHIN:
        return None
    recent = [r[1] for r in rows if r[0] >= now - CPU_WINDOW and r[1] is not None]
    return sum(recent) / len(recent) if recent else None


def _hot_for(rows: list[tuple], resolution_s: int, policy: BalancePolicy, memory_total: int) -> float:
    """How long the host has stayed above a mark, from its newest row back to the first row that was not
    (a row without a CPU figure and with memory under its mark counts as not above: nothing says it was)."""
    oldest = None
    for at, cpu, used, total in reversed(rows):
        memory_pct = 100.0 * (used or 0) / max(int(total or memory_total), 1)
        if not ((cpu is not None and cpu > policy.cpu_high_pct) or memory_pct > policy.memory_high_pct):
            break
        oldest = at
    if oldest is None:
        return 0.0
    return (rows[-1][0] - oldest).total_seconds() + resolution_s


def _add_guests(out: Picture, policy: BalancePolicy, now: datetime) -> None:
    open_ids = [h.host_id for h in out.hosts]
    warm = {h.host_id for h in out.hosts if _above(h, policy) and not h.in_maintenance}
    guests = list(
        Guest.objects.filter(hypervisor_id__in=open_ids, power=Guest.Power.RUNNING, migrating=False)
        .order_by("name")
        .values_list("pk", "name", "hypervisor_id", "memory_mib", "dirty_rate_mibps", "dirty_rate_at")
    )
    cores = dict(
        GuestLoadSample.objects.filter(resolution_s=RAW.resolution_s, at__gte=now - CPU_WINDOW, at__lte=now)
        .values("guest_id")
        .annotate(c=Avg("cpu_cores"))
        .values_list("guest_id", "c")
    )
    never = set(GuestNeverMove.objects.values_list("guest_id", flat=True))
    cooled = dict(
        BalancerProposal.objects.filter(
            state=ProposalState.APPLIED, decided_at__gt=now - timedelta(seconds=policy.cooldown_s)
        )
        .values("guest_id")
        .annotate(at=Max("decided_at"))
        .values_list("guest_id", "at")
    )
    # Predictions only for guests on a host above a mark: the only ones a round may move.
    candidates = [g for g in guests if g[2] in warm]
    last_dirty, links = _past_moves(now) if candidates else ({}, {})
    not_converging = []
    for pk, name, host_id, memory_mib, measured, measured_at in guests:
        predicted_s = 1.0
        blocked = False
        if host_id in warm:
            age = (now - measured_at).total_seconds() if measured_at else None
            last = last_dirty.get(pk)
            dirty = dirty_rate(measured, age, last / MIB if last else None)
            link = link_speed(links.get(host_id, []))
            p = predict_live(
                MoveInputs(
                    memory_mib=memory_mib,
                    dirty_mibps=dirty.value if dirty else 0.0,
                    link_mibps=link.value,
                    max_downtime_ms=DEFAULT_MAX_DOWNTIME_MS,
                )
            )
            out.predictions[pk] = p
            predicted_s, blocked = p.total_s, not p.converges
            if blocked:
                not_converging.append(name)
        moved_at = cooled.get(pk)
        out.guests.append(
            GuestLoad(
                guest_id=pk,
                name=name,
                host_id=host_id,
                cpu_cores=float(cores.get(pk) or 0.0),
                memory_mib=memory_mib,
                predicted_s=predicted_s,
                never_auto=pk in never or blocked,
                moved_by_balancer_s_ago=(now - moved_at).total_seconds() if moved_at else None,
            )
        )
    if not_converging:
        out.notes.append(f"predicted not to converge, left where they are: {', '.join(not_converging[:10])}")


def _above(h: HostLoad, policy: BalancePolicy) -> bool:
    return h.cpu_pct > policy.cpu_high_pct or 100.0 * h.memory_used_mib / h.memory_total_mib > policy.memory_high_pct


def _past_moves(now: datetime) -> tuple[dict[int, int], dict[int, list[float]]]:
    """Each guest's dirty rate at its last live move, and each source's recent link speeds (MiB/s)."""
    done = MigrationJob.objects.filter(state=State.SUCCEEDED, kind=Kind.LIVE, finished_at__gte=now - HISTORY)
    last_dirty: dict[int, int] = {}
    for guest_id, rate in (
        done.filter(dirty_rate_bps__gt=0, guest__isnull=False)
        .order_by("guest_id", "-finished_at")
        .values_list("guest_id", "dirty_rate_bps")
    ):
        last_dirty.setdefault(guest_id, rate)
    links: dict[int, list[float]] = defaultdict(list)
    for source_id, sent, ms in (
        done.filter(total_ms__gt=0, data_sent__gt=0)
        .order_by("-finished_at")
        .values_list("source_id", "data_sent", "total_ms")[:LINK_ROWS]
    ):
        if len(links[source_id]) < LINK_SAMPLES:
            links[source_id].append(sent / MIB / (ms / 1000))
    return last_dirty, links


def open_proposals(hypervisor_id: int | None = None):
    """PROPOSED proposals, newest first; with `hypervisor_id`, those moving a guest off or onto it."""
    qs = BalancerProposal.objects.filter(state=ProposalState.PROPOSED).select_related("source", "target", "round")
    if hypervisor_id is not None:
        qs = qs.filter(Q(source_id=hypervisor_id) | Q(target_id=hypervisor_id))
    return qs.order_by("-created_at", "-id")


def panel(hypervisor_id: int | None) -> dict[str, Any]:
    """What the proposals panel shows: the mode, the last round, the open proposals, the latest answers."""
    from migrations_app.models import BalancerRound

    decided = BalancerProposal.objects.exclude(state=ProposalState.PROPOSED).select_related(
        "source", "target", "decided_by"
    )
    if hypervisor_id is not None:
        decided = decided.filter(Q(source_id=hypervisor_id) | Q(target_id=hypervisor_id))
    return {
        "policy": BalancerPolicy.get(),
        "last_round": BalancerRound.objects.first(),
        "proposals": list(open_proposals(hypervisor_id)[:20]),
        "decided": list(decided.order_by("-updated_at", "-id")[:5]),
        "hypervisor_id": hypervisor_id,
    }
