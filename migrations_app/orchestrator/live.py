"""A live guest migration: libvirt p2p on one connection, progress from a separate monitor connection.

The poll thread samples jobStats every POLL_S (>= 4/s), drains libvirt's iteration / job-completed
events, watches the DB for CANCELLING (and aborts), applies the completion timeout, and beats the
heartbeat the reconciler reads. A stalled poll (docs/lab.md P1b: once per move it can block 1-2 s)
only delays samples; it never fails the job.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.db import connection

from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError, JobStats, MigrationAborted, MigrationOptions
from migrations_app.choices import Phase, State, TimeoutAction
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import dbretry, outcome, timing
from migrations_app.orchestrator.progress import ProgressReporter
from migrations_app.services import record_event

log = logging.getLogger(__name__)

POLL_S = 0.15  # >= 4 samples/s even when a jobStats call takes 50-100 ms
# libvirt's job-completed event (the move's figures) arrives on the event thread about when
# migrateToURI3 returns: wait for it this long before asking the hosts for the figures instead
COMPLETED_EVENT_WAIT_S = 0.5
CONTROL_EVERY_S = 0.5


def driver_options(job: MigrationJob, unsafe: bool) -> MigrationOptions:
    o = job.options
    return MigrationOptions(
        live=True,
        bandwidth_mibps=int(o.get("bandwidth_mibps") or 0),
        max_downtime_ms=int(o.get("max_downtime_ms") or 0),
        auto_converge=bool(o.get("auto_converge")),
        allow_postcopy=bool(o.get("allow_postcopy")),
        compressed=bool(o.get("compressed")),
        tls=bool(o.get("tls")),
        persist_dest=bool(o.get("persist_dest", True)),
        undefine_source=bool(o.get("undefine_source", True)),
        unsafe=unsafe,
        migration_uri=f"tcp://{job.target.migration_address}" if job.target.migration_address else "",
    )


class Controls:
    """The operator's controls over a running move, applied from the database every CONTROL_EVERY_S: a cancel
    (CANCELLING) aborts libvirt's job, the completion timeout aborts it or switches to post-copy, and the
    heartbeat tells the reconciler someone still follows the move. Used by the worker running the move and
    by a reconciler that re-attached to it after its worker died (the same limits hold for both)."""

    def __init__(
        self, job: MigrationJob, monitor: driver.MigrationMonitor, reporter: ProgressReporter, running_for_s: float = 0
    ):
        self.job, self.monitor, self.reporter = job, monitor, reporter
        self.timeout_note = ""
        self._t0 = time.monotonic() - running_for_s  # the timeout counts from the move's start, not ours
        self._aborted = False
        self._timed_out = False

    def apply(self, now: float) -> None:
        state = MigrationJob.objects.filter(pk=self.job.pk).values_list("state", flat=True).first()
        if state == State.CANCELLING and not self._aborted:
            self._aborted = True
            try:
                self.monitor.abort()
            except DriverError as err:
                log.info("abort of #%s: %s", self.job.pk, err.message)
                self._aborted = False  # no job yet (still setting up): try again next tick
        self.reporter.heartbeat()
        timeout = int(self.job.options.get("completion_timeout_s") or 0)
        if timeout and not self._timed_out and now - self._t0 > timeout:
            self._timed_out = True
            action = self.job.options.get("timeout_action", TimeoutAction.ABORT)
            try:
                if action == TimeoutAction.POSTCOPY:
                    self.monitor.start_postcopy()
                    self.reporter.job.phase = Phase.POSTCOPY
                    MigrationJob.objects.filter(pk=self.job.pk).update(postcopy_started=True, phase=Phase.POSTCOPY)
                    record_event(self.job.pk, "control", f"completion timeout {timeout}s: switched to post-copy")
                else:
                    self.timeout_note = f"did not complete within the {timeout} s completion timeout; aborted"
                    self.monitor.abort()
                    record_event(self.job.pk, "control", f"completion timeout {timeout}s: aborting")
            except DriverError as err:
                record_event(self.job.pk, "control", f"completion timeout action failed: {err.message}")


class _Poller(threading.Thread):
    def __init__(self, job: MigrationJob, monitor: driver.MigrationMonitor, reporter: ProgressReporter):
        super().__init__(name=f"migration-{job.pk}-poll", daemon=True)
        self.job, self.monitor, self.reporter = job, monitor, reporter
        self.stop = threading.Event()
        self.controls = Controls(job, monitor, reporter)
        self.poll_errors = 0
        self.db_errors = 0

    def run(self) -> None:
        next_control = 0.0
        next_tick = time.monotonic()
        try:
            # a fixed cadence (not "sleep POLL_S after the work"), so slow jobStats calls don't thin the stream
            while not self.stop.wait(max(0.0, (next_tick := next_tick + POLL_S) - time.monotonic())):
                try:
                    try:
                        stats: JobStats = self.monitor.stats()
                        if stats.active:
                            self.reporter.sample(stats)
                    except DriverError as err:
                        self.poll_errors += 1
                        log.debug("poll of #%s: %s", self.job.pk, err.message)
                    self.reporter.drain_events()
                    now = time.monotonic()
                    if now >= next_control:
                        next_control = now + CONTROL_EVERY_S
                        self.controls.apply(now)
                except dbretry.LOST as err:
                    # The database went away (restart, failover): this tick's copy is lost, the next one
                    # reconnects. The pushes go on meanwhile, and so does libvirt's move.
                    self.db_errors += 1
                    log.warning("guest migration #%s: database lost (%s); going on", self.job.pk, err)
                    dbretry.forget_connection()
            self.reporter.drain_events()
        except Exception:  # the monitor must never take the move down with it
            log.exception("monitor of guest migration #%s crashed", self.job.pk)
        finally:
            connection.close()


@dataclass
class Prepared:
    """What a live move needs from libvirt before it starts: the monitor connection with its event
    callbacks feeding the reporter, and the connection the move itself runs on. Opened by `prepare`
    while the pre-flight re-runs (opening and authenticating is the slow part); nothing in it changes
    anything on a host, so a move the pre-flight then refuses only closes it."""

    reporter: ProgressReporter
    monitor: driver.MigrationMonitor | None = None
    monitor_error: str = ""
    events_error: str = ""
    via: driver.MoveConnection | None = None

    def close(self) -> None:
        if self.via is not None:
            self.via.close()
        if self.monitor is not None:
            self.monitor.close()


def prepare(job: MigrationJob) -> Prepared:
    """Open what `run_live` needs (no database access: it runs in a thread beside the pre-flight)."""
    uuid, uri = str(job.guest_uuid), job.source.uri
    ready = Prepared(ProgressReporter(job))
    try:
        ready.monitor = driver.MigrationMonitor(uri, uuid)
    except DriverError as err:
        ready.monitor_error = err.message
        return ready
    try:
        ready.monitor.on_events(ready.reporter.on_libvirt_event)
    except DriverError as err:
        ready.events_error = err.message
    try:
        ready.via = driver.MoveConnection(uri)
    except DriverError:
        ready.via = None  # migrate() opens one itself and reports what libvirt says then
    return ready


def run_live(job: MigrationJob, unsafe: bool, prepared: Prepared | None = None) -> MigrationJob:
    """Run the move and settle the job from libvirt's verdict. `job` is RUNNING and owned by us;
    `prepared` (closed here) is what `prepare` opened ahead, else it is opened now."""
    ready = prepared or prepare(job)
    try:
        return _run_live(job, unsafe, ready)
    finally:
        ready.close()


def _run_live(job: MigrationJob, unsafe: bool, ready: Prepared) -> MigrationJob:
    uuid = str(job.guest_uuid)
    opts = driver_options(job, unsafe)
    monitor = ready.monitor
    if monitor is None:
        return outcome.settle(job.pk, error=f"cannot watch the move on {job.source.name}: {ready.monitor_error}")
    reporter = ready.reporter
    reporter.job = job  # the job as it is now (the reporter was made before the pre-flight re-run)
    poller = _Poller(job, monitor, reporter)
    error, aborted = "", False
    started = time.monotonic()
    try:
        listening = not ready.events_error
        if not listening:
            record_event(job.pk, "libvirt", f"no libvirt events ({ready.events_error}); polling only")
        if job.phase != Phase.SETUP:  # run.py writes it with the pre-flight's result
            job.phase = Phase.SETUP
            MigrationJob.objects.filter(pk=job.pk).update(phase=Phase.SETUP)
        poller.start()
        timing.mark(job.pk, "libvirt_start")
        try:
            driver.migrate(job.source.uri, job.target.uri, uuid, opts, via=ready.via)
        except MigrationAborted as err:
            error, aborted = err.message, True
        except DriverError as err:
            error = err.message
        finally:
            timing.mark(job.pk, "libvirt_end")
            poller.stop.set()
            poller.join(timeout=5)
        total_ms = int((time.monotonic() - started) * 1000)
        if poller.controls.timeout_note and error:
            error = f"{poller.controls.timeout_note}: {error}"
        figures = {"total_ms": total_ms}
        if listening and not error:
            reporter.completed.wait(COMPLETED_EVENT_WAIT_S)
        done = reporter.completed_raw
        if done is None and not error:
            for uri in (job.target.uri, job.source.uri):
                try:
                    stats = driver.job_stats(uri, uuid, completed=True)
                except DriverError:
                    continue
                if stats.raw.get("downtime") is not None:
                    done = stats.raw
                    break
        if done:
            figures["downtime_ms"] = int(done["downtime"]) if done.get("downtime") is not None else None
            figures["data_sent"] = int(done.get("data_processed") or 0) or None
        elif reporter.job.data_processed:
            figures["data_sent"] = reporter.job.data_processed
        reporter.job.phase = Phase.VERIFYING
        if reporter.samples:
            dbretry.again_if_lost(f"#{job.pk} last figures", reporter.persist)  # figures and phase in one write
        else:
            dbretry.again_if_lost(
                f"#{job.pk} phase", lambda: MigrationJob.objects.filter(pk=job.pk).update(phase=Phase.VERIFYING)
            )
        # the source's lifecycle events cut short settle's wait for a source QEMU still being torn down
        return dbretry.again_if_lost(
            f"#{job.pk} settle",
            lambda: outcome.settle(job.pk, error=error, aborted=aborted, figures=figures, wake=reporter.lifecycle),
        )
    finally:
        poller.stop.set()
