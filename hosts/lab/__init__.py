"""The reference lab: two libvirtd "hypervisors" + a userspace NFS server + tiny TCG guests, on loopback.

Public API (what commands, tests and benchmarks use):
    up(wait=True) -> UpResult        down() -> list[str]        reset() -> UpResult      status() -> dict
    is_up() -> bool                  paths() -> Paths            build_image() (kernel + initramfs only, no root)
    HOSTS, GUESTS, host(name), guest(name)
    stop_host(name)                  (that host's libvirtd only, its guests keep running; up() restarts it)
    set_workload(name, fill, dirty)  heartbeat(name)  wait_heartbeat(name, above, timeout)
    disk_heartbeat(name)             placement()      running_on(name)    current_host(name)
See docs/lab.md.
"""

from .config import GUESTS, HOSTS, GuestSpec, HostSpec, Paths, guest, host, paths
from .guests import (
    current_host,
    disk_heartbeat,
    heartbeat,
    placement,
    running_on,
    set_workload,
    wait_heartbeat,
)
from .procs import LabError
from .service import UpResult, build_image, down, is_up, preflight, reset, status, stop_host, up

__all__ = [
    "GUESTS",
    "HOSTS",
    "GuestSpec",
    "HostSpec",
    "LabError",
    "Paths",
    "UpResult",
    "build_image",
    "current_host",
    "disk_heartbeat",
    "down",
    "guest",
    "heartbeat",
    "host",
    "is_up",
    "paths",
    "placement",
    "preflight",
    "reset",
    "running_on",
    "set_workload",
    "status",
    "stop_host",
    "up",
    "wait_heartbeat",
]
