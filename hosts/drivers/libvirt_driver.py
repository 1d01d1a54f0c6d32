"""The only module that imports libvirt (ruff's banned-api rule enforces it).

Functions take a libvirt URI and a domain UUID, and hand out the frozen dataclasses of `types`;
libvirt errors come out as our own exceptions carrying libvirt's message. Connections are opened
lazily (never at import), cached per URI and process, kept alive with libvirt keepalives, and dropped
when libvirt reports them closed. Migrations and their monitoring use connections of their own:
a thread blocked in a migrate call must not share its connection with the progress poller
(LAB-NOTES P1: a shared connection stalls for the keepalive interval).
"""

from __future__ import annotations

import logging
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import contextmanager

import libvirt
from django.conf import settings

from . import uri as uris
from .types import (
    CpuVerdict,
    DiskInfo,
    DomainInfo,
    DomainNotFound,
    DriverError,
    GuestCpu,
    HostInfo,
    HostUnreachable,
    JobStats,
    MigrationAborted,
    MigrationFailed,
    MigrationOptions,
    NicInfo,
    OperationInvalid,
    OperationUnsupported,
)

log = logging.getLogger(__name__)

KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "unknown",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}
_LIFECYCLE = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}
# Errors that mean "the daemon is gone or never answered", whatever call raised them.
_UNREACHABLE_CODES = {libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT}
_UNREACHABLE_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}

# libvirt calls its default error handler (printing to stderr) for every error; we raise instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

# ------------------------------------------------------------------------------ connections

_lock = threading.Lock()
_cache: dict[str, libvirt.virConnect] = {}
_fixed: dict[str, tuple[libvirt.virConnect, dict]] = {}  # host_info's unchanging part, per cached connection
_event_loop_started = False


def _ensure_event_loop() -> None:
    """Run libvirt's default event loop in a daemon thread, once per process.

    It must be registered before a connection opens for that connection to deliver events
    and keepalives, so every open goes through here first.
    """
    global _event_loop_started
    with _lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


def _translate(err: libvirt.libvirtError, uri: str = "", migration: bool = False) -> DriverError:
    code, domain = err.get_error_code(), err.get_error_domain()
    message = err.get_error_message() or str(err)
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return DomainNotFound(message, code, uri)
    if code == libvirt.VIR_ERR_NO_SUPPORT:
        return OperationUnsupported(message, code, uri)
    if code == libvirt.VIR_ERR_OPERATION_ABORTED:
        return MigrationAborted(message, code, uri)
    if migration:
        return MigrationFailed(message, code, uri)
    if code in _UNREACHABLE_CODES or domain in _UNREACHABLE_DOMAINS:
        return HostUnreachable(message, code, uri)
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return OperationInvalid(message, code, uri)
    return DriverError(message, code, uri)


def _no_prompt(_credentials, _opaque) -> int:
    """Nobody is there to type a password: a credential the auth file did not give fails the login."""
    return -1


# A daemon with SASL (the lab's) asks for a user name and password; libvirt takes them from the auth
# file (LIBVIRT_AUTH_FILE, else ~/.config/libvirt/auth.conf) before it would call the callback.
# libvirt.open() offers no credential types at all, so SASL would find "no worthy mechs".
_AUTH = [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], _no_prompt, None]


def _open_bounded(uri: str, timeout: float) -> libvirt.virConnect:
    """libvirt.open() has no timeout of its own; a black-holed address would hang a page.

    Every connection in the process opens here, and only a URI that passed the allow-list is opened
    (raises UriNotAllowed before libvirt sees it): see hosts/drivers/uri.py for what a URI can do.
    """
    safe = uris.checked(uri)
    _ensure_event_loop()
    box: dict = {}

    def target() -> None:
        try:
            box["conn"] = libvirt.openAuth(safe, _AUTH, 0)
        except libvirt.libvirtError as err:
            box["err"] = err

    worker = threading.Thread(target=target, name=f"libvirt-open {uri}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise HostUnreachable(f"no answer from {uri} within {timeout:g} s", None, uri)
    if "err" in box:
        err = _translate(box["err"], uri)
        # Failing to connect is "unreachable" whatever code libvirt chose for it.
        raise err if isinstance(err, HostUnreachable) else HostUnreachable(err.message, err.code, uri)
    conn = box["conn"]
    if not uri.startswith("test:"):
        try:
            conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
        except libvirt.libvirtError:
            log.debug("keepalive not supported on %s", uri)
    return conn


def open_connection(uri: str, timeout: float | None = None) -> libvirt.virConnect:
    """A new connection of its own (not cached); the caller closes it. Used for migrations."""
    return _open_bounded(uri, timeout or settings.LIBVIRT_TIMEOUT_SECONDS)


def _connection(uri: str) -> libvirt.virConnect:
    with _lock:
        conn = _cache.get(uri)
    if conn is not None:
        try:
            if conn.isAlive():
                return conn
        except libvirt.libvirtError:
            pass
        forget(uri)
    conn = _open_bounded(uri, settings.LIBVIRT_TIMEOUT_SECONDS)

    def closed(_conn, reason, _opaque) -> None:
        log.info("libvirt connection to %s closed (reason %s)", uri, reason)
        with _lock:
            if _cache.get(uri) is _conn:
                del _cache[uri]

    try:
        conn.registerCloseCallback(closed, None)
    except libvirt.libvirtError:
        pass  # the test driver has no close callbacks
    with _lock:
        _cache[uri] = conn
    return conn


def forget(uri: str) -> None:
    """Drop (and close) the cached connection to `uri`; the next call reconnects."""
    with _lock:
        conn = _cache.pop(uri, None)
        _fixed.pop(uri, None)
    if conn is not None:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


def close_all() -> None:
    for uri in list(_cache):
        forget(uri)


@contextmanager
def _calling(uri: str, migration: bool = False):
    """Translate libvirt errors; a connection-level failure also drops the cached connection."""
    try:
        yield
    except libvirt.libvirtError as err:
        translated = _translate(err, uri, migration)
        if isinstance(translated, HostUnreachable) or err.get_error_domain() in _UNREACHABLE_DOMAINS:
            forget(uri)
        raise translated from err


def _domain(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
    return conn.lookupByUUIDString(str(uuid))


# ------------------------------------------------------------------------------------ host


def _text(root: ET.Element, path: str, default: str = "") -> str:
    node = root.find(path)
    return node.text.strip() if node is not None and node.text else default


def _bridges(conn: libvirt.virConnect) -> tuple[str, ...]:
    """Bridges the host has, from libvirt's interface driver (inactive ones included)."""
    try:
        ifaces = conn.listAllInterfaces(0)
    except libvirt.libvirtError:
        return ()
    names = []
    for iface in ifaces:
        try:
            if ET.fromstring(iface.XMLDesc(0)).get("type") == "bridge":
                names.append(iface.name())
        except libvirt.libvirtError:
            continue
    return tuple(sorted(names))


def _fixed_facts(conn: libvirt.virConnect) -> dict:
    """What a daemon answers the same for as long as a connection to it lasts: a restart or an
    upgrade closes the connection, and the next one asks again."""
    caps = ET.fromstring(conn.getCapabilities())
    _model, memory_mib, cpus, *_ = conn.getInfo()
    return dict(
        hostname=conn.getHostname(),
        host_uuid=_text(caps, "host/uuid"),
        cpu_model=_text(caps, "host/cpu/model") or _text(caps, "host/cpu/arch"),
        cpus=cpus,
        memory_total_mib=memory_mib,
        libvirt_version=_dotted(conn.getLibVersion()),
        hypervisor_type=conn.getType(),
        hypervisor_version=_dotted(conn.getVersion()),
    )


def _host_info(uri: str, conn: libvirt.virConnect, fixed: dict | None = None) -> HostInfo:
    fixed = fixed or _fixed_facts(conn)
    try:
        free_mib = conn.getFreeMemory() // (1024 * 1024)
    except libvirt.libvirtError:
        free_mib = fixed["memory_total_mib"]
    return HostInfo(uri=uri, memory_free_mib=free_mib, bridges=_bridges(conn), **fixed)


def _dotted(version: int) -> str:
    """libvirt's packed version number (major * 1 000 000 + minor * 1000 + micro) as text."""
    return f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}"


def host_info(uri: str) -> HostInfo:
    """Facts about a host, on the cached connection. Only free memory and bridges are asked each time:
    the pre-flight calls this for both hosts on the request path and again when the job starts, and
    the rest (capabilities, versions, hostname) is five more calls whose answers cannot have changed."""
    with _calling(uri):
        conn = _connection(uri)
        with _lock:
            cached = _fixed.get(uri)
        if cached is None or cached[0] is not conn:
            cached = (conn, _fixed_facts(conn))
            with _lock:
                _fixed[uri] = cached
        return _host_info(uri, conn, cached[1])


def probe(uri: str, timeout: float | None = None) -> HostInfo:
    """Test a URI on a fresh connection (nothing cached): HostInfo, or HostUnreachable with libvirt's text."""
    conn = open_connection(uri, timeout)
    try:
        with _calling(uri):
            return _host_info(uri, conn)
    finally:
        conn.close()


def host_cpu_xml(uri: str) -> str:
    """The host's <cpu> element from its capabilities, for compare_cpu on another host."""
    with _calling(uri):
        caps = ET.fromstring(_connection(uri).getCapabilities())
    cpu = caps.find("host/cpu")
    return ET.tostring(cpu, encoding="unicode") if cpu is not None else ""


def compare_cpu(uri: str, cpu_xml: str) -> str:
    """libvirt's verdict on running host CPU `cpu_xml` here: identical, superset or incompatible."""
    with _calling(uri):
        result = _connection(uri).compareCPU(cpu_xml, 0)
    return _CPU_RESULTS.get(result, "incompatible")


_CPU_RESULTS = {libvirt.VIR_CPU_COMPARE_IDENTICAL: "identical", libvirt.VIR_CPU_COMPARE_SUPERSET: "superset"}


def guest_cpu(uri: str, uuid: str) -> GuestCpu:
    """The guest's CPU definition; for a running guest, the model as started (UPDATE_CPU expands
    host-model into the exact model and features the guest sees, which is what must exist on a target)."""
    with _calling(uri):
        dom = _domain(_connection(uri), uuid)
        flags = libvirt.VIR_DOMAIN_XML_UPDATE_CPU if dom.isActive() else 0
        root = ET.fromstring(dom.XMLDesc(flags))
    cpu = root.find("cpu")
    os_type = root.find("os/type")
    mode = "" if cpu is None else cpu.get("mode", "custom")
    if mode == "custom" and cpu.find("model") is None:
        mode = ""  # a <cpu> with only topology: QEMU's default model
    return GuestCpu(
        mode=mode,
        xml=ET.tostring(cpu, encoding="unicode") if cpu is not None else "",
        arch=os_type.get("arch", "") if os_type is not None else "",
        machine=os_type.get("machine", "") if os_type is not None else "",
        virt_type=root.get("type", ""),
    )


def compare_guest_cpu(uri: str, cpu: GuestCpu) -> CpuVerdict:
    """Can this host's hypervisor give the guest its CPU? libvirt's hypervisor-aware comparison
    (the same test libvirt makes when the guest starts there), with the missing features named."""
    try:
        with _calling(uri):
            result = _connection(uri).compareHypervisorCPU(
                None,
                cpu.arch or None,
                cpu.machine or None,
                cpu.virt_type or None,
                cpu.xml,
                libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE,
            )
    except DriverError as err:
        if (
            isinstance(err.__cause__, libvirt.libvirtError)
            and err.__cause__.get_error_code() == libvirt.VIR_ERR_CPU_INCOMPATIBLE
        ):
            return CpuVerdict("incompatible", err.message)
        raise
    return CpuVerdict(_CPU_RESULTS.get(result, "incompatible"))


# ---------------------------------------------------------------------------------- domains


def _disks(devices: ET.Element | None) -> tuple[DiskInfo, ...]:
    disks = []
    for disk in devices.findall("disk") if devices is not None else ():
        source = disk.find("source")
        driver = disk.find("driver")
        target = disk.find("target")
        src = source.attrib if source is not None else {}
        host = source.find("host") if source is not None else None
        disks.append(
            DiskInfo(
                target=target.get("dev", "") if target is not None else "",
                device=disk.get("device", "disk"),
                source_type=disk.get("type", "file"),
                source=src.get("file") or src.get("dev") or src.get("name") or src.get("volume") or "",
                source_protocol=src.get("protocol", ""),
                source_host=host.get("name", "") if host is not None else "",
                format=driver.get("type", "") if driver is not None else "",
                cache=driver.get("cache", "") if driver is not None else "",
            )
        )
    return tuple(disks)


def _nics(devices: ET.Element | None) -> tuple[NicInfo, ...]:
    nics = []
    for nic in devices.findall("interface") if devices is not None else ():
        mac, source, model = nic.find("mac"), nic.find("source"), nic.find("model")
        src = source.attrib if source is not None else {}
        nics.append(
            NicInfo(
                mac=mac.get("address", "") if mac is not None else "",
                kind=nic.get("type", ""),
                bridge=src.get("bridge", ""),
                network=src.get("network", ""),
                model=model.get("type", "") if model is not None else "",
            )
        )
    return tuple(nics)


def _kib_to_mib(root: ET.Element, path: str) -> int:
    node = root.find(path)
    if node is None or not node.text:
        return 0
    scale = {"KiB": 1024, "k": 1024, "MiB": 1 << 20, "M": 1 << 20, "GiB": 1 << 30, "G": 1 << 30, "b": 1}
    return int(node.text) * scale.get(node.get("unit", "KiB"), 1024) // (1 << 20)


def _domain_info(dom: libvirt.virDomain) -> DomainInfo:
    root = ET.fromstring(dom.XMLDesc(0))
    state, reason = dom.state()
    devices = root.find("devices")
    return DomainInfo(
        uuid=dom.UUIDString(),
        name=dom.name(),
        state=_STATES.get(state, "unknown"),
        persistent=bool(dom.isPersistent()),
        vcpus=int(_text(root, "vcpu", "1")),
        memory_mib=_kib_to_mib(root, "currentMemory") or _kib_to_mib(root, "memory"),
        disks=_disks(devices),
        nics=_nics(devices),
        # An incoming or switching-over guest is paused "for migration"; no job query needed,
        # so listing never waits behind a running migration's job lock.
        migrating=state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_MIGRATION,
    )


def list_domains(uri: str) -> list[DomainInfo]:
    """Every domain defined or running on the host. A domain that vanishes meanwhile is skipped."""
    with _calling(uri):
        domains = _connection(uri).listAllDomains(0)
    infos = []
    for dom in domains:
        try:
            with _calling(uri):
                infos.append(_domain_info(dom))
        except DomainNotFound:
            continue
    return infos


def get_domain(uri: str, uuid: str) -> DomainInfo:
    with _calling(uri):
        return _domain_info(_domain(_connection(uri), uuid))


def find_domain(uri: str, uuid: str) -> DomainInfo | None:
    """The domain, or None if this host has no domain with that UUID."""
    try:
        return get_domain(uri, uuid)
    except DomainNotFound:
        return None


def domain_xml(uri: str, uuid: str, migratable: bool = False) -> str:
    flags = libvirt.VIR_DOMAIN_XML_SECURE | (libvirt.VIR_DOMAIN_XML_MIGRATABLE if migratable else 0)
    with _calling(uri):
        return _domain(_connection(uri), uuid).XMLDesc(flags)


def _act(uri: str, uuid: str, method: str, *args) -> None:
    """Call one virDomain method by name on the cached connection."""
    with _calling(uri):
        getattr(_domain(_connection(uri), uuid), method)(*args)


def start(uri: str, uuid: str) -> None:
    _act(uri, uuid, "create")


def shutdown(uri: str, uuid: str) -> None:
    """Ask the guest OS to power off (ACPI); returns at once."""
    _act(uri, uuid, "shutdown")


def destroy(uri: str, uuid: str) -> None:
    """Pull the plug."""
    _act(uri, uuid, "destroy")


def suspend(uri: str, uuid: str) -> None:
    _act(uri, uuid, "suspend")


def resume(uri: str, uuid: str) -> None:
    _act(uri, uuid, "resume")


# ------------------------------------------------------------------------------------ events


class Subscription:
    """Handle for a libvirt event callback; `cancel()` deregisters it."""

    def __init__(self, uri: str, conn: libvirt.virConnect, ids: list[int]):
        self.uri, self._conn, self._ids = uri, conn, ids

    def cancel(self) -> None:
        for cb_id in self._ids:
            try:
                self._conn.domainEventDeregisterAny(cb_id)
            except libvirt.libvirtError:
                pass
        self._ids = []


def watch_lifecycle(uri: str, callback: Callable[[str, str, str], None]) -> Subscription:
    """Call `callback(uri, domain_uuid, event)` for every lifecycle event on the host.

    The callback runs on libvirt's event thread: keep it short (hand work to a queue).
    """

    def on_event(_conn, dom, event, _detail, _opaque) -> None:
        callback(uri, dom.UUIDString(), _LIFECYCLE.get(event, str(event)))

    with _calling(uri):
        conn = _connection(uri)
        cb_id = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_event, None)
    return Subscription(uri, conn, [cb_id])


# -------------------------------------------------------------------------------- migration


def _job_stats(raw: dict) -> JobStats:
    return JobStats(
        active=raw.get("type", 0) in (libvirt.VIR_DOMAIN_JOB_BOUNDED, libvirt.VIR_DOMAIN_JOB_UNBOUNDED),
        elapsed_ms=int(raw.get("time_elapsed", 0)),
        data_total=int(raw.get("data_total", 0)),
        data_processed=int(raw.get("data_processed", 0)),
        data_remaining=int(raw.get("data_remaining", 0)),
        memory_bps=int(raw.get("memory_bps", 0)),
        dirty_rate_pps=int(raw.get("memory_dirty_rate", 0)),
        page_size=int(raw.get("memory_page_size", 4096) or 4096),
        iteration=int(raw.get("memory_iteration", 0)),
        downtime_ms=int(raw["downtime"]) if "downtime" in raw else None,
        setup_time_ms=int(raw["setup_time"]) if "setup_time" in raw else None,
        postcopy=raw.get("operation") == getattr(libvirt, "VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT", -1)
        and bool(raw.get("memory_postcopy_requests")),
        raw=dict(raw),
    )


def compression_cache(uri: str, uuid: str) -> int | None:
    """Bytes of XBZRLE cache QEMU keeps for this guest, None if it is not running. Asking proves the
    guest's QEMU can compress a migration: libvirt refuses the question when it can't."""
    with _calling(uri):
        dom = _domain(_connection(uri), uuid)
        if not dom.isActive():
            return None
        size = dom.migrateGetCompressionCache(0)
    if size is None:
        # libvirt-python returns None here instead of raising; the reason is libvirt's last error.
        raise OperationUnsupported(libvirt.virGetLastErrorMessage() or "no answer", None, uri)
    return int(size)


def migration_flags(options: MigrationOptions) -> int:
    flags = libvirt.VIR_MIGRATE_PEER2PEER
    if options.live:
        flags |= libvirt.VIR_MIGRATE_LIVE
        if options.auto_converge:
            flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        if options.allow_postcopy:
            flags |= libvirt.VIR_MIGRATE_POSTCOPY
        if options.compressed:
            flags |= libvirt.VIR_MIGRATE_COMPRESSED
    else:
        flags |= libvirt.VIR_MIGRATE_OFFLINE
    if options.persist_dest or not options.live:
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST  # an offline move is nothing but the definition
    if options.undefine_source:
        flags |= libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    if options.unsafe:
        flags |= libvirt.VIR_MIGRATE_UNSAFE
    if options.live and options.tls:
        # QEMU to QEMU over TLS with the hosts' migrate_tls_x509 certificates (an offline move sends
        # no guest memory, only the definition over the libvirt connection).
        flags |= libvirt.VIR_MIGRATE_TLS
    return flags


def migrate(src_uri: str, dst_uri: str, uuid: str, options: MigrationOptions) -> None:
    """Move a domain from src to dst, peer-to-peer; blocks until libvirt says done.

    Opens a connection of its own to the source, so progress polling (MigrationMonitor) and
    controls never queue behind this call. Raises MigrationAborted when cancelled, MigrationFailed
    with libvirt's message otherwise; HostUnreachable if the source cannot be reached at all.
    """
    # Peer-to-peer: the *source libvirtd* opens dst_uri and hands migration_uri to QEMU, so both are
    # checked and rebuilt here, whatever the caller passed.
    dst = uris.checked(dst_uri)
    stream = uris.checked_migration_uri(options.migration_uri) if options.migration_uri else ""
    conn = open_connection(src_uri)
    try:
        with _calling(src_uri, migration=True):
            dom = _domain(conn, uuid)
            params: dict = {}
            if options.live and options.bandwidth_mibps:
                params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(options.bandwidth_mibps)
            if stream:
                params[libvirt.VIR_MIGRATE_PARAM_URI] = stream
            if options.live and options.max_downtime_ms:
                dom.migrateSetMaxDowntime(int(options.max_downtime_ms), 0)
            dom.migrateToURI3(dst, params, migration_flags(options))
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


class MigrationMonitor:
    """A dedicated connection to the source host for one migration's stats, events and controls."""

    def __init__(self, uri: str, uuid: str):
        self.uri, self.uuid = uri, str(uuid)
        self._conn = open_connection(uri)
        self._ids: list[int] = []
        with _calling(uri):
            self._dom = _domain(self._conn, self.uuid)

    def stats(self) -> JobStats:
        with _calling(self.uri):
            return _job_stats(self._dom.jobStats(0))

    def completed_stats(self) -> JobStats:
        """The finished job's figures (downtime, total time); ask the source right after the move."""
        with _calling(self.uri):
            return _job_stats(self._dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED))

    def abort(self) -> None:
        with _calling(self.uri):
            self._dom.abortJob()

    def set_max_speed(self, mibps: int) -> None:
        with _calling(self.uri):
            self._dom.migrateSetMaxSpeed(int(mibps), 0)

    def start_postcopy(self) -> None:
        with _calling(self.uri):
            self._dom.migrateStartPostCopy(0)

    def on_events(self, callback: Callable[[str, dict], None]) -> None:
        """`callback(kind, data)` for this domain: ("iteration", {"iteration": n}),
        ("completed", JobStats.raw) and ("lifecycle", {"event": name}). Runs on the event thread."""

        def iteration(_c, _d, it, _o) -> None:
            callback("iteration", {"iteration": it})

        def completed(_c, _d, stats, _o) -> None:
            callback("completed", dict(stats))

        def lifecycle(_c, _d, event, _detail, _o) -> None:
            callback("lifecycle", {"event": _LIFECYCLE.get(event, str(event))})

        with _calling(self.uri):
            for event_id, fn in (
                (libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION, iteration),
                (libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, completed),
                (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle),
            ):
                self._ids.append(self._conn.domainEventRegisterAny(self._dom, event_id, fn, None))

    def close(self) -> None:
        for cb_id in self._ids:
            try:
                self._conn.domainEventDeregisterAny(cb_id)
            except libvirt.libvirtError:
                pass
        self._ids = []
        try:
            self._conn.close()
        except libvirt.libvirtError:
            pass

    def __enter__(self) -> MigrationMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def migration_parameters(uri: str, uuid: str) -> dict:
    """QEMU's own migration parameters for a running guest (QMP query-migrate-parameters): e.g.
    `tls-creds` names the TLS credentials object while an encrypted move runs. Asking QEMU directly
    marks the domain "tainted: custom-monitor" in libvirt: for tests and diagnosis, not the dashboard."""
    import json

    import libvirt_qemu

    with _calling(uri):
        dom = _domain(_connection(uri), uuid)
        reply = libvirt_qemu.qemuMonitorCommand(dom, '{"execute": "query-migrate-parameters"}', 0)
    return json.loads(reply).get("return", {})


def job_stats(uri: str, uuid: str, completed: bool = False) -> JobStats:
    """One-off stats on the cached connection (the reconciler's question "is a job still running?")."""
    flags = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED if completed else 0
    with _calling(uri):
        return _job_stats(_domain(_connection(uri), uuid).jobStats(flags))


def abort_job(uri: str, uuid: str) -> None:
    _act(uri, uuid, "abortJob")


def set_max_speed(uri: str, uuid: str, mibps: int) -> None:
    _act(uri, uuid, "migrateSetMaxSpeed", int(mibps), 0)


def start_postcopy(uri: str, uuid: str) -> None:
    _act(uri, uuid, "migrateStartPostCopy", 0)
