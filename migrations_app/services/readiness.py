"""The cluster-wide host-pair readiness matrix (every source × target: shared storage, bridges, CPU,
memory headroom, a reachable migration address, TLS), each cell with its evidence.

Asks libvirt for facts only, each host's once (orchestrator.facts.host_facts), plus libvirt's CPU
comparison per pair; starts nothing. The decision per cell is planning.readiness (pure), which runs the
pre-flight's own checks, so a cell says what a move's checklist would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from hosts.models import Guest, Hypervisor
from migrations_app.orchestrator import facts
from migrations_app.planning.readiness import COLUMNS, Pair, Workload, pair_readiness, with_inventory_memory


@dataclass(frozen=True)
class Matrix:
    hosts: list[Hypervisor]
    pairs: dict[tuple[int, int], Pair]

    def rows(self) -> list[tuple[Hypervisor, list[Pair | None]]]:
        """For the page: each source with its cells in the order of the columns (None on the diagonal)."""
        return [(s, [self.pairs.get((s.pk, t.pk)) for t in self.hosts]) for s in self.hosts]

    columns = COLUMNS


def readiness_matrix() -> Matrix:
    """Every ordered pair of hypervisors with its cells. Nothing moves; libvirt is asked for facts."""
    hosts = list(Hypervisor.objects.prefetch_related("storage_servers").order_by("name"))
    gathered = facts.host_facts(hosts)
    snaps = {h.pk: with_inventory_memory(gathered[h.pk][0], h.memory_free_mib) for h in hosts}
    work = _workloads(hosts)
    ordered = [(s, t) for s in hosts for t in hosts if s.pk != t.pk]
    cpus = facts.compare_host_cpus([(s, t, gathered[s.pk][1][0]) for s, t in ordered])
    pairs = {
        (s.pk, t.pk): pair_readiness(snaps[s.pk], snaps[t.pk], work[s.pk], cpu, t.migration_address, _uri_host(t.uri))
        for (s, t), cpu in zip(ordered, cpus, strict=True)
    }
    return Matrix(hosts, pairs)


def _uri_host(uri: str) -> str:
    """The host part of a libvirt URI, where libvirt sends the stream by default ("" if it has none)."""
    try:
        return urlsplit(uri).hostname or ""
    except ValueError:  # e.g. a broken IPv6 literal: the address cell says "the host of its URI"
        return ""


def _workloads(hosts: list[Hypervisor]) -> dict[int, Workload]:
    """What each host's guests need of a target, from the inventory (their recorded disks and NICs)."""
    guests = Guest.objects.filter(hypervisor__in=hosts).prefetch_related("disks", "nics").order_by("name")
    by_host: dict[int, list[Guest]] = {h.pk: [] for h in hosts}
    for g in guests:
        by_host[g.hypervisor_id].append(g)
    out = {}
    for h in hosts:
        snaps = [(g, facts.guest_snap(g, None)) for g in by_host[h.pk]]
        largest = max(by_host[h.pk], key=lambda g: (g.memory_mib, g.name), default=None)
        out[h.pk] = Workload(
            host_name=h.name,
            guests=len(snaps),
            disks=tuple(replace(d, target=f"{g.name}:{d.target}") for g, s in snaps for d in s.disks),
            nics=tuple(n for _, s in snaps for n in s.nics),
            largest_mib=largest.memory_mib if largest else 0,
            largest_name=largest.name if largest else "",
            total_mib=sum(g.memory_mib for g in by_host[h.pk]),
        )
    return out


def matrix_as_dict(matrix: Matrix) -> dict[str, Any]:
    """The matrix as the API shows it."""
    return {
        "hosts": [{"id": h.pk, "name": h.name} for h in matrix.hosts],
        "columns": [{"key": k, "label": label} for k, label in COLUMNS],
        "pairs": [
            {
                "source_id": p.source_id,
                "source": p.source,
                "target_id": p.target_id,
                "target": p.target,
                "verdict": p.verdict,
                "status": p.status,
                "cells": [
                    {
                        "key": c.key,
                        "label": c.label,
                        "status": c.status,
                        "answer": c.answer,
                        "evidence": c.evidence,
                        "hint": c.hint,
                    }
                    for c in p.cells
                ],
            }
            for p in matrix.pairs.values()
        ],
    }
