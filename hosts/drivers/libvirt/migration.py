"""Moving a domain between hosts: the flags and parameters of a move, the move itself, and the monitor
that watches and steers it on a connection of its own (see docs/driver.md, "One connection per migration")."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import libvirt

from hosts.drivers import uri as uris
from hosts.drivers.types import JobStats, MigrationOptions, OperationUnsupported

from . import parse
from .connection import cached, calling, close_quietly, deregister_quietly, lookup, open_connection
from .domains import act


def job_stats_from(raw: dict[str, Any]) -> JobStats:
    """A JobStats from libvirt's typed-parameter dict (virDomainGetJobStats or a JOB_COMPLETED event)."""
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
    with calling(uri):
        dom = lookup(cached(uri), uuid)
        if not dom.isActive():
            return None
        size = dom.migrateGetCompressionCache(0)
    if size is None:
        # libvirt-python returns None here instead of raising; the reason is libvirt's last error.
        raise OperationUnsupported(libvirt.virGetLastErrorMessage() or "no answer", None, uri)
    return int(size)


def migration_flags(options: MigrationOptions) -> int:
    flags: int = libvirt.VIR_MIGRATE_PEER2PEER
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


def migration_params(options: MigrationOptions, stream_uri: str) -> dict[str, Any]:
    """migrateToURI3's typed parameters: the bandwidth cap of a live move and the checked stream URI."""
    params: dict[str, Any] = {}
    if options.live and options.bandwidth_mibps:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(options.bandwidth_mibps)
    if stream_uri:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = stream_uri
    return params


class MoveConnection:
    """A connection of its own to a move's source, opened ahead of `migrate` (the orchestrator opens it
    while the pre-flight re-runs, so the move does not wait for a connection and its authentication).
    `migrate` takes it over and closes it; `close()` is for a move that does not happen."""

    def __init__(self, uri: str):
        self.uri = uri
        self._conn: libvirt.virConnect | None = open_connection(uri)

    def take(self) -> libvirt.virConnect | None:
        """The connection if it is still alive (it is the caller's then), else None."""
        conn, self._conn = self._conn, None
        try:
            if conn is not None and conn.isAlive():
                return conn
        except libvirt.libvirtError:
            pass
        if conn is not None:
            close_quietly(conn)
        return None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            close_quietly(conn)


def migrate(
    src_uri: str, dst_uri: str, uuid: str, options: MigrationOptions, via: MoveConnection | None = None
) -> None:
    """Move a domain from src to dst, peer-to-peer; blocks until libvirt says done.

    Runs on a connection of its own to the source (`via`, opened ahead, or a new one), so progress
    polling (MigrationMonitor) and controls never queue behind this call. Raises MigrationAborted
    when cancelled, MigrationFailed with libvirt's message otherwise; HostUnreachable if the source
    cannot be reached at all.
    """
    # Peer-to-peer: the *source libvirtd* opens dst_uri and hands migration_uri to QEMU, so both are
    # checked and rebuilt here, whatever the caller passed.
    dst = uris.checked(dst_uri)
    stream = uris.checked_migration_uri(options.migration_uri) if options.migration_uri else ""
    conn = via.take() if via is not None and via.uri == src_uri else None
    if conn is None:
        conn = open_connection(src_uri)
    try:
        with calling(src_uri, migration=True):
            dom = lookup(conn, uuid)
            params = migration_params(options, stream)
            if options.live and options.max_downtime_ms:
                dom.migrateSetMaxDowntime(int(options.max_downtime_ms), 0)
            dom.migrateToURI3(dst, params, migration_flags(options))
    finally:
        close_quietly(conn)


class MigrationMonitor:
    """A dedicated connection to the source host for one migration's stats, events and controls."""

    def __init__(self, uri: str, uuid: str):
        self.uri, self.uuid = uri, str(uuid)
        self._conn = open_connection(uri)
        self._ids: list[int] = []
        self._closed = False
        with calling(uri):
            self._dom = lookup(self._conn, self.uuid)

    def stats(self) -> JobStats:
        with calling(self.uri):
            return job_stats_from(self._dom.jobStats(0))

    def completed_stats(self) -> JobStats:
        """The finished job's figures (downtime, total time); ask the source right after the move."""
        with calling(self.uri):
            return job_stats_from(self._dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED))

    def abort(self) -> None:
        with calling(self.uri):
            self._dom.abortJob()

    def set_max_speed(self, mibps: int) -> None:
        with calling(self.uri):
            self._dom.migrateSetMaxSpeed(int(mibps), 0)

    def start_postcopy(self) -> None:
        with calling(self.uri):
            self._dom.migrateStartPostCopy(0)

    def on_events(self, callback: Callable[[str, dict[str, Any]], None]) -> None:
        """`callback(kind, data)` for this domain: ("iteration", {"iteration": n}),
        ("completed", JobStats.raw) and ("lifecycle", {"event": name}). Runs on the event thread."""

        def iteration(_c: object, _d: object, it: int, _o: object) -> None:
            callback("iteration", {"iteration": it})

        def completed(_c: object, _d: object, stats: dict[str, Any], _o: object) -> None:
            callback("completed", dict(stats))

        def lifecycle(_c: object, _d: object, event: int, _detail: int, _o: object) -> None:
            callback("lifecycle", {"event": parse.lifecycle_name(event)})

        handlers: tuple[tuple[int, Callable[..., None]], ...] = (
            (libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION, iteration),
            (libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, completed),
            (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle),
        )
        with calling(self.uri):
            for event_id, fn in handlers:
                self._ids.append(self._conn.domainEventRegisterAny(self._dom, event_id, fn, None))

    def close(self) -> None:
        """Deregister the callbacks and close the connection; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        deregister_quietly(self._conn, self._ids)
        self._ids = []
        close_quietly(self._conn)

    def __enter__(self) -> MigrationMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def migration_parameters(uri: str, uuid: str) -> dict[str, Any]:
    """QEMU's own migration parameters for a running guest (QMP query-migrate-parameters): e.g.
    `tls-creds` names the TLS credentials object while an encrypted move runs. Asking QEMU directly
    marks the domain "tainted: custom-monitor" in libvirt: for tests and diagnosis, not the dashboard."""
    import libvirt_qemu

    with calling(uri):
        dom = lookup(cached(uri), uuid)
        reply = libvirt_qemu.qemuMonitorCommand(dom, '{"execute": "query-migrate-parameters"}', 0)
    answer: dict[str, Any] = json.loads(reply).get("return", {})
    return answer


def job_stats(uri: str, uuid: str, completed: bool = False) -> JobStats:
    """One-off stats on the cached connection (the reconciler's question "is a job still running?")."""
    flags = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED if completed else 0
    with calling(uri):
        return job_stats_from(lookup(cached(uri), uuid).jobStats(flags))


def abort_job(uri: str, uuid: str) -> None:
    act(uri, uuid, "abortJob")


def set_max_speed(uri: str, uuid: str, mibps: int) -> None:
    act(uri, uuid, "migrateSetMaxSpeed", int(mibps), 0)


def start_postcopy(uri: str, uuid: str) -> None:
    act(uri, uuid, "migrateStartPostCopy", 0)
