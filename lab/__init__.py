"""The reference lab: two libvirtd "hypervisors" + a userspace NFS server + tiny TCG guests, on loopback.

Public API (what commands, tests and benchmarks use):
    up(wait=True) -> UpResult        down() -> list[str]        reset() -> UpResult      status() -> dict
    is_up() -> bool                  paths() -> Paths            build_image() (kernel + initramfs only, no root)
    client_env() -> {"LIBVIRT_AUTH_FILE": <lab>/auth.conf}   (the lab's libvirtd want a SASL login)
    HOSTS, GUESTS, host(name), guest(name)
    stop_host(name)                  (that host's libvirtd only, its guests keep running; up() restarts it)
    crash_host(name)                 (SIGKILL to its libvirtd, QEMUs and sanlock daemon: a sudden death)
    set_workload(name, fill, dirty)  heartbeat(name)  wait_heartbeat(name, above, timeout)
    disk_heartbeat(name)             placement()      running_on(name)    current_host(name)
See docs/lab.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Where each public name lives, loaded on first use: the Django app behind `manage.py lab` (lab.apps) is
# installed in the embedded profile, and its web and worker processes need not import the lab for it.
_EXPORTS = {
    **dict.fromkeys(["GUESTS", "HOSTS", "GuestSpec", "HostSpec", "Paths", "guest", "host", "paths"], "config"),
    **dict.fromkeys(
        ["current_host", "disk_heartbeat", "heartbeat", "placement", "running_on", "set_workload", "wait_heartbeat"],
        "guests",
    ),
    "LabError": "procs",
    **dict.fromkeys(
        ["UpResult", "build_image", "crash_host", "down", "is_up", "preflight", "reset", "status", "stop_host", "up"],
        "service",
    ),
}

if TYPE_CHECKING:
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
    from .service import UpResult, build_image, crash_host, down, is_up, preflight, reset, status, stop_host, up


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


def client_env(p: Paths | None = None) -> dict[str, str]:
    """Environment a process needs to log in to the lab's libvirtd (LIBVIRT_AUTH_FILE)."""
    from .config import paths
    from .security import client_env as _client_env

    return _client_env(p or paths())


__all__ = [
    "GUESTS",
    "HOSTS",
    "GuestSpec",
    "HostSpec",
    "LabError",
    "Paths",
    "UpResult",
    "build_image",
    "client_env",
    "crash_host",
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
