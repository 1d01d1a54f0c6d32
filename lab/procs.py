"""Processes the lab starts, remembered by PID (plus start time, so a recycled PID is never killed).

The state file is the only record of what the lab owns: `down` stops exactly what is listed there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .config import Paths


class LabError(RuntimeError):
    """Something the operator must fix; the message says how."""


# ------------------------------------------------------------------------------------------ state


def load_state(p: Paths) -> dict:
    try:
        return json.loads(p.state_file.read_text())
    except FileNotFoundError:
        return {}


def save_state(p: Paths, state: dict) -> None:
    p.root.mkdir(parents=True, exist_ok=True)
    tmp = p.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(p.state_file)


# ------------------------------------------------------------------------------------------- pids


def start_time(pid: int) -> int | None:
    """Clock ticks since boot at which `pid` started (field 22 of /proc/pid/stat); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent has not reaped it yet
        return None
    return int(fields[19])


def record(pid: int) -> dict:
    return {"pid": pid, "start": start_time(pid)}


def alive(entry: dict | None) -> bool:
    """True if the recorded process still runs (same PID *and* same start time)."""
    if not entry or not entry.get("pid"):
        return False
    st = start_time(entry["pid"])
    return st is not None and st == entry.get("start")


def _reap(pid: int) -> None:
    # Only our own children can be reaped; others are reaped by their parent (or init).
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(entries: list[dict], timeout: float = 10.0) -> None:
    """SIGTERM every live entry at once, wait up to `timeout`, then SIGKILL what is left."""
    live = [e for e in entries if alive(e)]
    for e in live:
        try:
            os.kill(e["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        for e in live:
            _reap(e["pid"])
        live = [e for e in live if alive(e)]
        if live:
            time.sleep(0.05)
    for e in live:
        try:
            os.kill(e["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    for e in live:
        for _ in range(40):
            _reap(e["pid"])
            if not alive(e):
                break
            time.sleep(0.05)


def spawn(argv: list[str], log: Path, **kw) -> int:
    """Start a daemon detached from our session (Ctrl-C in a terminal must not kill the lab)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **kw
        )
    return proc.pid


# ------------------------------------------------------------------------------------------ ports


def port_open(address: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check, timeout: float, what: str, pid: int | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and start_time(pid) is None:
            _reap(pid)
            raise LabError(f"{what}: process {pid} died{_tail(log)}")
        time.sleep(0.05)
    raise LabError(f"{what}: not ready after {timeout:.0f} s{_tail(log)}")


def _tail(log: Path | None, lines: int = 15) -> str:
    if not log or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log} ---\n" + "\n".join(text)


def listening_ports(ports: dict[int, frozenset[str] | None]) -> list[str]:
    """Lines of `ss -ltn` on one of `ports` (what `down` must leave empty). A port mapped to addresses
    counts only on those (or a wildcard): the migration ports are also ordinary ephemeral ports, and
    another program's listener on 127.0.0.1 is not the lab's."""
    out = run(["ss", "-Hltn"], check=False).stdout
    found = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 4 or not cols[3].rsplit(":", 1)[-1].isdigit():
            continue
        host, port = cols[3].rsplit(":", 1)
        if int(port) not in ports:
            continue
        addresses = ports[int(port)]
        if addresses is None or host in addresses or host in ("0.0.0.0", "*", "[::]"):
            found.append(line)
    return found


# --------------------------------------------------------------------------------------- commands

# Binary -> the Debian package providing it, for "missing binary" errors.
PACKAGES = {
    "libvirtd": "libvirt-daemon libvirt-daemon-driver-qemu",
    "virsh": "libvirt-clients",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "qemu-io": "qemu-utils",
    "ganesha.nfsd": "nfs-ganesha nfs-ganesha-vfs",
    "rpcbind": "rpcbind",
    "rpcinfo": "rpcbind",
    "busybox": "busybox-static",
    "cpio": "cpio",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "tini": "tini",
    "ss": "iproute2",
    "saslpasswd2": "sasl2-bin",
    "sanlock": "sanlock libvirt-sanlock",
    "gcc": "gcc",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
}
SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def which(binary: str) -> str:
    found = shutil.which(binary) or shutil.which(binary, path=os.pathsep.join(SBIN))
    if not found:
        pkg = PACKAGES.get(binary, binary)
        raise LabError(
            f"{binary} is not installed. Fix: `make install` (or: apt-get install -y --no-install-recommends {pkg})"
        )
    return found


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, bridges, libvirtd). Run it as root, e.g. `sudo make lab-up`.")


def run(argv: list[str], check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    argv = [which(argv[0]), *argv[1:]]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed ({res.returncode}): {(res.stderr or res.stdout).strip()}")
    return res
