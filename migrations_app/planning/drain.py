"""The drain plan: how to empty a host, decided before anything moves (pure: plain data in, a plan out).

Placement is first-fit decreasing: the largest guests are placed first, each on the best-ranked target
(planning.targets) with the memory already promised to earlier guests subtracted, so two guests never
count the same free memory. A guest no target can take is listed as blocked with every reason, never
squeezed in. The moves then run in the policy's order (shortest predicted first by default) within the
per-host limits: at most `per_host_limit` moves leave the source at once, and at most that many arrive at
any one target. Predicted times assume each move keeps its own link speed while others run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from migrations_app.planning.prediction import (
    DEFAULT_LINK_MIBPS,
    MoveInputs,
    Prediction,
    predict_live,
    predict_offline,
)
from migrations_app.planning.targets import Candidate, rank_targets

POWER_MODES = {"running": "live", "shutoff": "offline"}


@dataclass(frozen=True)
class GuestFacts:
    """One guest on the host to drain, as the inventory and the last dirty-rate measurement know it."""

    guest_id: int
    name: str
    power: str  # running / paused / shutoff
    memory_mib: int  # configured: what a target must have free
    memory_used_mib: float  # in use: what a live move sends first
    dirty_mibps: float = 0.0
    dirty_sampled_over_s: float = 0.0  # the dirty rate is libvirt's page sampling over this period (MoveInputs)
    blockers: tuple[str, ...] = ()  # what stops any move (with its fix), e.g. a disk on local storage
    live_blockers: tuple[str, ...] = ()  # what stops a live move only, e.g. a disk with cache=writeback


@dataclass(frozen=True)
class TargetFacts:
    """A host that could take guests."""

    host_id: int
    name: str
    memory_free_mib: int
    in_maintenance: bool = False
    cpu_load: float | None = None
    link_mibps: float | None = None  # learned from past moves from the source, or the operator's cap
    committed_mib: int = 0  # memory of moves already in flight toward it
    incoming: int = 0


@dataclass(frozen=True)
class DrainPolicy:
    per_host_limit: int = 2
    order: str = "shortest"  # shortest predicted first, or "largest" memory first
    paused: str = "live"  # what to do with paused guests: move them "live", "offline", or "skip" them
    max_downtime_ms: int = 300
    auto_converge: bool = False
    allow_postcopy: bool = False


@dataclass(frozen=True)
class PlannedMove:
    guest: GuestFacts
    target: TargetFacts
    mode: str  # live / offline
    prediction: Prediction
    reasons: tuple[str, ...]  # why this target
    position: int = 0  # 1-based order of starting
    start_s: float = 0.0
    end_s: float = 0.0


@dataclass(frozen=True)
class BlockedGuest:
    guest: GuestFacts
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DrainPlan:
    """The moves in order with their predicted start and end, the guests that cannot move and why, and
    the verdict a person reads first ("yes after 3 minutes" / "no, because ...")."""

    source: str
    moves: tuple[PlannedMove, ...] = ()
    blocked: tuple[BlockedGuest, ...] = ()
    skipped: tuple[BlockedGuest, ...] = field(default=())  # left by the policy (paused: skip)

    @property
    def total_s(self) -> float:
        return max((m.end_s for m in self.moves), default=0.0)

    @property
    def max_parallel(self) -> int:
        events = sorted([(m.start_s, 1) for m in self.moves] + [(m.end_s, -1) for m in self.moves])
        running = peak = 0
        for _, step in events:  # an end at the same instant as a start sorts first (-1 < 1)
            running += step
            peak = max(peak, running)
        return peak

    @property
    def can_empty(self) -> bool:
        return not self.blocked and not self.skipped

    def verdict(self) -> str:
        if self.blocked:
            first = self.blocked[0]
            more = f" (and {len(self.blocked) - 1} more guest(s))" if len(self.blocked) > 1 else ""
            return f"no, because {first.guest.name}: {first.reasons[0]}{more}"
        if self.skipped:
            return f"no, because {len(self.skipped)} paused guest(s) are left by the plan's policy"
        if not self.moves:
            return "yes: no guest is on it"
        minutes = max(1, math.ceil(self.total_s / 60))
        return f"yes, after about {minutes} minute{'s' if minutes != 1 else ''} of moves"


def plan_drain(
    source: str,
    guests: Sequence[GuestFacts],
    targets: Sequence[TargetFacts],
    policy: DrainPolicy = DrainPolicy(),
    refusals: Mapping[tuple[int, int], str] | None = None,
) -> DrainPlan:
    """Plan the emptying of `source`. `refusals[(guest_id, host_id)]` is what the pre-flight facts say
    against one pair (a missing bridge, an incompatible CPU); hosts in maintenance take nothing."""
    refusals = refusals or {}
    open_targets = [t for t in targets if not t.in_maintenance]
    promised = {t.host_id: t.committed_mib for t in open_targets}
    incoming = {t.host_id: t.incoming for t in open_targets}
    placed: list[PlannedMove] = []
    blocked: list[BlockedGuest] = []
    skipped: list[BlockedGuest] = []
    for guest in sorted(guests, key=lambda g: (-g.memory_mib, g.name)):
        mode = _mode(guest, policy)
        if mode == "skip":
            skipped.append(BlockedGuest(guest, ("paused: the policy leaves paused guests where they are",)))
            continue
        reasons = list(guest.blockers) + (list(guest.live_blockers) if mode == "live" else [])
        if reasons:
            blocked.append(BlockedGuest(guest, tuple(reasons)))
            continue
        move = _place(guest, mode, open_targets, promised, incoming, policy, refusals)
        if isinstance(move, BlockedGuest):
            blocked.append(move)
            continue
        promised[move.target.host_id] += guest.memory_mib
        incoming[move.target.host_id] += 1
        placed.append(move)
    ordered = _order(placed, policy)
    return DrainPlan(source, tuple(_schedule(ordered, policy.per_host_limit)), tuple(blocked), tuple(skipped))


def _mode(guest: GuestFacts, policy: DrainPolicy) -> str:
    if guest.power == "paused":
        return policy.paused
    return POWER_MODES.get(guest.power, "offline")


def _place(guest, mode, targets, promised, incoming, policy, refusals) -> PlannedMove | BlockedGuest:
    why_not: list[str] = []
    predictions: dict[int, Prediction] = {}
    candidates = []
    for t in targets:
        refused = refusals.get((guest.guest_id, t.host_id))
        if refused:
            why_not.append(f"{t.name}: {refused}")
            continue
        link = t.link_mibps or DEFAULT_LINK_MIBPS
        if mode == "live":
            prediction = predict_live(
                MoveInputs(
                    guest.memory_used_mib,
                    guest.dirty_mibps,
                    link,
                    policy.max_downtime_ms,
                    policy.auto_converge,
                    policy.allow_postcopy,
                    sampled_over_s=guest.dirty_sampled_over_s,
                )
            )
        else:
            prediction = predict_offline(guest.memory_mib, link_mibps=link)
        if not prediction.converges:
            why_not.append(f"{t.name}: will not converge ({prediction.reason}); allow auto-converge or raise the cap")
            continue
        predictions[t.host_id] = prediction
        candidates.append(
            Candidate(
                target_id=t.host_id,
                name=t.name,
                verdict="ready",
                memory_free_mib=t.memory_free_mib,
                committed_mib=promised[t.host_id],
                cpu_load=t.cpu_load,
                incoming=incoming[t.host_id],
                predicted_s=prediction.total_s,
            )
        )
    ranked = rank_targets(candidates, guest.memory_mib)
    if ranked and not ranked[0].blocked:
        best = ranked[0]
        target = next(t for t in targets if t.host_id == best.candidate.target_id)
        return PlannedMove(guest, target, mode, predictions[target.host_id], best.reasons)
    why_not += [f"{r.name}: {r.blocked}" for r in ranked]
    if not targets:
        why_not = ["no other host is open: every one is in maintenance"]
    elif ranked and all("short of memory" in r.blocked for r in ranked):
        why_not.insert(0, f"no target has {guest.memory_mib} MiB free once the guests before it are placed")
    return BlockedGuest(guest, tuple(why_not))


def _order(moves: list[PlannedMove], policy: DrainPolicy) -> list[PlannedMove]:
    if policy.order == "largest":
        return sorted(moves, key=lambda m: (-m.guest.memory_mib, m.guest.name))
    return sorted(moves, key=lambda m: (m.prediction.total_s, m.guest.name))


def _schedule(moves: list[PlannedMove], limit: int) -> list[PlannedMove]:
    """Start each move, in order, as soon as a source slot and a slot at its target are free (and not
    before the move ahead of it started: the plan's order is the order of starting)."""
    limit = max(1, limit)
    source_free = [0.0] * limit  # when each outgoing slot frees up
    target_free: dict[int, list[float]] = {}
    previous_start = 0.0
    out = []
    for position, m in enumerate(moves, start=1):
        slots = target_free.setdefault(m.target.host_id, [0.0] * limit)
        s_i = min(range(limit), key=source_free.__getitem__)
        t_i = min(range(limit), key=slots.__getitem__)
        start = max(previous_start, source_free[s_i], slots[t_i])
        end = start + m.prediction.total_s
        source_free[s_i] = slots[t_i] = end
        previous_start = start
        out.append(PlannedMove(m.guest, m.target, m.mode, m.prediction, m.reasons, position, start, end))
    return out
