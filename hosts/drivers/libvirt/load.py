"""A host's load counters in one round of calls: node CPU times, node memory, and every guest's
counters from one bulk getAllDomainStats call (never one call per guest: a host may run hundreds)."""

from __future__ import annotations

import time
from typing import Any

import libvirt

from hosts.drivers.types import GuestCounters, LoadSample

from . import parse
from .connection import cached, calling

_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)


def _summed(stats: dict[str, Any], prefix: str, field: str) -> int | None:
    """Sum `<prefix>.<i>.<field>` over every device, or None when no device reports it."""
    count = stats.get(f"{prefix}.count")
    if count is None:
        return None
    values = [stats[key] for i in range(count) if (key := f"{prefix}.{i}.{field}") in stats]
    return sum(values) if values else None


def guest_counters(uuid: str, stats: dict[str, Any]) -> GuestCounters:
    """One record of getAllDomainStats as plain values (pure: tested without libvirt)."""
    state = parse.STATES.get(stats.get("state.state", libvirt.VIR_DOMAIN_NOSTATE), "unknown")
    memory = stats.get("balloon.rss", stats.get("balloon.current"))
    return GuestCounters(
        uuid=uuid,
        state=state,
        vcpus=stats.get("vcpu.current"),
        cpu_time_ns=stats.get("cpu.time"),
        memory_kib=memory,
        block_rd_bytes=_summed(stats, "block", "rd.bytes"),
        block_wr_bytes=_summed(stats, "block", "wr.bytes"),
        net_rx_bytes=_summed(stats, "net", "rx.bytes"),
        net_tx_bytes=_summed(stats, "net", "tx.bytes"),
    )


def _node_memory(conn: libvirt.virConnect, missing: list[str]) -> tuple[int, int]:
    """(total, reclaimable-free) KiB. Node memory stats count page cache as free; without them
    (libvirt's test driver) getInfo's total and getFreeMemory are all there is."""
    try:
        mem = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
        free = mem.get("free", 0) + mem.get("buffers", 0) + mem.get("cached", 0)
        return mem["total"], free
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
    missing.append("node memory stats")
    return conn.getInfo()[1] * 1024, conn.getFreeMemory() // 1024


def load_sample(uri: str) -> LoadSample:
    """Raw load counters of a host and its running guests, on the cached connection: four calls
    whatever the number of guests. What the hypervisor cannot report is None and named in `missing`."""
    missing: list[str] = []
    with calling(uri):
        conn = cached(uri)
        at_ns = time.time_ns()
        try:
            cpu: dict[str, int] = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise
            cpu = {}
            missing.append("node CPU stats")
        total_kib, free_kib = _node_memory(conn, missing)
        cpus = conn.getInfo()[2]
        try:
            records = conn.getAllDomainStats(_STATS, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE)
            guests = tuple(guest_counters(dom.UUIDString(), stats) for dom, stats in records)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise
            guests = ()
            missing.append("domain stats")
    if guests and all(g.cpu_time_ns is None for g in guests):
        missing.append("guest CPU time")
    return LoadSample(
        uri=uri,
        at_ns=at_ns,
        cpus=cpus,
        cpu_user_ns=cpu.get("user"),
        cpu_kernel_ns=cpu.get("kernel"),
        cpu_idle_ns=cpu.get("idle"),
        cpu_iowait_ns=cpu.get("iowait"),
        memory_total_kib=total_kib,
        memory_free_kib=free_kib,
        guests=guests,
        missing=tuple(missing),
    )
