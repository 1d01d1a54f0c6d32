"""libvirt's own measurement of how fast a running guest dirties its memory (virDomainStartDirtyRateCalc).

Page sampling only: QEMU samples a few pages and hashes them over the period. The dirty-bitmap mode
killed the guest's QEMU on the lab (TCG; the guest ended shut off), so no other mode is ever asked for,
and nothing here takes a mode from a caller. QEMU stamps a measurement with its start in seconds of the
host's monotonic clock, not a wall time (on the lab: the host's uptime), so that figure only tells one
measurement from the next and the caller dates a measurement itself (hosts.services.dirty_rates). What page
sampling reads against what a move then sees: docs/planning.md.
"""

from __future__ import annotations

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
    mbps = raw.get("dirtyrate.megabytes_per_second")
    return DirtyRate(
        status=status,
        mib_per_s=float(mbps) if status == "measured" and mbps is not None else None,
        started_s=int(started) if started is not None else None,
        period_s=int(raw.get("dirtyrate.calc_period", 0) or 0),
    )
