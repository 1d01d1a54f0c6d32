"""Reading libvirt's XML (domain definitions, host capabilities, interfaces) into plain values.

No calls to a daemon here: every function takes text or numbers libvirt already returned.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt

from hosts.drivers.types import DiskInfo, DomainInfo, GuestCpu, NicInfo

STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "unknown",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}
LIFECYCLE = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}


def lifecycle_name(event: int) -> str:
    return LIFECYCLE.get(event, str(event))


def text(root: ET.Element, path: str, default: str = "") -> str:
    node = root.find(path)
    return node.text.strip() if node is not None and node.text else default


def dotted(version: int) -> str:
    """libvirt's packed version number (major * 1 000 000 + minor * 1000 + micro) as text."""
    return f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}"


# ------------------------------------------------------------------------------ capabilities


def capability_facts(caps_xml: str) -> dict[str, str]:
    """The host's UUID and CPU model from its capabilities (the architecture when no model is named)."""
    caps = ET.fromstring(caps_xml)
    return dict(
        host_uuid=text(caps, "host/uuid"),
        cpu_model=text(caps, "host/cpu/model") or text(caps, "host/cpu/arch"),
    )


def host_cpu_xml(caps_xml: str) -> str:
    """The host's <cpu> element from its capabilities, or "" if there is none."""
    cpu = ET.fromstring(caps_xml).find("host/cpu")
    return ET.tostring(cpu, encoding="unicode") if cpu is not None else ""


def is_bridge(interface_xml: str) -> bool:
    return ET.fromstring(interface_xml).get("type") == "bridge"


# ----------------------------------------------------------------------------------- domains


def guest_cpu(domain_xml: str) -> GuestCpu:
    root = ET.fromstring(domain_xml)
    cpu = root.find("cpu")
    os_type = root.find("os/type")
    mode = "" if cpu is None else cpu.get("mode", "custom")
    if mode == "custom" and cpu is not None and cpu.find("model") is None:
        mode = ""  # a <cpu> with only topology: QEMU's default model
    return GuestCpu(
        mode=mode,
        xml=ET.tostring(cpu, encoding="unicode") if cpu is not None else "",
        arch=os_type.get("arch", "") if os_type is not None else "",
        machine=os_type.get("machine", "") if os_type is not None else "",
        virt_type=root.get("type", ""),
    )


def disks(devices: ET.Element | None) -> tuple[DiskInfo, ...]:
    found = []
    for disk in devices.findall("disk") if devices is not None else ():
        source = disk.find("source")
        driver = disk.find("driver")
        target = disk.find("target")
        src = source.attrib if source is not None else {}
        host = source.find("host") if source is not None else None
        found.append(
            DiskInfo(
                target=target.get("dev", "") if target is not None else "",
                device=disk.get("device", "disk"),
                source_type=disk.get("type", "file"),
                source=src.get("file") or src.get("dev") or src.get("name") or src.get("volume") or "",
                source_protocol=src.get("protocol", ""),
                source_host=host.get("name", "") if host is not None else "",
                format=driver.get("type", "") if driver is not None else "",
                cache=driver.get("cache", "") if driver is not None else "",
            )
        )
    return tuple(found)


def nics(devices: ET.Element | None) -> tuple[NicInfo, ...]:
    found = []
    for nic in devices.findall("interface") if devices is not None else ():
        mac, source, model = nic.find("mac"), nic.find("source"), nic.find("model")
        src = source.attrib if source is not None else {}
        found.append(
            NicInfo(
                mac=mac.get("address", "") if mac is not None else "",
                kind=nic.get("type", ""),
                bridge=src.get("bridge", ""),
                network=src.get("network", ""),
                model=model.get("type", "") if model is not None else "",
            )
        )
    return tuple(found)


def leases(devices: ET.Element | None) -> tuple[str, ...]:
    """ "<lockspace>/<key>" of each explicit <lease> (the lock manager grants it before QEMU runs)."""
    found = []
    for lease in devices.findall("lease") if devices is not None else ():
        found.append(f"{text(lease, 'lockspace')}/{text(lease, 'key')}")
    return tuple(found)


def memory_mib(root: ET.Element, path: str) -> int:
    """A memory element (KiB unless its `unit` says otherwise) in whole MiB; 0 if absent."""
    node = root.find(path)
    if node is None or not node.text:
        return 0
    scale = {"KiB": 1024, "k": 1024, "MiB": 1 << 20, "M": 1 << 20, "GiB": 1 << 30, "G": 1 << 30, "b": 1}
    return int(node.text) * scale.get(node.get("unit", "KiB"), 1024) // (1 << 20)


def domain_info(domain_xml: str, *, uuid: str, name: str, state: int, reason: int, persistent: bool) -> DomainInfo:
    """A DomainInfo from the domain's XML and the state libvirt reported beside it."""
    root = ET.fromstring(domain_xml)
    devices = root.find("devices")
    return DomainInfo(
        uuid=uuid,
        name=name,
        state=STATES.get(state, "unknown"),
        persistent=persistent,
        vcpus=int(text(root, "vcpu", "1")),
        memory_mib=memory_mib(root, "currentMemory") or memory_mib(root, "memory"),
        disks=disks(devices),
        nics=nics(devices),
        leases=leases(devices),
        # An incoming or switching-over guest is paused "for migration"; no job query needed,
        # so listing never waits behind a running migration's job lock.
        migrating=state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_MIGRATION,
    )
