"""The balancer's decision: which guests to move so an overloaded host is relieved (pure: plain data in).

Imbalance is the spread of host CPU load: the population standard deviation of the per-host CPU
utilisation (in %) over the hosts that take guests (not in maintenance). 0 means every host is equally
busy. A round proposes moves only for a host that has stayed above a high-water mark (CPU or memory) for
the hold duration. A move must lower the cluster's imbalance, and narrow the gap between its two hosts by
more than the margin (in points of CPU %): the gap is what one move can change whatever the cluster's
size, where the cluster-wide spread of a hundred hosts hardly moves for any single guest. Each accepted
move is applied to the round's picture before the next is chosen, so a round never counts the same
headroom twice.

Never a ping-pong: a guest the balancer moved is left alone for its cooldown (the caller says how long ago
each guest was moved), guests marked "never move automatically" and guests that must stay together are
never chosen, guests that must stay apart never meet, and the margin means a move back would have to
narrow a gap that the move it reverses has just closed.

The arithmetic stays O(1) per candidate move: the sum and the sum of squares of the host loads give the
deviation, and a move changes two terms of each. Among targets with the same number of cores the least busy
one that takes a guest is that guest's best (the spread after the move, the pair's gap and the CPU fit all
only get worse with a busier target), so a round looks at each guest on the hot hosts against the first
fitting target of each host size, once per accepted move, rather than against every host.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HostLoad:
    host_id: int
    name: str
    cores: int
    cpu_pct: float  # measured host CPU utilisation over the recent window, 0..100
    memory_total_mib: int
    memory_used_mib: int
    hot_for_s: float = 0.0  # how long it has stayed above a high-water mark (0 when it is not above)
    in_maintenance: bool = False


@dataclass(frozen=True)
class GuestLoad:
    guest_id: int
    name: str
    host_id: int
    cpu_cores: float  # CPU the guest uses, in cores (1.0 = one core busy)
    memory_mib: int
    predicted_s: float = 1.0  # how long its move is predicted to take (faster guests are preferred)
    never_auto: bool = False
    moved_by_balancer_s_ago: float | None = None


@dataclass(frozen=True)
class BalancePolicy:
    cpu_high_pct: float = 80.0
    memory_high_pct: float = 90.0
    hold_s: float = 300.0
    margin_pct: float = 5.0  # a move must narrow the gap between its two hosts by more than this (CPU % points)
    max_moves: int = 2  # this round's budget (the per-round limit, already capped by the hourly one)
    cooldown_s: float = 1800.0
    keep_apart: tuple[frozenset[int], ...] = ()  # guest ids that must not share a host
    keep_together: tuple[frozenset[int], ...] = ()  # guest ids the balancer never separates
    # (guest id, target host id) pairs not to propose: the pre-flight refused them, or an operator dismissed them
    refused: frozenset[tuple[int, int]] = frozenset()


@dataclass(frozen=True)
class Proposal:
    """One move, with what a person needs to accept it: the imbalance before and after, and why."""

    guest: GuestLoad
    source: HostLoad
    target: HostLoad
    imbalance_before: float
    imbalance_after: float
    why: str

    def headline(self) -> str:
        return (
            f"move {self.guest.name} from {self.source.name} to {self.target.name}: "
            f"imbalance from {self.imbalance_before:.1f} to {self.imbalance_after:.1f}"
        )


@dataclass(frozen=True)
class Round:
    proposals: tuple[Proposal, ...] = ()
    imbalance: float = 0.0
    hot: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())  # why nothing (more) was proposed


def imbalance(loads: Iterable[float]) -> float:
    values = list(loads)
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(max(0.0, sum((v - mean) ** 2 for v in values) / len(values)))


def decide(hosts: Sequence[HostLoad], guests: Sequence[GuestLoad], policy: BalancePolicy = BalancePolicy()) -> Round:
    """One balancer round: the moves to propose now (at most `policy.max_moves`), best first."""
    open_hosts = {h.host_id: h for h in hosts if not h.in_maintenance}
    cpu = {h.host_id: h.cpu_pct for h in open_hosts.values()}
    mem = {h.host_id: h.memory_used_mib for h in open_hosts.values()}
    before = imbalance(cpu.values())
    hot = [h for h in open_hosts.values() if _above_mark(h, policy) and h.hot_for_s >= policy.hold_s]
    if not hot:
        warm = [h.name for h in open_hosts.values() if _above_mark(h, policy)]
        note = f"{', '.join(warm)} above the mark for less than the hold time" if warm else "no host above the marks"
        return Round(imbalance=before, notes=(note,))

    together = set().union(*policy.keep_together) if policy.keep_together else set()
    apart_of: dict[int, list[frozenset[int]]] = {}
    for group in policy.keep_apart:
        for guest_id in group:
            apart_of.setdefault(guest_id, []).append(group)
    placement = {g.guest_id: g.host_id for g in guests}
    movable = [
        g
        for g in guests
        if g.host_id in open_hosts
        and not g.never_auto
        and g.guest_id not in together
        and (g.moved_by_balancer_s_ago is None or g.moved_by_balancer_s_ago >= policy.cooldown_s)
    ]
    n = len(cpu)
    total, squares = sum(cpu.values()), sum(v * v for v in cpu.values())
    proposals: list[Proposal] = []
    moved: set[int] = set()
    hot_ids = {h.host_id for h in hot}
    candidates = [g for g in movable if g.host_id in hot_ids]
    for _ in range(policy.max_moves):
        current = _deviation(total, squares, n)
        best = None  # (key, guest, target)
        groups = _targets_by_cores(open_hosts.values(), cpu)
        for g in candidates:
            if g.guest_id in moved:
                continue
            source = open_hosts[placement[g.guest_id]]
            s_load = cpu[source.host_id]
            s_new = s_load - 100.0 * g.cpu_cores / source.cores
            for group in groups:
                # Within hosts of one size, a less busy target never gives a worse spread, a smaller pair
                # gap narrowing or a worse CPU fit: the first one that takes the guest is the group's best.
                for t in group:
                    if t.host_id == source.host_id or (g.guest_id, t.host_id) in policy.refused:
                        continue
                    if not _fits(g, t, cpu, mem, policy) or _breaks_apart(g, t.host_id, placement, apart_of):
                        continue
                    t_load, t_new = cpu[t.host_id], cpu[t.host_id] + 100.0 * g.cpu_cores / t.cores
                    after = _deviation(
                        total - s_load - t_load + s_new + t_new,
                        squares - s_load**2 - t_load**2 + s_new**2 + t_new**2,
                        n,
                    )
                    if after < current and abs(s_load - t_load) - abs(s_new - t_new) > policy.margin_pct:
                        key = (round(after, 6), g.predicted_s, g.name, t.name)
                        if best is None or key < best[0]:
                            best = (key, g, t)
                    break
        if best is None:
            break
        (after, *_), g, t = best
        source = open_hosts[placement[g.guest_id]]
        why = (
            f"{source.name} has been above {_mark_text(source, policy)} for {_duration(source.hot_for_s)}; "
            f"{g.name} uses {g.cpu_cores:.1f} cores and moves in ≈ {g.predicted_s:.0f} s"
        )
        proposals.append(Proposal(g, source, t, current, after, why))
        s_old, t_old = cpu[source.host_id], cpu[t.host_id]
        cpu[source.host_id] = s_old - 100.0 * g.cpu_cores / source.cores
        cpu[t.host_id] = t_old + 100.0 * g.cpu_cores / t.cores
        total += cpu[source.host_id] + cpu[t.host_id] - s_old - t_old
        squares += cpu[source.host_id] ** 2 + cpu[t.host_id] ** 2 - s_old**2 - t_old**2
        mem[source.host_id] -= g.memory_mib
        mem[t.host_id] += g.memory_mib
        placement[g.guest_id] = t.host_id
        moved.add(g.guest_id)
    notes = () if proposals else (f"no move narrows a gap between two hosts by more than {policy.margin_pct:g} points",)
    return Round(tuple(proposals), before, tuple(h.name for h in hot), notes)


def _targets_by_cores(hosts: Iterable[HostLoad], cpu: dict[int, float]) -> list[list[HostLoad]]:
    """Open hosts grouped by core count, each group least busy first (then by name, the tie-break)."""
    groups: dict[int, list[HostLoad]] = {}
    for h in hosts:
        groups.setdefault(h.cores, []).append(h)
    return [sorted(g, key=lambda h: (cpu[h.host_id], h.name)) for g in groups.values()]


def _deviation(total: float, squares: float, n: int) -> float:
    if n == 0:
        return 0.0
    mean = total / n
    return math.sqrt(max(0.0, squares / n - mean * mean))


def _above_mark(h: HostLoad, policy: BalancePolicy) -> bool:
    return h.cpu_pct > policy.cpu_high_pct or 100.0 * h.memory_used_mib / h.memory_total_mib > policy.memory_high_pct


def _duration(seconds: float) -> str:
    """ "45 s" under two minutes (a short hold reads "0 min" otherwise), else whole minutes."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _mark_text(h: HostLoad, policy: BalancePolicy) -> str:
    if h.cpu_pct > policy.cpu_high_pct:
        return f"{policy.cpu_high_pct:g} % CPU"
    return f"{policy.memory_high_pct:g} % memory"


def _fits(g: GuestLoad, t: HostLoad, cpu: dict, mem: dict, policy: BalancePolicy) -> bool:
    """The target stays under both marks with the guest on it (a move must not make a new hot host)."""
    cpu_after = cpu[t.host_id] + 100.0 * g.cpu_cores / t.cores
    mem_after = 100.0 * (mem[t.host_id] + g.memory_mib) / t.memory_total_mib
    return cpu_after <= policy.cpu_high_pct and mem_after <= policy.memory_high_pct


def _breaks_apart(g: GuestLoad, target_id: int, placement: dict[int, int], apart_of: dict) -> bool:
    """Would the guest share `target_id` with a guest it must stay apart from?"""
    return any(
        placement.get(other) == target_id
        for group in apart_of.get(g.guest_id, ())
        for other in group
        if other != g.guest_id
    )
