"""Ranking the targets of a move, with the reasons, and choosing one when the operator says "auto"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

RANK = {"ready": 0, "warning": 1}
# How much each fact weighs in a target's score (lower score is better). Memory first: a host short of
# memory is the one failure an operator cannot undo quickly; then how busy the host is, then its queue.
WEIGHTS = {"memory": 0.4, "cpu": 0.3, "queue": 0.15, "time": 0.15}
# A queue this long counts as full in the score (more moves waiting make no further difference).
QUEUE_FULL = 4


@dataclass(frozen=True)
class Candidate:
    target_id: int
    name: str
    verdict: str  # the pre-flight's: ready / warning / blocked
    memory_free_mib: int
    committed_mib: int = 0  # memory of moves already in flight or queued toward this host
    cpu_load: float | None = None  # 0..1, measured; None when unknown
    incoming: int = 0  # moves queued or running toward this host
    predicted_s: float | None = None  # the predicted move time to this host


@dataclass(frozen=True)
class Ranked:
    """A candidate with its place: `score` (lower is better), memory left after the move, and the reasons
    a person reads ("most free memory (11.2 GiB after the move)")."""

    candidate: Candidate
    score: float
    free_after_mib: int
    reasons: tuple[str, ...] = field(default=())
    blocked: str = ""  # why it cannot take the guest at all ("" when it can)

    @property
    def name(self) -> str:
        return self.candidate.name

    def label(self) -> str:
        return f"{self.name} — {', '.join(self.reasons)}" if self.reasons else self.name


def rank_targets(candidates: Sequence[Candidate], guest_mib: int = 0) -> list[Ranked]:
    """Every candidate, best first; blocked ones (by pre-flight or by memory) last, with why.
    Deterministic: equal scores are ordered by name, so the same cluster always gives the same answer."""
    open_, shut = [], []
    for c in candidates:
        free_after = c.memory_free_mib - c.committed_mib - guest_mib
        if c.verdict not in RANK:
            shut.append(Ranked(c, float("inf"), free_after, blocked="the pre-flight blocks it"))
        elif free_after < 0:
            shut.append(Ranked(c, float("inf"), free_after, blocked=f"{-free_after} MiB short of memory"))
        else:
            open_.append((c, free_after))
    if not open_:
        return sorted(shut, key=lambda r: r.name)
    most_free = max(f for _, f in open_) or 1
    slowest = max((c.predicted_s or 0.0) for c, _ in open_) or 1.0
    scored = []
    for c, free_after in open_:
        terms = {
            "memory": 1.0 - free_after / most_free,
            "cpu": c.cpu_load if c.cpu_load is not None else 0.5,
            "queue": min(c.incoming, QUEUE_FULL) / QUEUE_FULL,
            "time": (c.predicted_s or 0.0) / slowest,
        }
        score = sum(WEIGHTS[k] * v for k, v in terms.items())
        scored.append((RANK[c.verdict], round(score, 6), c.name, c, free_after))
    scored.sort(key=lambda t: t[:3])
    ranked = [Ranked(c, score, free_after, _reasons(c, free_after, open_)) for _, score, _, c, free_after in scored]
    return ranked + sorted(shut, key=lambda r: r.name)


def pick_target(candidates: Sequence[Candidate], guest_mib: int = 0) -> Candidate | None:
    """The best open target: a clean pre-flight before one with warnings, then the best score (most free
    memory when nothing else is known), then the name. None when every target is blocked."""
    ranked = rank_targets(candidates, guest_mib)
    return ranked[0].candidate if ranked and not ranked[0].blocked else None


def _reasons(c: Candidate, free_after: int, open_: list[tuple[Candidate, int]]) -> tuple[str, ...]:
    """What this candidate is best at among the open ones (ties count), in the order people weigh them."""
    reasons = []
    if free_after >= max(f for _, f in open_):
        reasons.append(f"most free memory ({free_after / 1024:.1f} GiB after the move)")
    loads = [o.cpu_load for o, _ in open_ if o.cpu_load is not None]
    if c.cpu_load is not None and c.cpu_load <= min(loads):
        reasons.append(f"least busy CPU ({c.cpu_load * 100:.0f} %)")
    if c.incoming == 0:
        reasons.append("idle link")
    times = [o.predicted_s for o, _ in open_ if o.predicted_s is not None]
    if c.predicted_s is not None and len(times) > 1 and c.predicted_s <= min(times):
        reasons.append(f"fastest move (≈ {c.predicted_s:.1f} s)")
    if c.verdict == "warning":
        reasons.append("pre-flight warnings")
    return tuple(reasons)
