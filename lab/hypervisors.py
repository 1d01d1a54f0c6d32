"""The lab's two hypervisors: one privileged libvirtd each, in a private mount + UTS namespace.

A privileged libvirtd hard-codes /etc/libvirt, /run/libvirt and /var/{lib,cache,log}/libvirt, so each host
bind-mounts its own whole /run and /var and puts an overlay on /etc (never bind-mount onto
/var/lib/libvirt itself: a `rm -rf` of that path in the root namespace detaches such mounts everywhere,
docs/lab.md). Distinct host_uuid (P3), migration_host/address (P4) and port ranges let them migrate to
each other. The lab directory stays visible at the same path in both, like an NFS mount would.
TCP logins need the lab's SASL password (security.py); each QEMU has the lab's migration certificates.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from . import sanlock, security
from .config import HOSTS, LIBVIRT_TCP_PORT, HostSpec, Paths, paths
from .procs import LabError, alive, port_open, record, spawn, wait_until, which

LIBVIRTD_CONF = """\
listen_tls = 0
listen_tcp = 1
listen_addr = "{address}"
tcp_port = "{port}"
auth_tcp = "sasl"
sasl_allowed_username_list = ["{sasl_user}"]
auth_unix_rw = "none"
auth_unix_ro = "none"
unix_sock_dir = "{sock}"
host_uuid = "{uuid}"
log_outputs = "3:file:{log}"
"""

# No cgroups, namespaces or AppArmor here; "file" stdio because a privileged libvirtd does not start
# virtlogd by itself.
QEMU_CONF = """\
security_driver = "none"
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
migration_address = "{address}"
migration_host = "{address}"
migration_port_min = {pmin}
migration_port_max = {pmax}
migrate_tls_x509_cert_dir = "{pki}"
migrate_tls_x509_verify = 1
"""


def _prepare(p: Paths, h: HostSpec, lock_manager: str) -> None:
    d = p.host_dir(h.name)
    root = d / "root"
    for sub in (
        "etc",
        "log",
        "sock",
        "root/run/libvirt",
        "root/var/lib/libvirt",
        "root/var/cache/libvirt",
        "root/var/log/libvirt",
        "root/var/tmp",
        "root/etc-upper/sasl2",
        "root/etc-work",
    ):
        (d / sub).mkdir(parents=True, exist_ok=True)
    for link, target in ((root / "var/run", "/run"), (root / "var/lock", "/run/lock")):
        if not link.is_symlink():
            link.symlink_to(target)
    upper = root / "etc-upper/libvirt"
    if not upper.is_symlink():
        upper.symlink_to(d / "etc")
    (d / "etc/libvirtd.conf").write_text(
        LIBVIRTD_CONF.format(
            address=h.address,
            port=LIBVIRT_TCP_PORT,
            sock=d / "sock",
            uuid=h.host_uuid,
            log=d / "log/libvirtd.log",
            sasl_user=security.SASL_USER,
        )
    )
    qemu_conf = QEMU_CONF.format(
        address=h.address, pmin=h.migration_port_min, pmax=h.migration_port_max, pki=security.pki_dir(p, h)
    )
    if lock_manager == "sanlock":
        # QEMU then runs a guest only once sanlock granted its <lease>s (lab/sanlock.py, docs/ha.md).
        qemu_conf += 'lock_manager = "sanlock"\n'
        (d / "etc/qemu-sanlock.conf").write_text(sanlock.qemu_conf(p, h))
    (d / "etc/qemu.conf").write_text(qemu_conf)
    # libvirtd's SASL server reads /etc/sasl2/libvirt.conf: the host's own, through its /etc overlay.
    (root / "etc-upper/sasl2/libvirt.conf").write_text(security.sasl_conf(p, h))
    security.write_sasl_db(p, h)
    (d / "etc/libvirt.conf").touch()
    (root / "etc-upper/hosts").write_text(hosts_file(Path("/etc/hosts").read_text()))


def hosts_file(base: str) -> str:
    """The host's /etc/hosts: the machine's own plus every lab host's name.

    libvirtd resolves its own hostname (getHostname, and the cookie of every migration) with
    getaddrinfo. A name missing from /etc/hosts goes to the machine's DNS server, off the loopback,
    where one lookup in a few dozen took 5 s here (a resolver timeout). A real hypervisor's name
    resolves; so do the lab's now."""
    lines = [line for line in base.splitlines() if not any(h.name in line.split()[1:] for h in HOSTS)]
    lines += [f"{h.address} {h.name}" for h in HOSTS]
    return "\n".join(lines) + "\n"


def _namespace_script(p: Paths, h: HostSpec, with_netns: bool) -> str:
    d = p.host_dir(h.name)
    root = d / "root"
    q = shlex.quote
    lines = ["set -e", f"hostname {q(h.name)}"]
    if with_netns:
        # Before /run is replaced: /run/netns lives in the root namespace's /run.
        lines.append(f"{q(which('nsenter'))} --net=/run/netns/{q(h.netns)} mount -t sysfs sysfs /sys")
    lines += [
        f"mount --bind {q(str(root / 'run'))} /run",
        f"mount --bind {q(str(root / 'var'))} /var",
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={root / 'etc-upper'},workdir={root / 'etc-work'} /etc",
        # Peer-to-peer migrations: this libvirtd logs in to the other host with the lab's credentials.
        f"export {security.AUTH_FILE_ENV}={q(str(security.auth_file(p)))}",
        f"exec {q(which('libvirtd'))} --listen --config {q(str(d / 'etc/libvirtd.conf'))}"
        " --pid-file /run/libvirt/libvirtd.pid",
    ]
    return "\n".join(lines)


def up(p: Paths, state: dict, with_netns: bool = True, lock_manager: str = "none") -> list[str]:
    """Start the libvirtd of every host not already running; returns the names started."""
    started = []
    hosts = state.setdefault("hosts", {})
    for h in HOSTS:
        if alive(hosts.get(h.name)):
            continue
        if port_open(h.address, LIBVIRT_TCP_PORT):
            raise LabError(f"{h.address}:{LIBVIRT_TCP_PORT} is taken by a process the lab did not start")
        _prepare(p, h, lock_manager)
        sock = p.host_dir(h.name) / "sock/libvirt-sock"
        sock.unlink(missing_ok=True)
        argv = [
            # A subreaper above libvirtd: QEMU daemonizes, so its parent is init, and this machine's
            # init reaps orphans 1.1-1.5 s late. libvirt counts a zombie as alive and polls every
            # 200 ms, so every migration, destroy and shutdown waited for that. tini reaps at once,
            # as systemd does on a real host.
            which("tini"),
            "-s",
            "--",
            which("unshare"),
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            _namespace_script(p, h, with_netns),
        ]
        reaper = spawn(argv, p.host_dir(h.name) / "log/stdout.log")
        # unshare and sh both exec, so tini's one child is libvirtd itself; tini exits when it does.
        hosts[h.name] = record(_only_child(reaper)) | {"netns": with_netns}
        started.append(h.name)
    for name in started:
        h = next(x for x in HOSTS if x.name == name)
        d = p.host_dir(name)
        wait_until(
            lambda d=d, h=h: (d / "sock/libvirt-sock").exists() and port_open(h.address, LIBVIRT_TCP_PORT),
            15,
            f"libvirtd {name}",
            hosts[name]["pid"],
            d / "log/stdout.log",
        )
    return started


def _only_child(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children")

    def listed() -> str:
        try:
            return children.read_text().strip()
        except FileNotFoundError:
            return ""  # tini is gone: wait_until reports its death

    wait_until(lambda: listed() != "", 5, f"the reaper of a lab libvirtd (PID {pid})", pid)
    return int(listed().split()[0])


def warm_capabilities(names: list[str]) -> None:
    """Probe QEMU once per new daemon, both in parallel, so the first guest start is not 3.5 s slower."""
    env = {**os.environ, **security.client_env(paths())}
    procs = [
        subprocess.Popen(
            [which("virsh"), "-q", "-c", h.uri, "domcapabilities"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for h in HOSTS
        if h.name in names
    ]
    for proc in procs:
        proc.wait(timeout=60)


def entries(state: dict) -> list[dict]:
    return [e for e in state.get("hosts", {}).values() if e]


def qemu_pids(p: Paths, name: str) -> list[int]:
    """PIDs of QEMU processes this host's libvirtd started (its private /run/libvirt/qemu/*.pid)."""
    pids = []
    for pf in (p.host_dir(name) / "root/run/libvirt/qemu").glob("*.pid"):
        try:
            pid = int(pf.read_text().strip())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (ValueError, OSError):
            continue
        if b"qemu-system" in cmd and b"guest=" in cmd:
            pids.append(pid)
    return pids
