#!/usr/bin/env bash
# Installs everything kvmcluster, its tests and its local lab need on a fresh Debian 12 machine (as root).
# Idempotent and quick when nothing is missing: `make run` and `make test` call it first.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # the two-hypervisor lab (docs/lab.md): monolithic libvirtd, QEMU, and the userspace NFS server
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils qemu-block-extra
  nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils busybox-static cpio iproute2
  procps  # ps: `make run` waits for its web and worker process groups with it
  tini  # reaps the lab's QEMU processes at once (this machine's init reaps orphans 1.1-1.5 s late)
  sasl2-bin  # saslpasswd2: the lab's libvirtd take SASL logins only (DIGEST-MD5 from libsasl2-modules)
  libsasl2-modules
  # the lab's opt-in lock manager (KVMLAB_LOCK_MANAGER=sanlock, docs/ha.md): the daemon and libvirt's plugin;
  # gcc (below) builds the daemon's small setrlimit shim at lab-up time
  sanlock libvirt-sanlock
  # building libvirt-python
  libvirt-dev pkg-config gcc python3-dev
  # end-to-end tests drive Debian's Chromium (no browser downloads)
  chromium
  # the production profile's servers (already running on CI machines; installed if absent)
  postgresql redis-server
  # the deployment guide's reverse proxy and its test certificate (tests/scale, docs/deploy.md)
  nginx openssl
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "install: missing Debian packages: ${missing[*]}" >&2
    echo "install: run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "install: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# What libvirt-daemon-system would have created (it pulls systemd, so we don't install it): libvirtd
# refuses to start without its compiled-in qemu user (docs/lab.md P6).
if [[ $(id -u) == 0 ]]; then
  getent group kvm >/dev/null || groupadd -r kvm
  getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
  id libvirt-qemu >/dev/null 2>&1 || useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
fi

PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "install: pip install -r requirements.txt"
  # (this machine's pip.conf names local mirrors that may be absent: hide those warnings only)
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt 2> >(grep -v "WARNING: Location" >&2)
  echo "$want" > "$stamp"
fi

# kvmctl, the console script of pyproject.toml, from this checkout (editable: no copy to go stale).
if [[ ! -x .venv/bin/kvmctl ]]; then
  echo "install: kvmctl"
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2> >(grep -v "WARNING: Location" >&2)
fi

# The lab's guest image (Debian cloud kernel + busybox initramfs): built once and cached, so the
# kernel download is paid here rather than inside the first `lab up`.
KVMCLUSTER_LAB=1 .venv/bin/python manage.py lab build
