"""Read-side queries for measured load: a host's or a guest's series from the finest tier that covers
the range asked for, and each host's latest measured CPU. One query each, whatever the history size."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from hosts.load_tiers import RAW, tier_for
from hosts.models import GuestLoadSample, HostLoadSample

# The latest raw row counts as "now" for this long (a missed round or two), then the host shows no figure.
LATEST_WITHIN = timedelta(seconds=3 * RAW.resolution_s)


@dataclass(frozen=True)
class LoadSeries:
    """Columns of equal length, oldest first (the shape a chart library takes). `at` in Unix seconds."""

    resolution_s: int
    at: list[float]
    columns: dict[str, list[float | None]]

    def as_json(self) -> dict:
        return {"resolution_s": self.resolution_s, "at": self.at, **self.columns}


def _series(queryset, since: datetime, now: datetime | None, fields: tuple[str, ...]) -> LoadSeries:
    now = now or timezone.now()
    tier = tier_for(since, now)
    rows = list(
        queryset.filter(resolution_s=tier.resolution_s, at__gte=since, at__lte=now)
        .order_by("at")
        .values_list("at", *fields)
    )
    return LoadSeries(
        resolution_s=tier.resolution_s,
        at=[row[0].timestamp() for row in rows],
        columns={name: [row[i + 1] for row in rows] for i, name in enumerate(fields)},
    )


def host_load_series(hypervisor_id: int, since: datetime, now: datetime | None = None) -> LoadSeries:
    return _series(
        HostLoadSample.objects.filter(hypervisor_id=hypervisor_id),
        since,
        now,
        ("cpu_pct", "memory_used_mib", "memory_total_mib"),
    )


def guest_load_series(guest_id: int, since: datetime, now: datetime | None = None) -> LoadSeries:
    return _series(
        GuestLoadSample.objects.filter(guest_id=guest_id), since, now, ("cpu_pct_of_vcpus", "cpu_cores", "memory_mib")
    )


def latest_cpu_pct(now: datetime | None = None) -> Subquery:
    """For annotating Hypervisor querysets: the host's CPU % from its latest recent raw row (else None)."""
    now = now or timezone.now()
    latest = HostLoadSample.objects.filter(
        hypervisor_id=OuterRef("pk"), resolution_s=RAW.resolution_s, at__gte=now - LATEST_WITHIN
    ).order_by("-at")
    return Subquery(latest.values("cpu_pct")[:1])


@dataclass(frozen=True)
class LoadLatest:
    """The panel's caption: the newest point as text, and as the JSON the chart appends
    (hosts/components/load_panel.html#latest; rendered by the page and by every live push)."""

    dom_id: str  # <model>-<pk>-load
    cpu_label: str
    at: datetime | None
    cpu: float | None
    memory_mib: float | None
    point: dict | None  # {"at": unix s, <column>: value, ...}: one more row of the page's series

    @property
    def point_json(self) -> str:
        return json.dumps(self.point) if self.point else ""


@dataclass(frozen=True)
class LoadPanel:
    """What a page's load panel shows: the series for the chart and the latest figures as text."""

    dom_id: str  # <model>-<pk>-load
    series: dict
    cpu_key: str  # the series column the chart draws as CPU %
    memory_key: str
    cpu_label: str  # what the CPU figure is a percentage of
    latest: LoadLatest
    live_url: str  # the websocket that pushes each new round (hosts.consumers)

    @property
    def data_id(self) -> str:
        return f"{self.dom_id}-data"


HOST_CPU_LABEL = "of the host's CPUs"
GUEST_CPU_LABEL = "of its vCPUs"


def _panel(dom_id: str, series: LoadSeries, cpu_key: str, memory_key: str, cpu_label: str, live_url: str) -> LoadPanel:
    cpu = next((v for v in reversed(series.columns[cpu_key]) if v is not None), None)
    memory = series.columns[memory_key][-1] if series.at else None
    at = datetime.fromtimestamp(series.at[-1], tz=UTC) if series.at else None
    point = {"at": series.at[-1], **{k: v[-1] for k, v in series.columns.items()}} if series.at else None
    latest = LoadLatest(dom_id, cpu_label, at, cpu, memory, point)
    return LoadPanel(dom_id, series.as_json(), cpu_key, memory_key, cpu_label, latest, live_url)


def host_load_panel(hypervisor_id: int, now: datetime | None = None) -> LoadPanel:
    now = now or timezone.now()
    series = host_load_series(hypervisor_id, now - timedelta(hours=1), now)
    return _panel(f"hypervisor-{hypervisor_id}-load", series, "cpu_pct", "memory_used_mib", HOST_CPU_LABEL,
                  f"/ws/hypervisors/{hypervisor_id}/load/")  # fmt: skip


def guest_load_panel(guest_id: int, now: datetime | None = None) -> LoadPanel:
    now = now or timezone.now()
    series = guest_load_series(guest_id, now - timedelta(hours=1), now)
    return _panel(f"guest-{guest_id}-load", series, "cpu_pct_of_vcpus", "memory_mib", GUEST_CPU_LABEL,
                  f"/ws/guests/{guest_id}/load/")  # fmt: skip


def host_latest(hypervisor_id: int, point: dict) -> LoadLatest:
    """The caption of a host's panel from one pushed round's point (hosts.events.load_recorded)."""
    at = datetime.fromtimestamp(point["at"], tz=UTC)
    return LoadLatest(f"hypervisor-{hypervisor_id}-load", HOST_CPU_LABEL, at, point.get("cpu_pct"),
                      point.get("memory_used_mib"), point)  # fmt: skip


def guest_latest(guest_id: int, point: dict) -> LoadLatest:
    at = datetime.fromtimestamp(point["at"], tz=UTC)
    return LoadLatest(f"guest-{guest_id}-load", GUEST_CPU_LABEL, at, point.get("cpu_pct_of_vcpus"),
                      point.get("memory_mib"), point)  # fmt: skip
