"""Write libvirt test-driver node files: each `test:///path.xml` open is an independent host."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class NodeDomain:
    name: str
    uuid: str = field(default_factory=lambda: str(uuidlib.uuid4()))
    running: bool = True
    vcpus: int = 1
    memory_mib: int = 256
    disk_path: str = ""
    cache: str = "none"
    bridge: str = "br0"
    lease: str = ""  # "<lockspace>/<key>": a sanlock <lease> in its definition (docs/ha.md)


def domain_xml(d: NodeDomain) -> str:
    disk = ""
    if d.disk_path:
        disk = (
            f"<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='{d.cache}'/>"
            f"<source file='{d.disk_path}'/><target dev='vda' bus='virtio'/></disk>"
        )
    nic = (
        f"<interface type='bridge'><source bridge='{d.bridge}'/><model type='virtio'/></interface>" if d.bridge else ""
    )
    if d.lease:
        lockspace, key = d.lease.split("/", 1)
        nic += (
            f"<lease><lockspace>{lockspace}</lockspace><key>{key}</key>"
            f"<target path='/srv/leases/{key}.lease' offset='0'/></lease>"
        )
    return (
        f"<domain type='test'><name>{d.name}</name><uuid>{d.uuid}</uuid>"
        f"<memory unit='MiB'>{d.memory_mib}</memory><currentMemory unit='MiB'>{d.memory_mib}</currentMemory>"
        f"<vcpu>{d.vcpus}</vcpu><os><type arch='x86_64'>hvm</type></os>"
        f"<devices>{disk}{nic}</devices></domain>"
    )


def write_node(
    path: Path, domains: list[NodeDomain], cpus: int = 8, memory_mib: int = 16384, bridges: tuple[str, ...] = ("br0",)
) -> str:
    """Write a node file and return its URI. Shut-off domains are written with an <active> marker off."""
    parts = [
        f"<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>"
        f"<active>{cpus}</active><mhz>2000</mhz><model>x86_64</model></cpu>"
        f"<memory>{memory_mib * 1024}</memory>"
    ]
    for d in domains:
        xml = domain_xml(d)
        if not d.running:
            xml = xml.replace(
                "<domain type='test'>",
                "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>",
                1,
            )
            xml = xml.replace("</domain>", "<test:runstate>5</test:runstate></domain>")
        parts.append(xml)
    for br in bridges:
        parts.append(f"<interface type='bridge' name='{br}'><start mode='onboot'/><bridge/></interface>")
    parts.append("</node>")
    path.write_text("".join(parts))
    return f"test://{path}"
