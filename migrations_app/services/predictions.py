"""A move's prediction from what the cluster knows: the guest, the link between the two hosts, the options.

The arithmetic is planning.prediction's (pure). This gathers its inputs and says where each came from:
- the link: the operator's bandwidth cap; else the median throughput of the last live moves between the
  same two hosts (data sent / total time); else the stated 1 GbE default;
- the dirty rate: libvirt's page-sampling measurement while fresh (hosts.services.dirty_rates); else what
  the guest's last live move saw; else none, and the prediction says it assumed an idle guest;
- the memory sent first: the least the guest's last live moves sent (QEMU sends pages of zeros as a few
  bytes, so a guest that touched little of its memory sends far less than its size); else its size.
The Migrate form shows it per target, the drain plan per guest, and a job keeps the one it was requested
with, so its page shows predicted beside actual.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from hosts.models import Guest, Hypervisor
from hosts.services import dirty_rates
from migrations_app.choices import Kind, State, TimeoutAction
from migrations_app.models import MigrationJob
from migrations_app.planning.prediction import (
    DEFAULT_MAX_DOWNTIME_MS,
    LINK_SAMPLES,
    MoveInputs,
    Prediction,
    Sourced,
    dirty_rate,
    link_speed,
    memory_sent,
    predict_live,
    predict_offline,
)

MIB = 1024 * 1024


def recent_link_speeds(source: Hypervisor, target: Hypervisor) -> list[float]:
    """MiB/s of the last live moves from `source` to `target`, newest first."""
    pair = Q(source=source, target=target, state=State.SUCCEEDED, kind=Kind.LIVE, total_ms__gt=0, data_sent__gt=0)
    rows = MigrationJob.objects.filter(pair).order_by("-finished_at").values_list("data_sent", "total_ms")
    return [sent / MIB / (ms / 1000) for sent, ms in rows[:LINK_SAMPLES] if sent and ms]


def guest_dirty_rate(guest: Guest) -> Sourced | None:
    last = (
        MigrationJob.objects.filter(guest=guest, kind=Kind.LIVE, state=State.SUCCEEDED, dirty_rate_bps__gt=0)
        .order_by("-finished_at")
        .values_list("dirty_rate_bps", flat=True)
        .first()
    )
    age = (timezone.now() - guest.dirty_rate_at).total_seconds() if guest.dirty_rate_at else None
    return dirty_rate(guest.dirty_rate_mibps, age, last / MIB if last else None, dirty_rates.PERIOD_S)


def guest_memory_sent(guest: Guest) -> Sourced:
    """The memory a live move of `guest` sends first (planning.prediction.memory_sent), learned from the
    data its last live moves sent; moves are found by UUID, so a guest that was redefined keeps its past."""
    rows = (
        MigrationJob.objects.filter(guest_uuid=guest.uuid, kind=Kind.LIVE, state=State.SUCCEEDED, data_sent__gt=0)
        .order_by("-finished_at")
        .values_list("data_sent", flat=True)
    )
    return memory_sent(guest.memory_mib, [sent / MIB for sent in rows[:LINK_SAMPLES] if sent])


def predict_move(guest: Guest, source: Hypervisor, target: Hypervisor, kind: str, options: dict[str, Any]) -> dict:
    """The prediction as the form, the API and the job keep it (plain JSON)."""
    link = link_speed(recent_link_speeds(source, target), int(options.get("bandwidth_mibps") or 0))
    if kind == Kind.OFFLINE:
        return as_dict(predict_offline(guest.memory_mib, link_mibps=link.value), link, None)
    dirty = guest_dirty_rate(guest)
    memory = guest_memory_sent(guest)
    prediction = predict_live(
        MoveInputs(
            memory_mib=memory.value,
            dirty_mibps=dirty.value if dirty else 0.0,
            link_mibps=link.value,
            max_downtime_ms=int(options.get("max_downtime_ms") or 0) or DEFAULT_MAX_DOWNTIME_MS,
            auto_converge=bool(options.get("auto_converge")),
            allow_postcopy=bool(options.get("allow_postcopy")),
            sampled_over_s=dirty.sampled_over_s if dirty else 0.0,
            completion_timeout_s=_abort_after_s(options),
        )
    )
    return as_dict(prediction, link, dirty) | {"memory_mib": round(memory.value), "memory_source": memory.source}


def _abort_after_s(options: dict[str, Any]) -> int:
    """The completion timeout when it aborts the move (switching to post-copy instead ends it anyway)."""
    if (options.get("timeout_action") or TimeoutAction.ABORT) != TimeoutAction.ABORT:
        return 0
    return int(options.get("completion_timeout_s") or 0)


def as_dict(p: Prediction, link: Sourced, dirty: Sourced | None) -> dict:
    return {
        "converges": p.converges,
        "via": p.via,
        "passes": p.passes,
        "total_s": round(p.total_s, 2),
        "downtime_ms": round(p.downtime_ms),
        "summary": p.summary(),
        "uncertain": p.uncertain,
        "link_mibps": round(link.value, 1),
        "link_source": link.source,
        "dirty_mibps": round(dirty.value, 1) if dirty else None,
        "dirty_source": dirty.source if dirty else "not measured yet: assumed idle",
    }
