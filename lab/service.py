"""Bring the whole lab up, report on it, take it down, reset guest placement.

Order matters. Up: boot image, bridges/netns, rpcbind then ganesha, both libvirtd (+ QEMU capability
probe), guests. Down: guests first (SIGTERM to libvirtd leaves its QEMUs running), then both libvirtd and
ganesha together, then rpcbind (ganesha unregisters from it), then bridges and namespaces.
Only what the state file records is ever stopped or deleted.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import guests, hypervisors, image, network, nfs, sanlock, security
from .config import (
    GUESTS,
    HOSTS,
    LIBVIRT_TCP_PORT,
    MOUNTD_PORT,
    NFS_ADDRESS,
    NFS_PORT,
    RPCBIND_PORT,
    Paths,
    host,
    lock_manager,
    paths,
)
from .procs import LabError, alive, listening_ports, load_state, record, require_root, save_state, stop, which

REQUIRED = (
    "libvirtd",
    "virsh",
    "qemu-system-x86_64",
    "qemu-img",
    "qemu-io",
    "ganesha.nfsd",
    "rpcbind",
    "rpcinfo",
    "busybox",
    "cpio",
    "ip",
    "unshare",
    "tini",
    "nsenter",
    "ss",
    "saslpasswd2",
)


def preflight() -> None:
    """Raise LabError naming the fix if we are not root or something the lab runs is missing."""
    require_root()
    for binary in REQUIRED:
        which(binary)
    try:
        pwd.getpwnam("libvirt-qemu")
        grp.getgrnam("kvm")
    except KeyError as exc:
        # libvirtd dies at start without its compiled-in qemu user (docs/lab.md P6).
        raise LabError(
            "user libvirt-qemu / group kvm missing (libvirtd refuses to start). Fix: `make install`"
        ) from exc
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/qemu/block-nfs.so"):
        raise LabError("QEMU has no NFS block driver. Fix: `make install` (or: apt-get install -y qemu-block-extra)")


@contextmanager
def _locked(p: Paths):
    """One lab operation at a time (two test sessions may both try to bring the lab up)."""
    p.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(p.root / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class UpResult:
    seconds: float
    started: list[str] = field(default_factory=list)  # what this call started (hosts, nfs, guests)
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds since the start of up()

    @property
    def started_anything(self) -> bool:
        return bool(self.started)


def build_image(p: Paths | None = None) -> str:
    """Build (or find cached) the guests' kernel + initramfs; returns a line for the operator."""
    p = p or paths()
    t0 = time.monotonic()
    with _locked(p):
        built = image.ensure(p)
    what = "built" if built else "already built"
    return f"guest image {what} in {time.monotonic() - t0:.1f} s: {p.kernel}, {p.initramfs}"


def is_up(p: Paths | None = None) -> bool:
    p = p or paths()
    state = load_state(p)
    return all(alive(state.get("hosts", {}).get(h.name)) for h in HOSTS) and alive(state.get("nfs", {}).get("ganesha"))


def up(
    wait: bool = True, p: Paths | None = None, with_guests: bool = True, lock_manager: str | None = None
) -> UpResult:
    """Idempotent: start whatever part of the lab is not running; with `wait`, return once every guest
    meant to run has a heartbeat. `with_guests=False` brings up only NFS and the two daemons.

    `lock_manager` ("none" or "sanlock"; default $KVMLAB_LOCK_MANAGER, else "none"): a lab running in the
    other mode is taken down first, so its libvirtd, guests and leases all start again in the new one."""
    preflight()
    p = p or paths()
    mode = _lock_manager(lock_manager)
    if mode == "sanlock":
        sanlock.preflight()
    t0 = time.monotonic()
    res = UpResult(0.0)
    state = load_state(p)
    if state.get("lock_manager", "none") != mode and (state.get("hosts") or state.get("sanlock")):
        down(p)
        res.notes.append(f"took the lab down to switch its lock manager to {mode}")
    security.ensure_private_root(p)
    with _locked(p):
        state = load_state(p)
        security.ensure_credentials(p)
        security.use_credentials(p)
        if security.ensure_certificates(p):
            res.notes.append("made the lab CA and the hosts' migration TLS certificates")
        if image.ensure(p):
            res.notes.append(f"built guest kernel + initramfs in {time.monotonic() - t0:.1f} s")
        try:
            network.up(state)
            with_netns = True
        except LabError as exc:
            with_netns = False
            res.notes.append(f"no per-host network view ({exc}); hosts share the root bridges")
        state["lock_manager"] = mode
        save_state(p, state)
        had_nfs = alive(state.get("nfs", {}).get("ganesha"))
        res.phases["image+network"] = time.monotonic() - t0
        nfs.up(p, state)
        save_state(p, state)
        res.phases["nfs"] = time.monotonic() - t0
        if not had_nfs:
            res.started.append("nfs")
        if mode == "sanlock":
            try:
                res.started += [f"sanlock {name}" for name in sanlock.up(p, state)]
            finally:
                save_state(p, state)
            res.phases["sanlock"] = time.monotonic() - t0
        try:
            started_hosts = hypervisors.up(p, state, with_netns=with_netns, lock_manager=mode)
        finally:
            save_state(p, state)
        res.started += started_hosts
        res.phases["libvirtd"] = time.monotonic() - t0
        hypervisors.warm_capabilities(started_hosts)
        res.phases["qemu caps"] = time.monotonic() - t0
        marks = {g.name: guests.console_size(p, g.name) for g in GUESTS}
        booted = guests.ensure_all(p) if with_guests else []
        res.started += booted
        res.phases["guests started"] = time.monotonic() - t0
        state["up_at"] = time.time()
        save_state(p, state)
    if wait:
        for name in booted:
            guests.wait_heartbeat(name, after_offset=marks[name], timeout=90, p=p)
        res.phases["heartbeats"] = time.monotonic() - t0
    res.seconds = time.monotonic() - t0
    return res


def down(p: Paths | None = None) -> list[str]:
    """Stop every lab process by PID, delete the lab's bridges/namespaces. Returns lines of `ss` still
    listening on a lab port afterwards (empty when the machine is clean)."""
    require_root()
    p = p or paths()
    with _locked(p):
        state = load_state(p)
        for h in HOSTS:
            if alive(state.get("hosts", {}).get(h.name)):
                try:
                    guests.destroy_all(h.uri)
                except LabError:
                    pass  # the daemon is going away anyway; leftover QEMUs are stopped below
        # QEMUs whose daemon died before it could destroy them (libvirt's own pid files say which).
        qemus = [record(pid) for h in HOSTS for pid in hypervisors.qemu_pids(p, h.name)]
        stop(qemus, timeout=15)
        # sanlock's daemons leave their lockspace once no QEMU holds a lease (lab/sanlock.py).
        sanlock.shutdown(p, state)
        nfs_state = state.get("nfs", {})
        stop(
            [
                *hypervisors.entries(state),
                *sanlock.entries(state),
                *([nfs_state["ganesha"]] if "ganesha" in nfs_state else []),
            ],
            timeout=15,
        )
        # rpcbind last: ganesha unregisters from it on the way out.
        stop([nfs_state["rpcbind"]] if "rpcbind" in nfs_state else [], timeout=10)
        network.down(state)
        state.pop("hosts", None)
        state.pop("sanlock", None)
        state.pop("lock_manager", None)
        state.pop("nfs", None)
        state.pop("up_at", None)
        save_state(p, state)
    return listening_ports(lab_ports())


def stop_host(name: str, p: Paths | None = None) -> None:
    """Stop one host's libvirtd only (its guests' QEMUs keep running, as after a real daemon crash).
    The host then reads as unreachable; `up()` restarts the daemon, which reattaches to its guests."""
    require_root()
    p = p or paths()
    host(name)  # KeyError for an unknown host
    with _locked(p):
        state = load_state(p)
        entry = state.get("hosts", {}).get(name)
        stop([entry] if entry else [], timeout=15)
        state.get("hosts", {}).pop(name, None)
        save_state(p, state)


def crash_host(name: str, p: Paths | None = None) -> list[int]:
    """A host's sudden death, as near as one machine can play it: SIGKILL to its libvirtd, its guests'
    QEMUs and (sanlock mode) its sanlock daemon, all at once; nothing is shut down cleanly, so its
    lockspace lease stops being renewed and its guests' leases stay held until sanlock deems it dead
    (docs/ha.md). `up()` brings it back. Returns the PIDs killed."""
    require_root()
    p = p or paths()
    host(name)
    with _locked(p):
        state = load_state(p)
        victims = [
            *hypervisors.qemu_pids(p, name),
            *(e["pid"] for e in (state.get("hosts", {}).get(name), state.get("sanlock", {}).get(name)) if alive(e)),
        ]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        state.get("hosts", {}).pop(name, None)
        state.get("sanlock", {}).pop(name, None)
        save_state(p, state)
    return victims


def lab_ports() -> dict[int, frozenset[str] | None]:
    """The ports the lab listens on: its services' on any address, each host's migration range on its own."""
    ports: dict[int, frozenset[str] | None] = dict.fromkeys({NFS_PORT, MOUNTD_PORT, RPCBIND_PORT, LIBVIRT_TCP_PORT})
    for h in HOSTS:
        ports.update(dict.fromkeys(range(h.migration_port_min, h.migration_port_max + 1), frozenset({h.address})))
    return ports


def reset(p: Paths | None = None) -> UpResult:
    """Back to the initial placement: every lab guest destroyed and undefined everywhere, then defined
    on its initial host with its default workload and started."""
    p = p or paths()
    t0 = time.monotonic()
    # A reset keeps the lock manager the lab runs with (a test in sanlock mode resets within it).
    mode = load_state(p).get("lock_manager") if is_up(p) else None
    if not is_up(p):
        # Definitions survive `down`: the daemons must run to forget them, the guests need not.
        up(wait=False, p=p, with_guests=False)
    with _locked(p):
        for g in GUESTS:
            guests.undefine_everywhere(g.name)
    res = up(p=p, lock_manager=mode)
    res.seconds = time.monotonic() - t0
    return res


def status(p: Paths | None = None) -> dict:
    """What runs, by PID, and where libvirt says each guest is."""
    p = p or paths()
    state = load_state(p)
    nfs_state = state.get("nfs", {})
    procs = {
        "rpcbind": _proc(nfs_state.get("rpcbind"), f"{NFS_ADDRESS}:{RPCBIND_PORT}"),
        "ganesha": _proc(nfs_state.get("ganesha"), f"{NFS_ADDRESS}:{NFS_PORT} export {p.export}"),
    }
    if nfs_state.get("rpcbind_foreign"):
        procs["rpcbind"]["note"] = "not started by the lab"
    host_rows = []
    for h in HOSTS:
        entry = state.get("hosts", {}).get(h.name)
        row = {
            "name": h.name,
            "uri": h.uri,
            "address": h.address,
            "host_uuid": h.host_uuid,
            "migration_ports": f"{h.migration_port_min}-{h.migration_port_max}",
            "bridges": list(h.bridges),
            **_proc(entry, f"{h.address}:{LIBVIRT_TCP_PORT}"),
        }
        if row["running"]:
            try:
                row["domains"] = guests.domains(h.uri)
            except LabError as exc:
                row["error"] = str(exc)
        host_rows.append(row)
    guest_rows = []
    for g in GUESTS:
        where = {hr["name"]: hr.get("domains", {}).get(g.name) for hr in host_rows if g.name in hr.get("domains", {})}
        guest_rows.append(
            {
                "name": g.name,
                "hosts": where,
                "initial_host": g.host,
                "cache": g.cache,
                "bridges": list(g.bridges),
                "heartbeat": guests.heartbeat(g.name, p=p),
                "console_log": str(p.console_log(g.name)),
                "disk": str(p.disk(g.name)),
            }
        )
    if state.get("sanlock"):
        for h in HOSTS:
            procs[f"sanlock {h.name}"] = _proc(state["sanlock"].get(h.name), f"lockspace {p.lockspace}")
    return {
        "state_dir": str(p.root),
        "up": is_up(p),
        "lock_manager": state.get("lock_manager", "none") if state.get("hosts") else None,
        "processes": procs,
        "hosts": host_rows,
        "guests": guest_rows,
        "network": state.get("network", {}),
    }


def _lock_manager(requested: str | None) -> str:
    try:
        return lock_manager(requested)
    except ValueError as exc:
        raise LabError(str(exc)) from exc


def _proc(entry: dict | None, listen: str) -> dict:
    return {"pid": (entry or {}).get("pid"), "running": alive(entry), "listen": listen}
