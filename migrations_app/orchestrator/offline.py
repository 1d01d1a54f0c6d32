"""An offline guest migration: optional graceful shutdown, libvirt offline move of the definition
(define on target + undefine on source), optional start on the target, then verification."""

from __future__ import annotations

import logging
import time

from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError, MigrationOptions
from migrations_app.choices import Phase, State
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import outcome
from migrations_app.services import record_event

log = logging.getLogger(__name__)


def _phase(job: MigrationJob, phase: str, note: str = "") -> None:
    MigrationJob.objects.filter(pk=job.pk).update(phase=phase)
    if note:
        record_event(job.pk, "state", note)
    from migrations_app import events

    job.phase = phase
    events.push_progress(job, int(time.time() * 1000))


def _cancelled(job: MigrationJob) -> bool:
    return MigrationJob.objects.filter(pk=job.pk, state=State.CANCELLING).exists()


def _shutdown(job: MigrationJob, uuid: str) -> str:
    """Ask the guest to power off and wait; returns an error text, or '' once it is shut off."""
    timeout = int(job.options.get("shutdown_timeout_s") or 60)
    _phase(job, Phase.SHUTDOWN, f"asking the guest to shut down (up to {timeout} s)")
    try:
        driver.shutdown(job.source.uri, uuid)
    except DriverError as err:
        return f"shutdown refused: {err.message}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _cancelled(job):
            return "cancelled while waiting for the guest to shut down"
        try:
            if driver.get_domain(job.source.uri, uuid).state == "shutoff":
                return ""
        except DriverError as err:
            return err.message
        MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
        time.sleep(0.5)
    return f"the guest did not shut down within {timeout} s; it is still running on {job.source.name}"


def run_offline(job: MigrationJob) -> MigrationJob:
    uuid = str(job.guest_uuid)
    started = time.monotonic()
    try:
        dom = driver.get_domain(job.source.uri, uuid)
    except DriverError as err:
        return outcome.settle(job.pk, error=err.message)
    if dom.state != "shutoff":
        if not job.options.get("shutdown_first"):
            return outcome.settle(job.pk, error=f"the guest is {dom.state}; an offline move needs it shut off")
        error = _shutdown(job, uuid)
        if error:
            return outcome.settle(job.pk, error=error, aborted=_cancelled(job))
    if _cancelled(job):
        return outcome.settle(job.pk, error="cancelled before the definition moved", aborted=True)
    _phase(job, Phase.MOVING, "moving the definition (libvirt offline migration)")
    opts = MigrationOptions(
        live=False, persist_dest=True, undefine_source=bool(job.options.get("undefine_source", True))
    )
    try:
        driver.migrate(job.source.uri, job.target.uri, uuid, opts)
    except DriverError as err:
        return outcome.settle(job.pk, error=err.message, figures={"total_ms": int((time.monotonic() - started) * 1000)})
    if job.options.get("start_on_target"):
        _phase(job, Phase.STARTING, f"starting the guest on {job.target.name}")
        try:
            driver.start(job.target.uri, uuid)
        except DriverError as err:
            record_event(job.pk, "libvirt", f"start on {job.target.name} failed: {err.message}")
    _phase(job, Phase.VERIFYING)
    return outcome.settle(job.pk, figures={"total_ms": int((time.monotonic() - started) * 1000)})
