"""The lab's storage server: rpcbind + nfs-ganesha (userspace NFS; this kernel has no nfsd) on 127.0.0.1.

QEMU reaches the export itself through libnfs (`<source protocol='nfs'>`), so nothing is mounted on the
hosts. Ganesha must start after rpcbind (it registers with the portmapper or dies). rpcbind gets its
sockets, bound to loopback only, by socket activation (`rpcbind_activate.py`; its own `-h` crashes).

Who may use the export: NFS AUTH_SYS believes whatever uid a client claims, so the export takes
requests only from privileged source ports (`PrivilegedPort`: only root can bind one; libnfs does when
QEMU runs as root) and squashes root. QEMU does not need root there: it speaks as libvirt-qemu:kvm
(the disk's `<identity>`), which owns the export and the images, mode 0700/0600.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .config import MOUNTD_PORT, NFS_ADDRESS, NFS_PORT, RPCBIND_PORT, Paths
from .procs import alive, port_open, record, run, spawn, wait_until, which

GANESHA_CONF = """\
NFS_CORE_PARAM {{ Bind_addr = {address}; NFS_Port = {nfs_port}; MNT_Port = {mnt_port}; Protocols = 3, 4;
                 Enable_NLM = false; Enable_RQUOTA = false; }}
NFSV4 {{ Graceless = true; RecoveryBackend = fs; RecoveryRoot = {recov}; }}
EXPORT {{ Export_Id = 77; Path = {export}; Pseudo = /export; Protocols = 3, 4; Transports = TCP;
         Access_Type = RW; Squash = Root_Squash; SecType = sys; PrivilegedPort = true; FSAL {{ Name = VFS; }}
         CLIENT {{ Clients = 127.0.0.0/8; Access_Type = RW; }} }}
LOG {{ Default_Log_Level = EVENT; }}
"""


def _rpc_programs() -> str:
    return run(["rpcinfo", "-p", NFS_ADDRESS], check=False, timeout=5).stdout


RPCBIND_SOCKET = "/run/rpcbind.sock"  # where libtirpc (ganesha's registration) looks for it
# The user QEMU speaks as on the export (guests' <identity>): not root, which the export squashes.
DISK_USER, DISK_GROUP = "libvirt-qemu", "kvm"


def own_for_qemu(path: Path, mode: int) -> None:
    import grp
    import pwd

    os.chown(path, pwd.getpwnam(DISK_USER).pw_uid, grp.getgrnam(DISK_GROUP).gr_gid)
    os.chmod(path, mode)


def up(p: Paths, state: dict) -> None:
    """Start rpcbind and ganesha unless the ones recorded in `state` still run; record new PIDs."""
    nfs = state.setdefault("nfs", {})
    p.export.mkdir(parents=True, exist_ok=True)
    own_for_qemu(p.export, 0o700)
    (p.nfs / "recov").mkdir(parents=True, exist_ok=True)

    if not alive(nfs.get("rpcbind")):
        nfs.pop("rpcbind", None)
        if port_open(NFS_ADDRESS, RPCBIND_PORT):
            # Someone else's portmapper (e.g. a system rpcbind): use it, never stop it.
            nfs["rpcbind_foreign"] = True
        else:
            script = Path(__file__).with_name("rpcbind_activate.py")
            pid = spawn([sys.executable, str(script), which("rpcbind"), RPCBIND_SOCKET], p.nfs / "rpcbind.out")
            nfs["rpcbind"] = record(pid)
            wait_until(
                lambda: port_open(NFS_ADDRESS, RPCBIND_PORT) and "portmapper" in _rpc_programs(),
                10,
                "rpcbind",
                pid,
                p.nfs / "rpcbind.out",
            )

    if not alive(nfs.get("ganesha")):
        nfs.pop("ganesha", None)
        if port_open(NFS_ADDRESS, NFS_PORT):
            raise_port_taken(NFS_PORT)
        conf = p.nfs / "ganesha.conf"
        conf.write_text(
            GANESHA_CONF.format(
                address=NFS_ADDRESS, nfs_port=NFS_PORT, mnt_port=MOUNTD_PORT, recov=p.nfs / "recov", export=p.export
            )
        )
        log = p.nfs / "ganesha.out"
        pid = spawn(
            [
                which("ganesha.nfsd"),
                "-F",
                "-f",
                str(conf),
                "-L",
                str(p.nfs / "ganesha.log"),
                "-p",
                str(p.nfs / "ganesha.pidfile"),
                "-N",
                "NIV_EVENT",
            ],
            log,
        )
        nfs["ganesha"] = record(pid)
        wait_until(
            lambda: "mountd" in _rpc_programs() and port_open(NFS_ADDRESS, NFS_PORT),
            20,
            "nfs-ganesha",
            pid,
            p.nfs / "ganesha.log",
        )


def raise_port_taken(port: int) -> None:
    from .procs import LabError

    raise LabError(f"port {port} on {NFS_ADDRESS} is taken by a process the lab did not start (`ss -ltnp` shows it)")


def entries(state: dict) -> list[dict]:
    """Processes to stop, in order: ganesha before rpcbind (it unregisters from the portmapper)."""
    nfs = state.get("nfs", {})
    return [e for e in (nfs.get("ganesha"), nfs.get("rpcbind")) if e]


def source_url(p: Paths, guest_name: str) -> str:
    return f"nfs://{NFS_ADDRESS}{p.disk(guest_name)}"
