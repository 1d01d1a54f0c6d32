"""The lab's guests: domain XML, placement, start/stop through `virsh`, and their heartbeats.

Guests are TCG (`type='qemu'`: this machine's KVM cannot boot Linux, docs/lab.md P5), 256 MiB, booted from
the shared kernel + busybox initramfs, with ACPI so `virsh shutdown` is a graceful power-off. Their disk is
a qcow2 on the NFS export, attached as an NFS network disk with cache='none', so a live migration is safe
without VIR_MIGRATE_UNSAFE. The lab talks to libvirt through `virsh` only: the project's driver is the one
module importing libvirt.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from xml.sax.saxutils import escape

from . import sanlock, security
from .config import DISK_SIZE_MIB, GUEST_MEMORY_MIB, GUESTS, HOSTS, NFS_ADDRESS, GuestSpec, Paths, paths
from .config import guest as guest_spec
from .config import host as host_spec
from .image import INIT
from .nfs import DISK_GROUP, DISK_USER, own_for_qemu
from .procs import LabError, load_state, run

DOMAIN_XML = """\
<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <title>kvmcluster lab guest</title>
  <description>{marker}</description>
  <memory unit='MiB'>{memory}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='network' device='disk'>
      <driver name='qemu' type='qcow2' cache='{cache}'/>
      <source protocol='nfs' name='{disk}'>
        <host name='{nfs}'/>
        <identity user='{disk_user}' group='{disk_group}'/>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>
{nics}{leases}    <serial type='file'>
      <source path='{console}' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""

NIC_XML = """\
    <interface type='bridge'>
      <mac address='52:54:00:55:{guest:02x}:{nic:02x}'/>
      <source bridge='{bridge}'/>
      <model type='virtio'/>
    </interface>
"""


# Definitions survive `lab down` (libvirt keeps them), and a running guest keeps the init it booted:
# `up` redefines and reboots a guest made by an older lab, so a change here or in the guest's init
# (ACPI, say) reaches a machine whose lab was left running.
DEFINITION_VERSION = hashlib.sha256((DOMAIN_XML + NIC_XML + INIT).encode()).hexdigest()[:12]


def uuid_of(name: str) -> str:
    """Stable UUID per lab guest, so a redefinition is the same domain to libvirt and the inventory."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kvmcluster-lab:{name}"))


# Fewer boot-time checks: under TCG every calibration loop costs real seconds.
KERNEL_ARGS = "console=ttyS0 quiet panic=-1 mitigations=off no_timer_check tsc=reliable audit=0"


def cmdline(fill: int, dirty: int, burn: int = 0) -> str:
    """The guest's workload on its kernel command line (read by lab/image.py's init). burn=0 is left out,
    so an idle guest's definition reads as it always has."""
    return f"{KERNEL_ARGS} fill={int(fill)} dirty={int(dirty)}" + (f" burn={int(burn)}" if burn else "")


def lock_manager(p: Paths) -> str:
    """The lock manager the running lab was brought up with ("none" or "sanlock", lab/sanlock.py)."""
    return load_state(p).get("lock_manager", "none")


def definition_marker(p: Paths) -> str:
    """What a current definition carries in its description: the version, and the lock manager when
    there is one, so switching the lab's mode redefines every guest (with or without its <lease>)."""
    mode = lock_manager(p)
    return f"kvmcluster lab definition {DEFINITION_VERSION}" + ("" if mode == "none" else f" {mode}")


def domain_xml(
    p: Paths,
    spec: GuestSpec,
    fill: int | None = None,
    dirty: int | None = None,
    burn: int | None = None,
    lease: bool | None = None,
) -> str:
    """The guest's definition; in sanlock mode with its <lease> unless `lease=False` (what a test of the
    fencing itself defines to watch it fail)."""
    with_lease = lock_manager(p) == "sanlock" if lease is None else lease
    nics = "".join(NIC_XML.format(guest=spec.mac_suffix, nic=i, bridge=escape(br)) for i, br in enumerate(spec.bridges))
    return DOMAIN_XML.format(
        name=escape(spec.name),
        uuid=uuid_of(spec.name),
        memory=GUEST_MEMORY_MIB,
        kernel=p.kernel,
        initrd=p.initramfs,
        cmdline=cmdline(
            spec.fill if fill is None else fill,
            spec.dirty if dirty is None else dirty,
            spec.burn if burn is None else burn,
        ),
        cache=spec.cache,
        disk=p.disk(spec.name),
        nfs=NFS_ADDRESS,
        disk_user=DISK_USER,
        disk_group=DISK_GROUP,
        nics=nics,
        console=p.console_log(spec.name),
        leases=sanlock.lease_xml(p, spec.name) if with_lease else "",
        marker=definition_marker(p),
    )


# ------------------------------------------------------------------------------------------ virsh


def virsh(uri: str, *args: str, check: bool = True, timeout: float = 60) -> str:
    env = {**os.environ, **security.client_env(paths())}  # the lab's libvirtd want its SASL login
    return run(["virsh", "-q", "-c", uri, *args], check=check, timeout=timeout, env=env).stdout


def domains(uri: str) -> dict[str, str]:
    """name -> state ("running", "shut off", ...) of every domain defined or running on `uri`."""
    out = virsh(uri, "list", "--all")
    states = {}
    for line in out.splitlines():
        cols = line.split(None, 2)
        if len(cols) == 3:
            states[cols[1]] = cols[2].strip()
    return states


def placement() -> dict[str, dict[str, str]]:
    """Lab guest -> {host name: state} for every host that has it (running or just defined)."""
    where: dict[str, dict[str, str]] = {g.name: {} for g in GUESTS}
    for h in HOSTS:
        for name, state in domains(h.uri).items():
            if name in where:
                where[name][h.name] = state
    return where


def running_on(name: str) -> list[str]:
    """Hosts on which libvirt says `name` is running (exactly one, unless something is wrong)."""
    return [h for h, state in placement()[name].items() if state == "running"]


def current_host(name: str) -> str | None:
    """Where the guest is: the host running it, else a host where it is defined, else None."""
    hosts = placement()[name]
    running = [h for h, s in hosts.items() if s == "running"]
    if running:
        return running[0]
    return next(iter(hosts), None)


def define(p: Paths, uri: str, xml: str, name: str) -> None:
    """Define `name` on `uri` from `xml`, keeping the file in the lab's domains directory."""
    f = p.domain_xml(name)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(xml)
    virsh(uri, "define", str(f))


def ensure_disk(p: Paths, name: str) -> None:
    disk = p.disk(name)
    if not disk.exists():
        p.export.mkdir(parents=True, exist_ok=True)
        run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), f"{DISK_SIZE_MIB}M"])
    # The export squashes root: the image belongs to the user QEMU speaks as (also for older labs' images).
    own_for_qemu(disk, 0o600)


def ensure_all(p: Paths) -> list[str]:
    """Define missing guests on their initial host, start those meant to run. Guests found elsewhere
    (moved by a migration) stay where they are: `up` never changes placement, `reset` does."""
    p.logs.mkdir(parents=True, exist_ok=True)
    where = placement()
    to_start: list[tuple[str, str]] = []
    for spec in GUESTS:
        ensure_disk(p, spec.name)
        hosts = where[spec.name]
        if hosts and not _definition_current(p, spec.name, next(iter(hosts))):
            hosts = _redefine_where_it_is(p, spec, hosts)
        if not hosts:
            define(p, host_spec(spec.host).uri, domain_xml(p, spec), spec.name)
            hosts = {spec.host: "shut off"}
        hosts = _stop_if_hung(p, spec.name, hosts)
        if spec.start and "running" not in hosts.values():
            to_start.append((spec.name, next(iter(hosts))))
    # In parallel: each start costs ~1 s of libvirt/QEMU setup, mostly waiting.
    with ThreadPoolExecutor(max_workers=max(len(to_start), 1)) as pool:
        list(pool.map(lambda item: start_guest(host_spec(item[1]).uri, item[0]), to_start))
    return [name for name, _ in to_start]


# Both lab daemons share the root network namespace, and each picks the next free `vnetN` on its own:
# two guests starting at once on the two hosts can race for the same name (EBUSY). Real hosts each
# have their own namespace, so this is a lab artefact; a short wait and another try always resolves it.
_TAP_RACE = "Unable to create tap device"


def start_guest(uri: str, name: str, attempts: int = 4) -> None:
    for attempt in range(1, attempts + 1):
        try:
            virsh(uri, "start", name)
            return
        except LabError as e:
            if _TAP_RACE not in str(e) or attempt == attempts:
                raise
            time.sleep(0.3 * attempt)


# A running guest beats every second. One whose serial log has been silent this long is hung (a live
# move under TCG can leave a disk-writing guest so: docs/lab.md, known gaps); `up` restarts it.
HUNG_AFTER_S = 30


def _stop_if_hung(p: Paths, name: str, hosts: dict[str, str]) -> dict[str, str]:
    running = [h for h, state in hosts.items() if state == "running"]
    try:
        silent_s = time.time() - p.console_log(name).stat().st_mtime
    except FileNotFoundError:
        return hosts
    if len(running) != 1 or silent_s < HUNG_AFTER_S:
        return hosts
    print(f"lab: {name} runs on {running[0]} but has been silent for {silent_s:.0f} s: restarting it", flush=True)
    virsh(host_spec(running[0]).uri, "destroy", name, check=False)
    return {**hosts, running[0]: "shut off"}


def _definition_current(p: Paths, name: str, host: str) -> bool:
    xml = virsh(host_spec(host).uri, "dumpxml", "--inactive", name, check=False)
    return f"<description>{definition_marker(p)}</description>" in xml


def _redefine_where_it_is(p: Paths, spec: GuestSpec, hosts: dict[str, str]) -> dict[str, str]:
    """Replace an older lab's definition on the host that has the guest (the running one, if any);
    a running guest is stopped so it boots with the new one."""
    host = next((h for h, state in hosts.items() if state == "running"), next(iter(hosts)))
    undefine_everywhere(spec.name)
    define(p, host_spec(host).uri, domain_xml(p, spec), spec.name)
    return {host: "shut off"}


def destroy_all(uri: str) -> None:
    """Hard-stop every running domain of a host (the lab's only: its daemons run nothing else)."""
    for name, state in domains(uri).items():
        if state != "shut off":
            virsh(uri, "destroy", name, check=False)


def undefine_everywhere(name: str) -> None:
    for h in HOSTS:
        states = domains(h.uri)
        if name in states:
            if states[name] != "shut off":
                virsh(h.uri, "destroy", name, check=False)
            virsh(h.uri, "undefine", name, check=False)


def set_workload(name: str, fill: int, dirty: int, p: Paths | None = None, wait: bool = True, burn: int = 0) -> str:
    """Redefine guest `name` where it currently is with fill/dirty/burn on its kernel command line and
    (re)start it. Returns the host name. With `wait`, returns once the new boot's first heartbeat shows."""
    from .config import paths

    p = p or paths()
    spec = guest_spec(name)
    h = current_host(name) or spec.host
    uri = host_spec(h).uri
    if domains(uri).get(name, "shut off") != "shut off":
        virsh(uri, "destroy", name)
    mark = console_size(p, name)
    define(p, uri, domain_xml(p, spec, fill=fill, dirty=dirty, burn=burn), name)
    start_guest(uri, name)
    if wait:
        wait_heartbeat(name, after_offset=mark, timeout=60 + fill / 4, p=p)
    return h


# ------------------------------------------------------------------------------------------ heartbeat

# " up=" ends a whole beat line: a QEMU killed mid-line leaves "HB 4" of "HB 42 up=..." in the log.
_HB = re.compile(rb"^HB (\d+) up=", re.M)


def console_size(p: Paths, name: str) -> int:
    try:
        return p.console_log(name).stat().st_size
    except FileNotFoundError:
        return 0


def beats(name: str, after_offset: int = 0, p: Paths | None = None) -> list[int]:
    """Every heartbeat number in the guest's serial log after byte `after_offset`, in log order.

    The log is shared by source and destination QEMU (append mode), so during and after a live
    migration the count keeps rising in the same file. A guest with a disk also counts on from its disk's
    beat after a reboot (lab/image.py): its console's GUEST-BOOTED line, not the count, shows a reboot.
    """
    from .config import paths

    p = p or paths()
    try:
        with open(p.console_log(name), "rb") as f:
            f.seek(after_offset)
            data = f.read()
    except FileNotFoundError:
        return []
    return [int(n) for n in _HB.findall(data)]


def heartbeat(name: str, after_offset: int = 0, p: Paths | None = None) -> int | None:
    """The last heartbeat number in the guest's serial log (after byte `after_offset`), None if none yet."""
    found = beats(name, after_offset=after_offset, p=p)
    return found[-1] if found else None


def wait_heartbeat(
    name: str, above: int = 0, timeout: float = 60, after_offset: int = 0, p: Paths | None = None
) -> int:
    """Wait until the guest's heartbeat exceeds `above`; returns it. Raises LabError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        hb = heartbeat(name, after_offset=after_offset, p=p)
        if hb is not None and hb > above:
            return hb
        if time.monotonic() > deadline:
            raise LabError(f"{name}: no heartbeat above {above} within {timeout:.0f} s (last: {hb})")
        time.sleep(0.2)


def disk_heartbeat(name: str, p: Paths | None = None) -> int | None:
    """The heartbeat the guest last wrote to sector 0 of its NFS disk (read without locking)."""
    from .config import paths

    p = p or paths()
    out = run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -v 0 16", str(p.disk(name))], check=False).stdout
    # "00000000:  48 42 20 34 0a 00 ...  HB.4....": decode the hex column, not the dotted ASCII one.
    hexes = re.findall(r"^[0-9a-f]{8}:((?:\s+[0-9a-f]{2}){1,16})", out, re.M)
    data = bytes.fromhex("".join(h.replace(" ", "") for h in hexes))
    m = re.match(rb"HB (\d+)", data)
    return int(m.group(1)) if m else None
