"""What the libvirt driver hands out and raises. Plain Python: importing this never imports libvirt.

Everything is a frozen dataclass so nothing outside the driver ever holds a live virDomain/virConnect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ----------------------------------------------------------------------------------------- errors


class DriverError(Exception):
    """Base of every error the driver raises; `message` is libvirt's own text, `code` its error code."""

    def __init__(self, message: str, code: int | None = None, uri: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.uri = uri

    def __str__(self) -> str:
        return self.message


class HostUnreachable(DriverError):
    """The libvirt daemon behind a URI could not be reached (refused, timed out, connection lost)."""


class DomainNotFound(DriverError):
    """No domain with that name or UUID on this host."""


class OperationUnsupported(DriverError):
    """The hypervisor driver does not implement the call (e.g. jobStats on the test driver)."""


class OperationInvalid(DriverError):
    """The call does not fit the domain's state (e.g. start a running domain)."""


class LeaseHeld(DriverError):
    """The lock manager refused the guest's lease: another host holds it (its QEMU may still run there)."""


class MigrationFailed(DriverError):
    """libvirt refused or failed a migration; the message says why."""


class MigrationAborted(MigrationFailed):
    """The migration was cancelled (abortJob); the guest is still on the source."""


# ------------------------------------------------------------------------------------------ facts


@dataclass(frozen=True)
class HostInfo:
    uri: str
    hostname: str
    host_uuid: str
    cpu_model: str
    cpus: int
    memory_total_mib: int
    memory_free_mib: int
    libvirt_version: str
    hypervisor_type: str
    bridges: tuple[str, ...] = ()
    hypervisor_version: str = ""  # e.g. QEMU's "7.2.22"


@dataclass(frozen=True)
class DiskInfo:
    target: str
    device: str  # disk, cdrom, floppy, lun
    source_type: str  # file, block, network, volume
    source: str  # path (file/block) or network name (e.g. the NFS path)
    source_protocol: str = ""  # nfs, rbd, iscsi ... for network disks
    source_host: str = ""
    format: str = ""
    cache: str = ""  # '' means the hypervisor default


@dataclass(frozen=True)
class NicInfo:
    mac: str
    kind: str  # bridge, network, user, direct ...
    bridge: str = ""
    network: str = ""
    model: str = ""


@dataclass(frozen=True)
class DomainInfo:
    uuid: str
    name: str
    state: str  # one of hosts.models.Guest.Power values
    persistent: bool
    vcpus: int
    memory_mib: int
    disks: tuple[DiskInfo, ...] = ()
    nics: tuple[NicInfo, ...] = ()
    migrating: bool = False  # libvirt reports an active job of migration type on this host
    leases: tuple[str, ...] = ()  # "<lockspace>/<key>" of each <lease> (the lock manager's fence, docs/ha.md)


@dataclass(frozen=True)
class GuestCpu:
    """The CPU a guest runs with, and what libvirt needs to judge it on another host."""

    mode: str  # custom, host-model, host-passthrough, maximum; "" = no <cpu>: QEMU's default model
    xml: str  # the <cpu> element; for a running guest the model libvirt actually started (expanded)
    arch: str
    machine: str
    virt_type: str  # kvm or qemu (TCG)


@dataclass(frozen=True)
class CpuVerdict:
    result: str  # identical, superset or incompatible
    message: str = ""  # libvirt's words, e.g. which features the host lacks


@dataclass(frozen=True)
class JobStats:
    """One sample of a running (or completed) libvirt job. Byte counts are of all data (RAM + disk)."""

    active: bool
    elapsed_ms: int = 0
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    memory_bps: int = 0  # throughput, bytes/s
    dirty_rate_pps: int = 0  # pages dirtied per second (0 during the first pass)
    page_size: int = 4096
    iteration: int = 0
    downtime_ms: int | None = None  # only for completed jobs
    setup_time_ms: int | None = None
    postcopy: bool = False
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def dirty_rate_bps(self) -> int:
        return self.dirty_rate_pps * self.page_size


@dataclass(frozen=True)
class DirtyRate:
    """libvirt's last page-sampling measurement of a guest's memory dirty rate."""

    status: str  # unstarted / measuring / measured
    mib_per_s: float | None = None  # libvirt says "megabytes"; QEMU computes MiB (pages x 4 KiB / 2^20)
    # When QEMU started it, in seconds of the host's monotonic clock (QEMU_CLOCK_REALTIME): it tells one
    # measurement from the next, but it is no wall time (on the lab it was the host's uptime, 1795).
    started_s: int | None = None
    period_s: int = 0


@dataclass(frozen=True)
class MigrationOptions:
    """What an operator chose for one guest migration (mirrors migrations_app's form)."""

    live: bool = True
    bandwidth_mibps: int = 0  # 0 = unlimited
    max_downtime_ms: int = 0  # 0 = libvirt/QEMU default (300 ms)
    auto_converge: bool = False
    allow_postcopy: bool = False
    compressed: bool = False
    persist_dest: bool = True
    undefine_source: bool = True
    unsafe: bool = False  # file disks on a plain shared dir need libvirt's UNSAFE flag (docs/driver.md)
    tls: bool = False  # encrypt QEMU's migration stream (VIR_MIGRATE_TLS; both hosts need certificates)
    migration_uri: str = ""  # tcp://addr of the destination's migration address, if set


@dataclass(frozen=True)
class GuestCounters:
    """One guest's raw counters from a host's bulk stats call. None: the hypervisor did not report it."""

    uuid: str
    state: str
    vcpus: int | None = None
    cpu_time_ns: int | None = None  # cumulative, all vCPUs and emulator threads
    memory_kib: int | None = None  # balloon rss when known (what the host pays), else the balloon's current size
    block_rd_bytes: int | None = None  # cumulative, summed over disks
    block_wr_bytes: int | None = None
    net_rx_bytes: int | None = None  # cumulative, summed over interfaces
    net_tx_bytes: int | None = None


@dataclass(frozen=True)
class LoadSample:
    """A host's raw load counters from one round of calls; rates need two samples (hosts.load).

    `at_ns` is the local wall clock when the sample was taken (the divisor for guest CPU time).
    `missing` names what the hypervisor driver could not report (libvirt's test driver has no node
    memory stats and reports only the state of its domains).
    """

    uri: str
    at_ns: int
    cpus: int
    cpu_user_ns: int | None
    cpu_kernel_ns: int | None
    cpu_idle_ns: int | None
    cpu_iowait_ns: int | None
    memory_total_kib: int
    memory_free_kib: int  # free + buffers + cached when node memory stats exist: what the host can reclaim
    guests: tuple[GuestCounters, ...] = ()
    missing: tuple[str, ...] = ()
