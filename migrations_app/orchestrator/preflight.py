"""Pre-flight checklist of a guest migration.

The checks are pure functions over frozen snapshots (built from DB rows plus live libvirt facts), so they
are unit-tested without libvirt; `gather()` is the thin part that asks the driver. The same checklist backs
the per-target readiness in the Migrate form, is stored with the job, and runs again when the job starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class CheckItem:
    key: str
    label: str
    status: str  # pass / warn / fail
    evidence: str
    hint: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StorageSnap:
    name: str
    protocol: str
    address: str
    export_path: str
    mount_path: str

    @property
    def shared(self) -> bool:
        return self.protocol != "local"

    def holds_file(self, path: str) -> bool:
        for root in {self.mount_path, self.export_path}:
            root = root.rstrip("/")
            if root and path.startswith(root + "/"):
                return True
        return False

    def holds_network(self, protocol: str, host: str, name: str) -> bool:
        root = self.export_path.rstrip("/")
        return (
            protocol == self.protocol
            and host == self.address
            and bool(root)
            and (name.startswith(root + "/") or name.startswith(self.mount_path.rstrip("/") + "/"))
        )


@dataclass(frozen=True)
class HostSnap:
    pk: int
    name: str
    state: str  # Hypervisor.State value
    reachable: bool
    error: str = ""
    host_uuid: str = ""
    memory_free_mib: int = 0
    bridges: tuple[str, ...] = ()
    storage: tuple[StorageSnap, ...] = ()
    outgoing_active: int = 0  # jobs holding an outgoing slot (other than the one checked)
    incoming_active: int = 0
    reserved_incoming_mib: int = 0  # memory of guests other in-flight migrations bring here
    domain_names: tuple[str, ...] = ()
    domain_uuids: tuple[str, ...] = ()
    hypervisor_type: str = ""  # "QEMU", "TEST", ...
    hypervisor_version: str = ""
    migration_tls: bool = False  # an admin says its QEMU has migration TLS certificates
    health: str = "healthy"  # Hypervisor.Health: a suspect or failed host takes no guests (docs/ha.md)


@dataclass(frozen=True)
class DiskSnap:
    target: str
    device: str
    source_type: str
    source: str
    source_protocol: str = ""
    source_host: str = ""
    cache: str = ""


@dataclass(frozen=True)
class NicSnap:
    mac: str
    kind: str
    bridge: str = ""
    network: str = ""


@dataclass(frozen=True)
class GuestSnap:
    name: str
    uuid: str
    power: str  # Guest.Power value, live from libvirt when reachable
    memory_mib: int
    disks: tuple[DiskSnap, ...] = ()
    nics: tuple[NicSnap, ...] = ()


@dataclass(frozen=True)
class Facts:
    guest: GuestSnap
    source: HostSnap
    target: HostSnap
    kind: str  # "live" / "offline"
    options: dict = field(default_factory=dict)
    cpu_result: str = ""  # "identical", "superset", "incompatible", "default" (no model to compare), "" = not compared
    cpu_message: str = ""
    compression_cache: int | None = None  # the source QEMU's XBZRLE cache, when compression was asked for
    compression_error: str = ""  # libvirt's answer when the source could not say
    max_outgoing: int = 1
    max_incoming: int = 1


# ------------------------------------------------------------------------------------------ checks


def check_hosts_reachable(f: Facts) -> CheckItem:
    down = [h for h in (f.source, f.target) if not h.reachable]
    if not down:
        return CheckItem(
            "hosts_reachable", "Both hosts reachable", PASS, f"{f.source.name} and {f.target.name} answered"
        )
    ev = "; ".join(f"{h.name}: {h.error or 'no answer'}" for h in down)
    return CheckItem("hosts_reachable", "Both hosts reachable", FAIL, ev, "Start libvirtd on that host or fix its URI.")


def check_hosts_distinct(f: Facts) -> CheckItem:
    label = "Source and target are different hosts"
    if f.source.pk == f.target.pk:
        return CheckItem(
            "hosts_distinct", label, FAIL, f"source and target are both {f.source.name}", "Pick another target."
        )
    if f.source.host_uuid and f.source.host_uuid == f.target.host_uuid:
        return CheckItem(
            "hosts_distinct",
            label,
            FAIL,
            f"{f.source.name} and {f.target.name} report the same host UUID {f.source.host_uuid}",
            "Give each libvirtd its own host_uuid (libvirtd.conf); libvirt refuses to migrate to the same host.",
        )
    if not (f.source.host_uuid and f.target.host_uuid):
        return CheckItem("hosts_distinct", label, WARN, "a host UUID is unknown", "Refresh the inventory.")
    return CheckItem("hosts_distinct", label, PASS, f"host UUIDs {f.source.host_uuid[:8]}… ≠ {f.target.host_uuid[:8]}…")


def check_guest_state(f: Facts) -> CheckItem:
    label = "Guest state fits the mode"
    power = f.guest.power
    if f.kind == "live":
        if power in ("running", "paused"):
            return CheckItem("guest_state", label, PASS, f"guest is {power}")
        return CheckItem(
            "guest_state", label, FAIL, f"guest is {power}; a live move needs it running", "Use an offline move."
        )
    if power == "shutoff":
        return CheckItem("guest_state", label, PASS, "guest is shut off")
    if power in ("running", "paused", "blocked") and f.options.get("shutdown_first"):
        return CheckItem("guest_state", label, WARN, f"guest is {power}; it will be shut down first")
    return CheckItem(
        "guest_state",
        label,
        FAIL,
        f"guest is {power}; an offline move needs it shut off",
        "Tick 'shut the guest down first' or use a live move.",
    )


def check_not_on_target(f: Facts) -> CheckItem:
    label = "No guest of that name or UUID on the target"
    if not f.target.reachable:
        return CheckItem("not_on_target", label, WARN, "target did not answer")
    clash = []
    if f.guest.name in f.target.domain_names:
        clash.append(f"name {f.guest.name}")
    if f.guest.uuid.lower() in (u.lower() for u in f.target.domain_uuids):
        clash.append(f"UUID {f.guest.uuid}")
    if clash:
        return CheckItem(
            "not_on_target",
            label,
            FAIL,
            f"{f.target.name} already has a domain with {' and '.join(clash)}",
            "Undefine the stale copy on the target first.",
        )
    return CheckItem("not_on_target", label, PASS, f"{f.target.name} has no domain {f.guest.name}")


def disk_storage(disk: DiskSnap, storage: tuple[StorageSnap, ...]) -> StorageSnap | None:
    for s in storage:
        if disk.source_type == "network" and s.holds_network(disk.source_protocol, disk.source_host, disk.source):
            return s
        if disk.source_type in ("file", "block", "volume") and s.holds_file(disk.source):
            return s
    return None


def _real_disks(f: Facts) -> list[DiskSnap]:
    return [d for d in f.guest.disks if d.source]  # an empty cdrom drive moves with no storage


def check_shared_storage(f: Facts) -> CheckItem:
    label = "Every disk is on storage both hosts share"
    bad, where = [], []
    for d in _real_disks(f):
        on_src = disk_storage(d, f.source.storage)
        on_dst = disk_storage(d, f.target.storage)
        if on_src is None or on_dst is None or on_src.name != on_dst.name or not on_src.shared:
            missing = f.target.name if on_src and not on_dst else "both hosts" if not on_src else "a shared export"
            where_from = f"{d.source_protocol}://{d.source_host}" if d.source_protocol else ""
            bad.append(f"{d.target} ({where_from}{d.source}) not on {missing}")
        else:
            where.append(f"{d.target} on {on_src.name}")
    if bad:
        return CheckItem(
            "shared_storage",
            label,
            FAIL,
            "; ".join(bad),
            "Attach the storage server to both hypervisors, or move the disk onto shared storage.",
        )
    return CheckItem("shared_storage", label, PASS, "; ".join(where) or "guest has no disks")


def check_cache_none(f: Facts) -> CheckItem:
    label = "Every disk uses cache='none' (live)"
    if f.kind != "live":
        return CheckItem("cache_none", label, PASS, "not needed for an offline move")
    bad = [
        f"{d.target} has cache='{d.cache or 'default'}'"
        for d in _real_disks(f)
        if d.device == "disk" and d.cache != "none"
    ]
    if bad:
        return CheckItem(
            "cache_none",
            label,
            FAIL,
            "; ".join(bad),
            "Set <driver cache='none'/> on the disk (needs a guest restart), or move it offline.",
        )
    return CheckItem("cache_none", label, PASS, "all disks cache='none'")


def check_bridges(f: Facts) -> CheckItem:
    label = "Every bridge the guest uses exists on the target"
    need = sorted({n.bridge for n in f.guest.nics if n.kind == "bridge" and n.bridge})
    missing = [b for b in need if b not in f.target.bridges]
    if missing:
        return CheckItem(
            "bridges",
            label,
            FAIL,
            f"{f.target.name} lacks bridge(s) {', '.join(missing)} (has: {', '.join(f.target.bridges) or 'none'})",
            "Create the bridge on the target or pick a target that has it.",
        )
    return CheckItem(
        "bridges", label, PASS, f"bridges {', '.join(need)} present" if need else "guest has no bridged NIC"
    )


def check_cpu(f: Facts) -> CheckItem:
    label = "CPU compatible (libvirt CPU comparison)"
    if f.cpu_result in ("identical", "superset"):
        return CheckItem("cpu", label, PASS, f"target CPU is {f.cpu_result} ({f.cpu_message})".rstrip(" ()"))
    if f.cpu_result == "default":
        return CheckItem("cpu", label, PASS, f.cpu_message)
    if f.cpu_result == "incompatible":
        # An offline move only copies the definition; it matters once the guest starts on the target.
        starts_there = f.kind == "live" or f.options.get("start_on_target")
        return CheckItem(
            "cpu",
            label,
            FAIL if starts_there else WARN,
            f"libvirt: {f.cpu_message or 'incompatible'}",
            "Give the guest a CPU model both hosts provide (e.g. a baseline model), or pick another target.",
        )
    return CheckItem("cpu", label, WARN, f"not compared: {f.cpu_message or 'unknown'}")


def check_memory(f: Facts) -> CheckItem:
    label = "Enough free memory on the target"
    free = f.target.memory_free_mib - f.target.reserved_incoming_mib
    runs_on_target = f.kind == "live" or f.options.get("start_on_target")
    ev = (
        f"needs {f.guest.memory_mib} MiB; {f.target.name} has {f.target.memory_free_mib} MiB free"
        f" - {f.target.reserved_incoming_mib} MiB reserved by moves in flight = {free} MiB"
    )
    if free >= f.guest.memory_mib:
        return CheckItem("memory", label, PASS, ev)
    if not runs_on_target:
        return CheckItem("memory", label, WARN, ev + " (only needed to start it there)")
    return CheckItem("memory", label, FAIL, ev, "Free memory on the target or pick another one.")


def check_target_state(f: Facts) -> CheckItem:
    label = "Target accepts guests"
    if f.target.state == "maintenance":
        return CheckItem(
            "target_state", label, FAIL, f"{f.target.name} is in maintenance", "Take it out of maintenance."
        )
    if f.target.state == "offline":
        return CheckItem("target_state", label, FAIL, f"{f.target.name} is offline", "Check the host.")
    if f.target.health != "healthy":
        return CheckItem(
            "target_state",
            label,
            FAIL,
            f"{f.target.name} is {f.target.health}: it takes no guests until an operator clears it",
            "Check the host, then clear it on its page.",
        )
    return CheckItem("target_state", label, PASS, f"{f.target.name} is {f.target.state}")


def check_concurrency(f: Facts) -> CheckItem:
    label = "Per-host migration slots"
    busy = []
    if f.source.outgoing_active >= f.max_outgoing:
        busy.append(f"{f.source.name} already sends {f.source.outgoing_active}/{f.max_outgoing}")
    if f.target.incoming_active >= f.max_incoming:
        busy.append(f"{f.target.name} already receives {f.target.incoming_active}/{f.max_incoming}")
    if busy:
        return CheckItem("concurrency", label, WARN, "; ".join(busy) + ": the move will wait (queued)")
    return CheckItem("concurrency", label, PASS, "a slot is free on both hosts")


# XBZRLE, what libvirt's VIR_MIGRATE_COMPRESSED uses by default, arrived in QEMU 1.2.
XBZRLE_SINCE = (1, 2)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def wants_compression(kind: str, options: dict) -> bool:
    """Compression applies to live moves only (an offline move sends no memory)."""
    return kind == "live" and bool(options.get("compressed"))


def check_compression(f: Facts) -> CheckItem | None:
    """Only when a live move asks for compression: both QEMUs must be able to do it."""
    if not wants_compression(f.kind, f.options):
        return None
    label = "Both hosts can compress the migration (XBZRLE)"
    hint = "Untick compression, or upgrade QEMU on that host."
    if f.compression_error:
        return CheckItem("compression", label, FAIL, f"{f.source.name}: libvirt: {f.compression_error}", hint)
    if f.target.hypervisor_type != "QEMU" or _version(f.target.hypervisor_version) < XBZRLE_SINCE:
        have = f"{f.target.hypervisor_type or 'unknown'} {f.target.hypervisor_version}".strip()
        return CheckItem(
            "compression", label, FAIL, f"{f.target.name} runs {have}; XBZRLE needs QEMU 1.2 or newer", hint
        )
    if f.compression_cache is None:
        return CheckItem("compression", label, WARN, f"not checked: {f.guest.name} is not running on {f.source.name}")
    return CheckItem(
        "compression",
        label,
        PASS,
        f"{f.source.name}'s QEMU keeps a {f.compression_cache // (1 << 20)} MiB XBZRLE cache for the guest; "
        f"{f.target.name} runs QEMU {f.target.hypervisor_version}",
    )


# QEMU took TLS for migration (the tls-creds parameter) in 2.9; libvirt's VIR_MIGRATE_TLS needs it.
TLS_SINCE = (2, 9)


def wants_tls(kind: str, options: dict) -> bool:
    """Only a live move sends guest memory between the QEMUs; an offline one sends a definition."""
    return kind == "live" and bool(options.get("tls"))


def check_tls(f: Facts) -> CheckItem | None:
    """Only when a live move asks for TLS: both hosts set up for it, and their QEMUs able to.

    libvirt does not say whether a host has certificates (qemu.conf is not visible through its API), so
    the set-up comes from the hypervisor's "Encrypted migration set up" flag. A host that claims it and
    lacks the files fails the move before any memory is sent: the receiving QEMU cannot load its
    certificates and libvirt refuses in the prepare step."""
    if not wants_tls(f.kind, f.options):
        return None
    label = "Both hosts can encrypt the migration (TLS)"
    hint = (
        "On that host give QEMU a CA and host certificates (qemu.conf migrate_tls_x509_cert_dir, "
        "migrate_tls_x509_verify = 1), then tick “Encrypted migration set up” on its hypervisor page; "
        "or untick “Encrypted (TLS)”."
    )
    missing = [h.name for h in (f.source, f.target) if not h.migration_tls]
    if missing:
        return CheckItem("tls", label, FAIL, f"{' and '.join(missing)}: encrypted migration is not set up", hint)
    old = [
        f"{h.name} runs {h.hypervisor_type or 'unknown'} {h.hypervisor_version}".rstrip()
        for h in (f.source, f.target)
        if h.reachable and (h.hypervisor_type != "QEMU" or _version(h.hypervisor_version) < TLS_SINCE)
    ]
    if old:
        return CheckItem("tls", label, FAIL, "; ".join(old) + "; TLS migration needs QEMU 2.9 or newer", hint)
    return CheckItem(
        "tls",
        label,
        PASS,
        f"{f.source.name} and {f.target.name} have migration certificates; QEMU checks the other side's "
        "certificate against the lab CA",
    )


CHECKS = (
    check_hosts_reachable,
    check_hosts_distinct,
    check_target_state,
    check_guest_state,
    check_not_on_target,
    check_shared_storage,
    check_cache_none,
    check_bridges,
    check_cpu,
    check_memory,
    check_concurrency,
    check_compression,
    check_tls,
)


def run_checks(facts: Facts) -> list[CheckItem]:
    """Every check that applies (a check answers None when its option was not chosen)."""
    return [item for item in (check(facts) for check in CHECKS) if item is not None]


def verdict(items: list[CheckItem] | list[dict]) -> str:
    """'blocked' if any fail, 'warning' if any warn, else 'ready'."""
    statuses = {i["status"] if isinstance(i, dict) else i.status for i in items}
    return "blocked" if FAIL in statuses else "warning" if WARN in statuses else "ready"


def failures(items: list[dict]) -> list[dict]:
    return [i for i in items if i["status"] == FAIL]
