"""The lab is no way into the machine: only root, holding the lab's credentials, can use any of it."""

import os
import re
import stat
import subprocess

import pytest

import lab as kvmlab
from hosts.drivers import libvirt as driver
from hosts.drivers.types import HostUnreachable
from lab import nfs, security
from lab.config import NFS_ADDRESS, Paths

pytestmark = pytest.mark.once

LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|\[::1\]|\[::ffff:127\.\d+\.\d+\.\d+\]|/.*)$")


def _virsh(uri: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["virsh", "-c", uri, "hostname"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
    )


def test_a_connection_without_the_lab_credentials_is_refused(lab, monkeypatch, tmp_path):
    uri = lab.uri("hv-a")
    assert driver.probe(uri).hostname == "hv-a"  # with the lab's auth file: in

    monkeypatch.delenv(security.AUTH_FILE_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no ~/.config/libvirt/auth.conf to fall back on
    with pytest.raises(HostUnreachable, match="authentication failed"):
        driver.probe(uri)

    wrong = tmp_path / "auth.conf"
    wrong.write_text(security.auth_file(lab.paths).read_text().replace("password=", "password=not-"))
    monkeypatch.setenv(security.AUTH_FILE_ENV, str(wrong))
    with pytest.raises(HostUnreachable, match="authentication failed"):
        driver.probe(uri)

    plain = {k: v for k, v in os.environ.items() if k != security.AUTH_FILE_ENV}
    refused = _virsh(lab.uri("hv-b"), plain)
    assert refused.returncode != 0 and "authentication failed" in refused.stderr


def test_every_lab_socket_listens_on_loopback_only(lab):
    out = subprocess.run(["ss", "-Hlntup"], capture_output=True, text=True, check=True).stdout
    seen = set()
    for line in out.splitlines():
        proc = re.search(r'users:\(\("([^"]+)"', line)
        if not proc or proc.group(1) not in ("rpcbind", "ganesha.nfsd", "libvirtd"):
            continue
        local = line.split()[4].rsplit(":", 1)[0]
        seen.add(proc.group(1))
        assert LOOPBACK.match(local), f"{proc.group(1)} listens beyond loopback: {line}"
    assert seen == {"rpcbind", "ganesha.nfsd", "libvirtd"}, out


def test_the_lab_directory_and_its_secrets_are_root_only(lab):
    root = os.lstat(lab.paths.root)
    assert stat.S_ISDIR(root.st_mode) and root.st_uid == 0 and stat.S_IMODE(root.st_mode) == 0o700
    for secret in (security.auth_file(lab.paths), lab.paths.root / "pki/ca-key.pem"):
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600, secret


def test_lab_up_refuses_a_directory_others_can_read(lab, tmp_path):
    loose = tmp_path / "kvmlab"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    with pytest.raises(kvmlab.LabError, match="mode 0755, not 0700"):
        kvmlab.up(p=Paths(loose))
    assert not (loose / "state.json").exists()  # refused before anything started


def _qemu_img_info(url: str, *prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, "qemu-img", "info", "-U", url], capture_output=True, text=True, timeout=30)


def test_the_export_squashes_root_and_takes_root_processes_only(lab):
    import grp
    import pwd

    disk = f"nfs://{NFS_ADDRESS}{lab.paths.disk('lab-g1')}"
    uid, gid = pwd.getpwnam(nfs.DISK_USER).pw_uid, grp.getgrnam(nfs.DISK_GROUP).gr_gid
    as_qemu = f"{disk}?uid={uid}&gid={gid}"
    assert _qemu_img_info(as_qemu).returncode == 0  # what QEMU does: root's port, libvirt-qemu's uid

    squashed = _qemu_img_info(disk)  # root claiming uid 0 over NFS gets nobody's rights
    assert squashed.returncode != 0 and "NFS3ERR_ACCES" in squashed.stderr

    # Anyone may claim any uid over AUTH_SYS; an unprivileged process cannot bind a port below 1024.
    nobody = _qemu_img_info(as_qemu, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    assert nobody.returncode != 0, nobody.stdout
