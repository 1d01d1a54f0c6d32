"""Facts about a host and the CPU questions asked before a move (can that host run this guest's CPU?)."""

from __future__ import annotations

import time
from typing import Any

import libvirt

from hosts.drivers.types import CpuVerdict, DriverError, GuestCpu, HostInfo

from . import parse
from .connection import _bridges_seen, _fixed, _lock, _verdicts, cached, calling, lookup, open_connection
from .errors import is_cpu_incompatible

_CPU_RESULTS = {libvirt.VIR_CPU_COMPARE_IDENTICAL: "identical", libvirt.VIR_CPU_COMPARE_SUPERSET: "superset"}


def _bridges(conn: libvirt.virConnect) -> tuple[str, ...]:
    """Bridges the host has, from libvirt's interface driver (inactive ones included)."""
    try:
        ifaces = conn.listAllInterfaces(0)
    except libvirt.libvirtError:
        return ()
    names = []
    for iface in ifaces:
        try:
            if parse.is_bridge(iface.XMLDesc(0)):
                names.append(iface.name())
        except libvirt.libvirtError:
            continue
    return tuple(sorted(names))


def _fixed_facts(conn: libvirt.virConnect) -> dict[str, Any]:
    """What a daemon answers the same for as long as a connection to it lasts: a restart or an
    upgrade closes the connection, and the next one asks again."""
    caps = parse.capability_facts(conn.getCapabilities())
    _model, memory_mib, cpus, *_ = conn.getInfo()
    return dict(
        hostname=conn.getHostname(),
        host_uuid=caps["host_uuid"],
        cpu_model=caps["cpu_model"],
        cpus=cpus,
        memory_total_mib=memory_mib,
        libvirt_version=parse.dotted(conn.getLibVersion()),
        hypervisor_type=conn.getType(),
        hypervisor_version=parse.dotted(conn.getVersion()),
    )


def _host_info(
    uri: str, conn: libvirt.virConnect, fixed: dict[str, Any] | None = None, bridges: tuple[str, ...] | None = None
) -> HostInfo:
    fixed = fixed or _fixed_facts(conn)
    try:
        free_mib = conn.getFreeMemory() // (1024 * 1024)
    except libvirt.libvirtError:
        free_mib = fixed["memory_total_mib"]
    return HostInfo(uri=uri, memory_free_mib=free_mib, bridges=_bridges(conn) if bridges is None else bridges, **fixed)


def host_info(uri: str, bridges_max_age_s: float = 0.0) -> HostInfo:
    """Facts about a host, on the cached connection. Only free memory and bridges are asked each time:
    the pre-flight calls this for both hosts on the request path and again when the job starts, and
    the rest (capabilities, versions, hostname) is five more calls whose answers cannot have changed.

    `bridges_max_age_s` lets a caller take the bridges this process asked on the same connection at
    most that long ago (a call per interface; the inventory refresh asks them every few seconds)."""
    with calling(uri):
        conn = cached(uri)
        with _lock:
            known = _fixed.get(uri)
            seen = _bridges_seen.get(uri)
        if known is None or known[0] is not conn:
            known = (conn, _fixed_facts(conn))
            with _lock:
                _fixed[uri] = known
        fresh = seen is not None and seen[0] is conn and time.monotonic() - seen[1] <= bridges_max_age_s
        bridges = seen[2] if fresh and seen is not None else None
        info = _host_info(uri, conn, known[1], bridges)
        if bridges is None:
            with _lock:
                _bridges_seen[uri] = (conn, time.monotonic(), info.bridges)
        return info


def probe(uri: str, timeout: float | None = None) -> HostInfo:
    """Test a URI on a fresh connection (nothing cached): HostInfo, or HostUnreachable with libvirt's text."""
    conn = open_connection(uri, timeout)
    try:
        with calling(uri):
            return _host_info(uri, conn)
    finally:
        conn.close()


def host_cpu_xml(uri: str) -> str:
    """The host's <cpu> element from its capabilities, for compare_cpu on another host."""
    with calling(uri):
        caps = cached(uri).getCapabilities()
    return parse.host_cpu_xml(caps)


def compare_cpu(uri: str, cpu_xml: str) -> str:
    """libvirt's verdict on running host CPU `cpu_xml` here: identical, superset or incompatible."""
    with calling(uri):
        result = cached(uri).compareCPU(cpu_xml, 0)
    return _CPU_RESULTS.get(result, "incompatible")


def guest_cpu(uri: str, uuid: str) -> GuestCpu:
    """The guest's CPU definition; for a running guest, the model as started (UPDATE_CPU expands
    host-model into the exact model and features the guest sees, which is what must exist on a target)."""
    with calling(uri):
        dom = lookup(cached(uri), uuid)
        flags = libvirt.VIR_DOMAIN_XML_UPDATE_CPU if dom.isActive() else 0
        xml = dom.XMLDesc(flags)
    return parse.guest_cpu(xml)


def compare_guest_cpu(uri: str, cpu: GuestCpu, remembered: bool = False) -> CpuVerdict:
    """Can this host's hypervisor give the guest its CPU? libvirt's hypervisor-aware comparison
    (the same test libvirt makes when the guest starts there), with the missing features named.

    `remembered`: take the verdict libvirt gave on the same connection for the same CPU definition,
    if any: what a host's hypervisor provides does not change while a connection to it lasts."""
    key = (cpu.xml, cpu.arch, cpu.machine, cpu.virt_type)
    if remembered:
        conn = cached(uri)
        with _lock:
            known = _verdicts.get(uri)
        if known is not None and known[0] is conn and key in known[1]:
            return known[1][key]
    verdict = _compare_guest_cpu(uri, cpu)
    conn = cached(uri)
    with _lock:
        known = _verdicts.get(uri)
        if known is None or known[0] is not conn:
            known = _verdicts[uri] = (conn, {})
        known[1][key] = verdict
    return verdict


def _compare_guest_cpu(uri: str, cpu: GuestCpu) -> CpuVerdict:
    try:
        with calling(uri):
            result = cached(uri).compareHypervisorCPU(
                None,
                cpu.arch or None,
                cpu.machine or None,
                cpu.virt_type or None,
                cpu.xml,
                libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE,
            )
    except DriverError as err:
        if is_cpu_incompatible(err):
            return CpuVerdict("incompatible", err.message)
        raise
    return CpuVerdict(_CPU_RESULTS.get(result, "incompatible"))
