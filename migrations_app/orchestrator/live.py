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

from django.db import connection

from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError, JobStats, MigrationAborted, MigrationOptions
from migrations_app.choices import Phase, State, TimeoutAction
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import outcome
from migrations_app.orchestrator.progress import ProgressReporter
from migrations_app.services import record_event

log = logging.getLogger(__name__)

POLL_S = 0.15  # >= 4 samples/s even when a jobStats call takes 50-100 ms
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


class _Poller(threading.Thread):
    def __init__(self, job: MigrationJob, monitor: driver.MigrationMonitor, reporter: ProgressReporter):
        super().__init__(name=f"migration-{job.pk}-poll", daemon=True)
        self.job, self.monitor, self.reporter = job, monitor, reporter
        self.stop = threading.Event()
        self.timeout_note = ""
        self.poll_errors = 0
        self._t0 = time.monotonic()
        self._aborted = False
        self._timed_out = False

    def run(self) -> None:
        next_control = 0.0
        next_tick = time.monotonic()
        try:
            # a fixed cadence (not "sleep POLL_S after the work"), so slow jobStats calls don't thin the stream
            while not self.stop.wait(max(0.0, (next_tick := next_tick + POLL_S) - time.monotonic())):
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
                    self._controls(now)
            self.reporter.drain_events()
        except Exception:  # the monitor must never take the move down with it
            log.exception("monitor of guest migration #%s crashed", self.job.pk)
        finally:
            connection.close()

    def _controls(self, now: float) -> None:
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


def run_live(job: MigrationJob, unsafe: bool) -> MigrationJob:
    """Run the move and settle the job from libvirt's verdict. `job` is RUNNING and owned by us."""
    uuid = str(job.guest_uuid)
    opts = driver_options(job, unsafe)
    try:
        monitor = driver.MigrationMonitor(job.source.uri, uuid)
    except DriverError as err:
        return outcome.settle(job.pk, error=f"cannot watch the move on {job.source.name}: {err.message}")
    reporter = ProgressReporter(job)
    poller = _Poller(job, monitor, reporter)
    error, aborted = "", False
    started = time.monotonic()
    try:
        try:
            monitor.on_events(reporter.on_libvirt_event)
        except DriverError as err:
            record_event(job.pk, "libvirt", f"no libvirt events ({err.message}); polling only")
        job.phase = Phase.SETUP
        MigrationJob.objects.filter(pk=job.pk).update(phase=Phase.SETUP)
        poller.start()
        try:
            driver.migrate(job.source.uri, job.target.uri, uuid, opts)
        except MigrationAborted as err:
            error, aborted = err.message, True
        except DriverError as err:
            error = err.message
        finally:
            poller.stop.set()
            poller.join(timeout=5)
        total_ms = int((time.monotonic() - started) * 1000)
        if poller.timeout_note and error:
            error = f"{poller.timeout_note}: {error}"
        figures = {"total_ms": total_ms}
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
        if reporter.samples:
            reporter.persist()
        MigrationJob.objects.filter(pk=job.pk).update(phase=Phase.VERIFYING)
        return outcome.settle(job.pk, error=error, aborted=aborted, figures=figures)
    finally:
        monitor.close()
