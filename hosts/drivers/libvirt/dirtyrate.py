"""libvirt's own measurement of how fast a running guest dirties its memory (virDomainStartDirtyRateCalc).

Page sampling only: QEMU samples a few pages and hashes them over the period. The dirty-bitmap mode
killed the guest's QEMU on the lab (TCG; the guest ended shut off), so no other mode is ever asked for,
and nothing here takes a mode from a caller. On the lab, page sampling under-reads: 16 MB/s for a guest
rewriting 24 MiB/s (docs/planning.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import libvirt

from hosts.drivers.types import DirtyRate

from .connection import cached, calling, lookup

# The one mode this project uses (see the module docstring).
PAGE_SAMPLING = libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING
STATUS = {
    libvirt.VIR_DOMAIN_DIRTYRATE_UNSTARTED: "unstarted",
    libvirt.VIR_DOMAIN_DIRTYRATE_MEASURING: "measuring",
    libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED: "measured",
}


def start_dirty_rate_calc(uri: str, uuid: str, seconds: int = 2) -> None:
    """Start a measurement of `seconds`; QEMU measures in the background and the result is read later
    with `dirty_rate`. QEMU refuses a second one while one runs (libvirt says so: OperationInvalid)."""
    with calling(uri):
        lookup(cached(uri), uuid).startDirtyRateCalc(seconds, PAGE_SAMPLING)


def dirty_rate(uri: str, uuid: str) -> DirtyRate:
    """The last measurement's state and, once measured, its rate (the `dirtyrate.*` domain stats)."""
    with calling(uri):
        conn = cached(uri)
        dom = lookup(conn, uuid)
        stats = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)
    return dirty_rate_from(stats[0][1] if stats else {})


def dirty_rate_from(raw: dict[str, Any]) -> DirtyRate:
    status = STATUS.get(int(raw.get("dirtyrate.calc_status", libvirt.VIR_DOMAIN_DIRTYRATE_UNSTARTED)), "unstarted")
    started = raw.get("dirtyrate.calc_start_time")
    period = int(raw.get("dirtyrate.calc_period", 0) or 0)
    measured_at = (
        dt.datetime.fromtimestamp(int(started) + period, tz=dt.UTC) if started and status == "measured" else None
    )
    mbps = raw.get("dirtyrate.megabytes_per_second")
    return DirtyRate(
        status=status,
        mib_per_s=float(mbps) if status == "measured" and mbps is not None else None,
        measured_at=measured_at,
        period_s=period,
    )
