"""Choosing a target when the operator says "auto"."""

from __future__ import annotations

from dataclasses import dataclass

RANK = {"ready": 0, "warning": 1}


@dataclass(frozen=True)
class Candidate:
    target_id: int
    name: str
    verdict: str  # the pre-flight's: ready / warning / blocked
    memory_free_mib: int


def pick_target(candidates: list[Candidate]) -> Candidate | None:
    """The best open target: a clean pre-flight before one with warnings, then the most free memory,
    then the name (so the same cluster always gives the same answer). None when every target is blocked."""
    open_ = [c for c in candidates if c.verdict in RANK]
    return min(open_, key=lambda c: (RANK[c.verdict], -c.memory_free_mib, c.name), default=None)
