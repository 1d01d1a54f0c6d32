"""The reference lab's fixed layout: where its state lives, its two hosts, its bridges and its guests.

Everything here is data. Addresses, ports and UUIDs are fixed because only one lab can run on a machine
(rpcbind owns :111, ganesha :2049); the state directory is configurable (settings.KVMLAB_DIR).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

NFS_ADDRESS = "127.0.0.1"
NFS_PORT = 2049
MOUNTD_PORT = 20048
RPCBIND_PORT = 111
LIBVIRT_TCP_PORT = 16509
GUEST_MEMORY_MIB = 256
DISK_SIZE_MIB = 64
# Bridges in the root network namespace, without any address: QEMU's taps plug into these.
ROOT_BRIDGES = ("br0", "br-a-only")


@dataclass(frozen=True)
class HostSpec:
    """One lab hypervisor: a libvirtd in its own mount+UTS namespace, reached over TCP on `address`.

    `bridges` is what the host *shows* (its private /sys/class/net, taken from network namespace
    `netns`); distinct `host_uuid`s and migration port ranges let the two daemons migrate to each other.
    """

    name: str
    address: str
    host_uuid: str
    migration_port_min: int
    migration_port_max: int
    bridges: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f"qemu+tcp://{self.address}/system"

    @property
    def netns(self) -> str:
        return f"kvmlab-{self.name}"


@dataclass(frozen=True)
class GuestSpec:
    """A tiny TCG guest: busybox init that fills `fill` MiB, re-dirties `dirty` MiB/s, runs `burn` busy loops
    (CPU use), beats every second."""

    name: str
    host: str
    fill: int = 16
    dirty: int = 0
    burn: int = 0
    cache: str = "none"
    bridges: tuple[str, ...] = ("br0",)
    start: bool = True
    mac_suffix: int = 1
    extra: dict = field(default_factory=dict, compare=False)


HOSTS: tuple[HostSpec, ...] = (
    HostSpec("hv-a", "127.0.55.2", "aaaaaaaa-aaaa-4aaa-8aaa-00000000000a", 49152, 49171, ("br0", "br-a-only")),
    HostSpec("hv-b", "127.0.55.3", "bbbbbbbb-bbbb-4bbb-8bbb-00000000000b", 49172, 49191, ("br0",)),
)

GUESTS: tuple[GuestSpec, ...] = (
    GuestSpec("lab-g1", "hv-a", fill=16, dirty=0, mac_suffix=1),
    GuestSpec("lab-g2", "hv-b", fill=16, dirty=0, mac_suffix=2),
    # Its second NIC is on a bridge only hv-a has: moving it to hv-b must be refused by the pre-flight.
    GuestSpec("lab-g3", "hv-a", fill=8, dirty=0, bridges=("br0", "br-a-only"), mac_suffix=3),
    # cache='writeback' on shared storage: live migration is unsafe; the pre-flight must refuse it.
    GuestSpec("lab-gcache", "hv-a", fill=8, dirty=0, cache="writeback", start=False, mac_suffix=4),
)

LAB_GUEST_PREFIX = "lab-"

# The lock manager the lab's libvirtd use (docs/ha.md): "none" (the default, what every test expects
# unless it asks) or "sanlock" (guests carry a <lease>; a second QEMU of a guest is refused by the storage).
LOCK_MANAGERS = ("none", "sanlock")
LOCK_MANAGER_ENV = "KVMLAB_LOCK_MANAGER"
SANLOCK_LOCKSPACE = "kvmlab"


def lock_manager(requested: str | None = None) -> str:
    """`requested`, else $KVMLAB_LOCK_MANAGER, else "none"; ValueError for anything else."""
    mode = requested or os.environ.get(LOCK_MANAGER_ENV) or "none"
    if mode not in LOCK_MANAGERS:
        raise ValueError(f"{LOCK_MANAGER_ENV}={mode!r}: the lab knows {', '.join(LOCK_MANAGERS)}")
    return mode


def sanlock_host_id(name: str) -> int:
    """Each host's id in the sanlock lockspace (1, 2, ... in HOSTS order): unique, as sanlock demands."""
    return [h.name for h in HOSTS].index(name) + 1


def host(name: str) -> HostSpec:
    for h in HOSTS:
        if h.name == name:
            return h
    raise KeyError(f"no lab host {name!r} (known: {', '.join(h.name for h in HOSTS)})")


def guest(name: str) -> GuestSpec:
    for g in GUESTS:
        if g.name == name:
            return g
    raise KeyError(f"no lab guest {name!r} (known: {', '.join(g.name for g in GUESTS)})")


def state_dir() -> Path:
    """settings.KVMLAB_DIR when Django is configured, else $KVMLAB_DIR, else /tmp/kvmlab."""
    try:
        from django.conf import settings

        if settings.configured:
            return Path(settings.KVMLAB_DIR)
    except ImportError:  # pragma: no cover - Django is always installed in this project
        pass
    return Path(os.environ.get("KVMLAB_DIR", "/tmp/kvmlab"))


@dataclass(frozen=True)
class Paths:
    """Every file the lab writes, under one root. The root must not be under /run or /var: each host
    bind-mounts its own /run and /var, so files there would not be shared between the two hosts."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def shared(self) -> Path:  # kernel + initramfs, same path on both hosts
        return self.root / "shared"

    @property
    def kernel(self) -> Path:
        return self.shared / "vmlinuz"

    @property
    def initramfs(self) -> Path:
        return self.shared / "initramfs.gz"

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def nfs(self) -> Path:
        return self.root / "nfs"

    @property
    def export(self) -> Path:
        return self.nfs / "export"

    @property
    def logs(self) -> Path:  # guests' serial logs
        return self.root / "logs"

    @property
    def leases(self) -> Path:  # sanlock's lockspace and the guests' lease files, seen by both hosts
        return self.export / "leases"

    @property
    def lockspace(self) -> Path:
        return self.leases / "lockspace"

    def lease(self, guest_name: str) -> Path:
        return self.leases / f"{guest_name}.lease"

    def host_dir(self, name: str) -> Path:
        return self.root / "hosts" / name

    def disk(self, guest_name: str) -> Path:
        return self.export / f"{guest_name}.qcow2"

    def console_log(self, guest_name: str) -> Path:
        return self.logs / f"{guest_name}.console.log"

    def domain_xml(self, guest_name: str) -> Path:
        return self.root / "domains" / f"{guest_name}.xml"


def paths() -> Paths:
    root = state_dir().resolve()
    for forbidden in ("/run", "/var"):
        if root == Path(forbidden) or Path(forbidden) in root.parents:
            raise ValueError(f"KVMLAB_DIR={root} lies under {forbidden}, which each lab host remounts privately")
    return Paths(root)
