"""Choosing a move's target when the operator says "Auto" (the Migrate form's default option, target "auto"
in the API): the same readiness rows the form shows, ranked by planning.targets.rank_targets, with the
reason a person reads. The reason is stored with the job (MigrationJob.target_reason) and in its audit row.
Reads only (the readiness asks libvirt for facts); the decision itself is the pure rank_targets.
"""

from __future__ import annotations

from dataclasses import dataclass

from hosts.load_selectors import latest_cpu_pct
from hosts.models import Guest, Hypervisor
from migrations_app.choices import AUTO_TARGET as AUTO
from migrations_app.choices import Kind
from migrations_app.planning.targets import Candidate, rank_targets

__all__ = ["AUTO", "AutoChoice", "auto_choice"]


@dataclass(frozen=True)
class AutoChoice:
    """The best open target and why ("most free memory (7.5 GiB after the move), idle link"), or None
    and why no host can take the guest."""

    target: Hypervisor | None
    reason: str

    @property
    def label(self) -> str:
        """The form's option: "Auto (best: hv-b — most free memory …)" / "Auto (no host can take it: …)"."""
        if self.target is None:
            return f"Auto (no host can take it: {self.reason})"
        return f"Auto (best: {self.target.name} — {self.reason})" if self.reason else f"Auto (best: {self.target.name})"

    @property
    def stored(self) -> str:
        """What the job keeps: how its target was chosen."""
        return f"auto: {self.reason}" if self.reason else "auto"


def auto_choice(guest: Guest, kind: str, options: dict, rows: list[dict]) -> AutoChoice:
    """Rank the readiness `rows` (facts.readiness, with each open row's `prediction` when the form has
    it) and pick the first open one. Memory counts the guest only where it will run on the target."""
    if not rows:
        return AutoChoice(None, "there is no other hypervisor")
    loads = dict(
        Hypervisor.objects.filter(pk__in=[r["target"].pk for r in rows])
        .annotate(cpu=latest_cpu_pct())
        .values_list("pk", "cpu")
    )
    by_id = {r["target"].pk: r for r in rows}
    candidates = [
        Candidate(
            target_id=r["target"].pk,
            name=r["target"].name,
            verdict=r["verdict"],
            # the inventory's figure, as the drain planner books it (the pre-flight already refused a
            # target short of memory for this guest)
            memory_free_mib=r["target"].memory_free_mib,
            committed_mib=r.get("reserved_mib", 0),
            cpu_load=loads[r["target"].pk] / 100 if loads.get(r["target"].pk) is not None else None,
            incoming=r.get("incoming", 0),
            predicted_s=(r.get("prediction") or {}).get("total_s"),
        )
        for r in rows
    ]
    runs_there = kind == Kind.LIVE or bool(options.get("start_on_target"))
    ranked = rank_targets(candidates, guest.memory_mib if runs_there else 0)
    best = ranked[0]
    if not best.blocked:
        return AutoChoice(by_id[best.candidate.target_id]["target"], ", ".join(best.reasons))
    return AutoChoice(None, "; ".join(_why_not(r.name, r.blocked, by_id[r.candidate.target_id]) for r in ranked))


def _why_not(name: str, blocked: str, row: dict) -> str:
    failing = [i["label"] for i in row["items"] if i["status"] == "fail"]
    return f"{name} fails “{'”, “'.join(failing)}”" if failing else f"{name}: {blocked}"
