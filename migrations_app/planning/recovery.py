"""Which failed host's guests restart where: a pure plan (docs/ha.md, section 4).

Guests marked "restart on failure" go in priority order (higher first, then name); each takes the best
healthy target by the maintenance work's ranking (planning.targets: most free memory first when nothing
else is known) among the hosts that share every storage server its disks are on, within the memory left
after the guests planned before it. No database, no libvirt: services.recovery gathers the facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from migrations_app.planning.targets import Candidate, pick_target


@dataclass(frozen=True)
class RecoveryGuest:
    guest_id: int
    name: str
    priority: int
    memory_mib: int
    storage: frozenset[str]  # storage servers its disks are on


@dataclass(frozen=True)
class RecoveryHost:
    host_id: int
    name: str
    memory_free_mib: int
    storage: frozenset[str]  # storage servers it mounts


@dataclass(frozen=True)
class RecoveryStep:
    guest_id: int
    name: str
    target_id: int | None  # None: no healthy host can take it
    target: str = ""
    reason: str = ""


def recovery_plan(guests: Sequence[RecoveryGuest], hosts: Sequence[RecoveryHost]) -> list[RecoveryStep]:
    committed: dict[int, int] = {}
    steps = []
    for g in sorted(guests, key=lambda g: (-g.priority, g.name)):
        sharing = [h for h in hosts if g.storage <= h.storage]
        if not sharing:
            steps.append(RecoveryStep(g.guest_id, g.name, None, reason="no healthy host mounts its storage"))
            continue
        candidates = [
            Candidate(h.host_id, h.name, "ready", h.memory_free_mib, committed_mib=committed.get(h.host_id, 0))
            for h in sharing
        ]
        best = pick_target(candidates, g.memory_mib)
        if best is None:
            steps.append(RecoveryStep(g.guest_id, g.name, None, reason="no healthy host has the memory left"))
            continue
        committed[best.target_id] = committed.get(best.target_id, 0) + g.memory_mib
        steps.append(RecoveryStep(g.guest_id, g.name, best.target_id, best.name))
    return steps
