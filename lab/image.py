"""The guests' boot image: Debian's cloud kernel (via `apt-get download`) and a busybox initramfs.

No disk image is downloaded. Built once into <lab>/shared and reused; the init script is the only
thing that changes between builds, so a changed script rebuilds only the initramfs.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from .config import Paths
from .procs import LabError, run, which

# Load order matters: each module needs the ones before it. button + evdev turn the ACPI power button
# (`virsh shutdown`) into an input event busybox acpid sees, so the guest shuts down gracefully.
GUEST_MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
    "button",
    "evdev",
)

# Sets the count `i` to the beat sector 0 of the disk holds ("HB n", zero padded), 0 for a new disk or
# anything else there. Its own constant so a unit test can run it on a file.
RESUME_COUNT = r"""i=0
if [ -b /dev/vda ]; then
  set -- $(dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -d '\000' | head -n 1)
  [ "$1" = HB ] && case $2 in ''|*[!0-9]*) ;; *) i=$2;; esac
  echo "DISK vda holds beat $i: counting on from $((i+1))"
fi"""

# The guest's PID 1. fill=N MiB of random data is written once into a tmpfs; dirty=M MiB are rewritten
# every second (so a live migration can be made short, long or non-converging); burn=K starts K busy shell
# loops at the lowest priority (K vCPUs' worth of CPU use for the load charts and the balancer to see,
# while the heartbeat, at normal priority, still beats); every second a heartbeat
# "HB n" goes to sector 0 of the NFS disk, synced, then to the serial console (proves disk I/O after a move).
# At boot the count goes on from the beat the disk holds: what the guest synced before it stopped (a crash
# of its host included) is what it reads back, so a restart elsewhere shows no synced beat lost
# (docs/ha.md). A beat on the console was always synced first; the disk may be one beat ahead of it.
# An ACPI power-button press logs GUEST-POWEROFF, syncs and powers off (a graceful shutdown).
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in MODULES; do insmod /lib/modules/$m.ko 2>/dev/null; done
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\necho GUEST-POWEROFF >/dev/console\nsync\npoweroff -f\n' >/etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
acpid -d -c /etc/acpi &  # -d: foreground, log to the console (no /var/log here)
FILL=0; DIRTY=0; BURN=0
for a in $(cat /proc/cmdline); do
  case $a in fill=*) FILL=${a#fill=};; dirty=*) DIRTY=${a#dirty=};; burn=*) BURN=${a#burn=};; esac
done
echo "GUEST-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime) fill=$FILL dirty=$DIRTY burn=$BURN"
b=0
while [ "$b" -lt "$BURN" ]; do (while :; do :; done) & renice -n 19 -p $! >/dev/null; b=$((b+1)); done
[ "$BURN" -gt 0 ] && echo "BURNING $BURN"
[ -b /dev/vda ] && echo "DISK vda present: $(cat /sys/block/vda/size) sectors"
mount -t tmpfs -o size=90% tmpfs /mnt
[ "$FILL" -gt 0 ] && dd if=/dev/urandom of=/mnt/fill bs=1M count=$FILL 2>/dev/null && echo "FILLED ${FILL}MiB"
RESUME_COUNT
while true; do
  i=$((i+1))
  [ "$DIRTY" -gt 0 ] && dd if=/dev/urandom of=/mnt/dirty bs=1M count=$DIRTY conv=notrunc 2>/dev/null
  [ -b /dev/vda ] && echo "HB $i" | dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null
  echo "HB $i up=$(cut -d' ' -f1 /proc/uptime)"
  sleep 1
done
""".replace("MODULES", " ".join(GUEST_MODULES)).replace("RESUME_COUNT", RESUME_COUNT)


def _kernel_package() -> str:
    out = run(["apt-cache", "depends", "linux-image-cloud-amd64"], check=False).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-"):
            return line.split()[1]
    raise LabError("apt-cache knows no linux-image-cloud-amd64. Fix: apt-get update")


def _fetch_kernel_deb(build: Path) -> Path:
    """`apt-get download` the cloud kernel; fall back to one already in apt's cache when offline."""
    existing = sorted(build.glob("linux-image-*-cloud-amd64_*.deb"))
    if existing:
        return existing[-1]
    pkg = _kernel_package()
    res = subprocess.run(
        [which("apt-get"), "download", "-q", pkg], cwd=build, capture_output=True, text=True, timeout=300
    )
    debs = sorted(build.glob(f"{pkg}_*.deb"))
    if res.returncode == 0 and debs:
        return debs[-1]
    cached = sorted(glob.glob("/var/cache/apt/archives/linux-image-*-cloud-amd64_*.deb"))
    if cached:
        return Path(shutil.copy(cached[-1], build))
    raise LabError(f"`apt-get download {pkg}` failed: {res.stderr.strip()}. Fix: apt-get update (needs a mirror)")


def _init_digest() -> str:
    return hashlib.sha256(INIT.encode()).hexdigest()[:16]


def ensure(p: Paths) -> bool:
    """Build kernel + initramfs if missing or stale. Returns True if anything was built."""
    stamp = p.shared / "initramfs.sha"
    if p.kernel.exists() and p.initramfs.exists() and stamp.exists() and stamp.read_text() == _init_digest():
        return False
    for binary in ("busybox", "cpio", "dpkg-deb"):
        which(binary)
    p.shared.mkdir(parents=True, exist_ok=True)
    p.build.mkdir(parents=True, exist_ok=True)
    kdir = p.build / "kernel"
    if not (kdir / "boot").exists() or not p.kernel.exists():
        deb = _fetch_kernel_deb(p.build)
        shutil.rmtree(kdir, ignore_errors=True)
        run(["dpkg-deb", "-x", str(deb), str(kdir)], timeout=120)
        vmlinuz = sorted((kdir / "boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise LabError(f"{deb} holds no /boot/vmlinuz-*")
        shutil.copy(vmlinuz[-1], p.kernel)

    root = p.build / "initramfs"
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("bin", "proc", "sys", "dev", "mnt", "lib/modules"):
        (root / sub).mkdir(parents=True)
    shutil.copy(which("busybox"), root / "bin/busybox")
    for mod in GUEST_MODULES:
        found = list(kdir.glob(f"lib/modules/*/kernel/**/{mod}.ko"))
        if not found:
            raise LabError(f"kernel module {mod}.ko missing from {kdir}")
        shutil.copy(found[0], root / "lib/modules" / f"{mod}.ko")
    (root / "init").write_text(INIT)
    os.chmod(root / "init", 0o755)
    tmp = p.initramfs.with_suffix(".tmp")
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
    cpio = subprocess.run(
        [which("cpio"), "-o", "-H", "newc", "--quiet"], cwd=root, input=files, capture_output=True, check=True
    ).stdout
    tmp.write_bytes(gzip.compress(cpio, compresslevel=1))
    tmp.replace(p.initramfs)
    stamp.write_text(_init_digest())
    return True
