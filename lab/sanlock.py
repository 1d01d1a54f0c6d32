"""sanlock in the lab: one `sanlock daemon` per host, beside its libvirtd, leases on the shared export.

Opt-in (`KVMLAB_LOCK_MANAGER=sanlock`, or `lab.up(lock_manager="sanlock")`); docs/ha.md says why sanlock
and what it proved here. Each host's daemon runs in a mount namespace of its own that binds the host's
private /run and /var, so its socket (/run/sanlock/sanlock.sock) is the one that host's libvirtd (with
`lock_manager = "sanlock"`) talks to. The lockspace and the guests' lease files lie in `<lab>/nfs/export/
leases`, the directory both hosts see, each host joining the lockspace with its own host id.

What differs from a production host (docs/ha.md, "The lab's sanlock"): no watchdog (`-w 0`: there is no
/dev/watchdog and no wdmd), no mlockall and no real-time priority (`-l 0 -h 0`), and a shim preloaded
into the daemon that lets its setrlimit(RLIMIT_MEMLOCK / RLIMIT_RTPRIO) calls "succeed": this machine
gives root no CAP_SYS_RESOURCE, and sanlock refuses to start when it cannot raise them ("cannot set the
limits for memlock").
"""

from __future__ import annotations

import hashlib
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .config import GUESTS, HOSTS, SANLOCK_LOCKSPACE, HostSpec, Paths, sanlock_host_id
from .procs import LabError, alive, record, run, spawn, wait_until, which

# sanlock's io timeout for the lab's lockspace (its default is 10 s). Joining takes about 2x, and a host
# that stops renewing is dead to the others after 8x (plus the renewal window): 5 s keeps both short
# enough for tests while leaving the daemons slack on a loaded 2-core machine.
IO_TIMEOUT_S = 5
LEASE_BYTES = 1 << 20  # 512-byte sectors, 1 MiB alignment: sanlock's default lease size

SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>
/* The lab's sanlock runs without mlockall or real-time priority (-l 0 -h 0), but still raises its
   RLIMIT_MEMLOCK and RLIMIT_RTPRIO at start and exits when that fails: root here has no
   CAP_SYS_RESOURCE. Refusals of exactly those two become successes; everything else is untouched. */
int setrlimit(__rlimit_resource_t res, const struct rlimit *rl) {
    int (*real)(__rlimit_resource_t, const struct rlimit *) = dlsym(RTLD_NEXT, "setrlimit");
    int rc = real(res, rl);
    if (rc != 0 && errno == EPERM && (res == RLIMIT_MEMLOCK || res == RLIMIT_RTPRIO)) return 0;
    return rc;
}
"""

QEMU_SANLOCK_CONF = """\
auto_disk_leases = 0
require_lease_for_disks = 0
host_id = {host_id}
disk_lease_dir = "{leases}"
"""


PLUGIN = Path("/usr/lib/x86_64-linux-gnu/libvirt/lock-driver/sanlock.so")


def preflight() -> None:
    """Raise LabError naming the fix when sanlock mode cannot run here."""
    which("sanlock")
    which("gcc")
    if not PLUGIN.exists():
        raise LabError(f"libvirt's sanlock plugin ({PLUGIN}) is missing. Fix: apt-get install -y libvirt-sanlock")


def shim(p: Paths) -> Path:
    """The preload shim, compiled once per source version under <lab>/build."""
    digest = hashlib.sha256(SHIM_C.encode()).hexdigest()[:12]
    so = p.build / f"sanlock-shim-{digest}.so"
    if not so.exists():
        p.build.mkdir(parents=True, exist_ok=True)
        src = so.with_suffix(".c")
        src.write_text(SHIM_C)
        run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(so), str(src), "-ldl"])
    return so


def qemu_conf(p: Paths, h: HostSpec) -> str:
    return QEMU_SANLOCK_CONF.format(host_id=sanlock_host_id(h.name), leases=p.leases)


def lockspace_arg(p: Paths, host_id: int) -> str:
    return f"{SANLOCK_LOCKSPACE}:{host_id}:{p.lockspace}:0"


def resource_arg(p: Paths, guest_name: str) -> str:
    return f"{SANLOCK_LOCKSPACE}:{guest_name}:{p.lease(guest_name)}:0"


def lease_xml(p: Paths, guest_name: str) -> str:
    """The `<lease>` element a guest carries in sanlock mode (libvirt hands it to sanlock at start)."""
    return (
        f"    <lease>\n      <lockspace>{SANLOCK_LOCKSPACE}</lockspace>\n      <key>{guest_name}</key>\n"
        f"      <target path='{p.lease(guest_name)}' offset='0'/>\n    </lease>\n"
    )


def _sock(p: Paths, name: str) -> Path:
    return p.host_dir(name) / "root/run/sanlock/sanlock.sock"


def _init_file(path: Path, what: list[str]) -> None:
    with open(path, "wb") as f:
        f.truncate(LEASE_BYTES)
    run(["sanlock", "direct", "init", *what, "-o", str(IO_TIMEOUT_S)], timeout=30)


def init_leases(p: Paths, fresh: bool) -> None:
    """The lockspace (when `fresh`: no daemon holds it) and a lease per lab guest that has none yet."""
    p.leases.mkdir(parents=True, exist_ok=True)
    if fresh or not p.lockspace.exists():
        _init_file(p.lockspace, ["-s", f"{SANLOCK_LOCKSPACE}:0:{p.lockspace}:0"])
    for g in GUESTS:
        if fresh or not p.lease(g.name).exists():
            init_lease(p, g.name)


def init_lease(p: Paths, guest_name: str) -> None:
    """A fresh lease file for `guest_name` (a throwaway guest a test defines in sanlock mode needs one too:
    without it libvirt's start fails with "Failed to acquire lock: No such file or directory")."""
    _init_file(p.lease(guest_name), ["-r", resource_arg(p, guest_name)])


def _script(p: Paths, h: HostSpec, so: Path) -> str:
    root = p.host_dir(h.name) / "root"
    q = shlex.quote
    return "\n".join(
        [
            "set -e",
            f"hostname {q(h.name)}",
            f"mount --bind {q(str(root / 'run'))} /run",
            f"mount --bind {q(str(root / 'var'))} /var",
            "mkdir -p /run/sanlock",
            f"export LD_PRELOAD={q(str(so))}",
            # -D: stay in the foreground (the PID we record is the daemon's). -e: the host's own name in
            # its delta lease, so `lab up` after a crash of the lab re-acquires its host id at once.
            f"exec {q(which('sanlock'))} daemon -D -w 0 -l 0 -h 0 -U root -G root -e {q(h.name)}",
        ]
    )


def client(pid: int, *args: str, timeout: float = 60, check: bool = True) -> str:
    """`sanlock client ...` inside the namespace of the daemon `pid` (its socket is under that /run)."""
    argv = [which("nsenter"), "--mount", "--target", str(pid), "--", which("sanlock"), "client", *args]
    return run(argv, timeout=timeout, check=check).stdout


def up(p: Paths, state: dict) -> list[str]:
    """Start the daemon of each host that has none running, join it to the lockspace (in parallel, each
    join takes about 2x IO_TIMEOUT_S); returns the hosts started."""
    daemons = state.setdefault("sanlock", {})
    fresh = not any(alive(daemons.get(h.name)) for h in HOSTS)
    init_leases(p, fresh)
    so = shim(p)
    started = []
    for h in HOSTS:
        if alive(daemons.get(h.name)):
            continue
        _sock(p, h.name).unlink(missing_ok=True)
        log = p.host_dir(h.name) / "log/sanlock.log"
        argv = [which("unshare"), "--mount", "--uts", "--propagation", "private", "--", "/bin/sh", "-c"]
        pid = spawn([*argv, _script(p, h, so)], log)
        daemons[h.name] = record(pid)
        started.append(h)
    for h in started:
        pid = daemons[h.name]["pid"]
        wait_until(lambda h=h: _sock(p, h.name).exists(), 10, f"sanlock daemon of {h.name}", pid, log)
    with ThreadPoolExecutor(max_workers=max(len(started), 1)) as pool:
        list(
            pool.map(
                lambda h: client(
                    daemons[h.name]["pid"],
                    "add_lockspace",
                    "-s",
                    lockspace_arg(p, sanlock_host_id(h.name)),
                    "-o",
                    str(IO_TIMEOUT_S),
                    timeout=120,
                ),
                started,
            )
        )
    return [h.name for h in started]


def shutdown(p: Paths, state: dict) -> None:
    """Each running daemon leaves the lockspace (its QEMUs are gone by now) and exits: sanlock ignores a
    shutdown, and SIGTERM, while it is in a lockspace. Both hosts at once; leaving takes a few seconds."""

    def leave(name: str) -> None:
        entry = state.get("sanlock", {}).get(name)
        if not alive(entry):
            return
        try:
            client(
                entry["pid"], "rem_lockspace", "-s", lockspace_arg(p, sanlock_host_id(name)), timeout=60, check=False
            )
            client(entry["pid"], "shutdown", timeout=20, check=False)
        except (LabError, OSError):
            pass  # the lab's stop() sends SIGTERM, then SIGKILL, anyway

    with ThreadPoolExecutor(max_workers=len(HOSTS)) as pool:
        list(pool.map(leave, [h.name for h in HOSTS]))


def entries(state: dict) -> list[dict]:
    return [e for e in state.get("sanlock", {}).values() if e]


def read_leader(p: Paths, guest_name: str) -> dict[str, str]:
    """The guest lease's leader record on the shared storage (`sanlock direct read_leader`): owner_id
    (the host id holding it, 0 when free), owner_generation, lver (bumped at every acquisition), timestamp."""
    out = run(["sanlock", "direct", "read_leader", "-r", resource_arg(p, guest_name)], timeout=30).stdout
    return dict(re.findall(r"^(\w+)\s+(\S+)$", out, re.M))


def host_id_owner(host_id: int) -> str:
    return next(h.name for h in HOSTS if sanlock_host_id(h.name) == host_id)


__all__ = ["IO_TIMEOUT_S", "entries", "init_lease", "lease_xml", "qemu_conf", "read_leader", "shutdown", "up"]
