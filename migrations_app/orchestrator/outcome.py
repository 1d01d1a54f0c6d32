"""How a move ended, decided from libvirt's own view of both hosts, never from our bookkeeping."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import transaction

from accounts.audit import audit_record
from hosts.drivers import libvirt as driver
from hosts.drivers.types import DomainInfo, DriverError
from hosts.services import placement
from migrations_app import services
from migrations_app.choices import State, WhereGuestIs
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import timing

log = logging.getLogger(__name__)

_RUNNING = ("running", "paused", "blocked")


@dataclass(frozen=True)
class Location:
    where: str  # WhereGuestIs value
    source: DomainInfo | None
    target: DomainInfo | None
    source_error: str = ""
    target_error: str = ""

    def describe(self, job: MigrationJob) -> str:
        def one(name: str, dom: DomainInfo | None, err: str) -> str:
            if err:
                return f"{name}: did not answer ({err})"
            if dom is None:
                return f"{name}: not defined"
            return f"{name}: {dom.state}{'' if dom.persistent else ' (transient)'}"

        return "; ".join(
            [one(job.source.name, self.source, self.source_error), one(job.target.name, self.target, self.target_error)]
        )


def _present(dom: DomainInfo | None, live: bool) -> bool:
    """Does the guest 'live' on this host? Running counts; for an offline move a definition counts.
    A shut-off transient leftover counts for nothing."""
    if dom is None:
        return False
    if dom.state in _RUNNING:
        return True
    return not live and dom.persistent


def _ask(uri: str, uuid: str) -> tuple[DomainInfo | None, str]:
    try:
        return driver.find_domain(uri, uuid), ""
    except DriverError as err:
        return None, err.message


def locate(job: MigrationJob, live: bool | None = None) -> Location:
    """Where libvirt says the guest is, both hosts asked at once (the verification is on the timed
    path of every move; a host that hangs costs its own timeout, not the other's too)."""
    live = job.kind == "live" if live is None else live
    uuid = str(job.guest_uuid)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="locate") as pool:
        f_src, f_dst = pool.submit(_ask, job.source.uri, uuid), pool.submit(_ask, job.target.uri, uuid)
        (src, src_err), (dst, dst_err) = f_src.result(), f_dst.result()
    errors = {side: err for side, err in (("source", src_err), ("target", dst_err)) if err}
    return place(src, dst, errors, live)


def place(src: DomainInfo | None, dst: DomainInfo | None, errors: dict[str, str], live: bool) -> Location:
    """Where the guest is, from what each host answered (`errors[side]` when a host did not answer):
    a host that did not answer never counts as having the guest, and only a fully answered pair can
    say BOTH or NOWHERE."""
    if errors:
        where = WhereGuestIs.UNKNOWN
        if _present(src, live) and not errors.get("source"):
            where = WhereGuestIs.SOURCE
        elif _present(dst, live) and not errors.get("target"):
            where = WhereGuestIs.TARGET
    else:
        on_src, on_dst = _present(src, live), _present(dst, live)
        where = (
            WhereGuestIs.BOTH
            if on_src and on_dst
            else WhereGuestIs.SOURCE
            if on_src
            else WhereGuestIs.TARGET
            if on_dst
            else WhereGuestIs.NOWHERE
        )
    return Location(where, src, dst, errors.get("source", ""), errors.get("target", ""))


SETTLE_GRACE_S = 10.0


def _tearing_down(loc: Location) -> bool:
    """Running on the target while the source still shows a transient, non-running-or-paused copy."""
    return (
        loc.target is not None
        and loc.target.state == "running"
        and loc.source is not None
        and not loc.source.persistent
        and loc.source.state != "running"
    )


def moved(job: MigrationJob, loc: Location) -> bool:
    """Did the guest really move? live -> running on the target and absent (or shut off and
    undefined) on the source; offline -> defined on the target only."""
    if loc.source_error or loc.target_error:
        return False
    keep_source = not job.options.get("undefine_source", True)  # the operator asked to keep the old definition
    src_gone = loc.source is None or (loc.source.state not in _RUNNING and (keep_source or not loc.source.persistent))
    if job.kind == "live":
        return loc.target is not None and loc.target.state in _RUNNING and src_gone
    return loc.target is not None and loc.target.persistent and src_gone


def _record_guest(job: MigrationJob, loc: Location) -> None:
    """Write where libvirt says the guest is (only if exactly one host has it)."""
    if not job.guest_id:
        return
    if loc.where == WhereGuestIs.TARGET and loc.target is not None:
        placement.record_location(job.guest_id, power=loc.target.state, hypervisor=job.target)
    elif loc.where == WhereGuestIs.SOURCE and loc.source is not None:
        placement.record_location(job.guest_id, power=loc.source.state)


def settle(
    job_id: int,
    *,
    error: str = "",
    aborted: bool = False,
    figures: dict | None = None,
    reconciled: bool = False,
    wake: threading.Event | None = None,
) -> MigrationJob:
    """Finish a job from libvirt's truth. SUCCEEDED only if `moved()`; CANCELLED if it was being cancelled
    and the guest stayed; FAILED otherwise, with libvirt's message and where the guest is.

    `wake`: set by the caller when libvirt reports a lifecycle event of the guest (the live runner's
    monitor), so a wait for a source QEMU being torn down ends as soon as libvirt says it changed."""
    job = MigrationJob.objects.select_related("source", "target", "requested_by", "cancelled_by").get(pk=job_id)
    if wake is not None:
        wake.clear()
    loc = locate(job)
    deadline = time.monotonic() + SETTLE_GRACE_S
    while not error and not moved(job, loc) and _tearing_down(loc) and time.monotonic() < deadline:
        # libvirt returned success while the source QEMU is still being killed (a paused transient
        # leftover): give it a moment rather than calling a finished move a failure; ask again when
        # libvirt reports the guest's next lifecycle event, or after 0.25 s at the latest
        if wake is not None:
            wake.wait(0.25)
            wake.clear()
        else:
            time.sleep(0.25)
        loc = locate(job)
    timing.mark(job_id, "verified")
    figures = {k: v for k, v in (figures or {}).items() if v is not None}
    marks = timing.take(job_id)
    if marks:
        figures["timings"] = marks
    where_text = loc.describe(job)
    with transaction.atomic():
        state, where, error, message = ending(job, loc, error, aborted, where_text)
        job = services.transition(
            job.pk,
            state,
            expected={State.RUNNING, State.CANCELLING},
            where_guest_is=where,
            error=error,
            message=message,
            **figures,
        )
        _record_guest(job, loc)
        params = {"outcome": str(state), "where": where_text}
        if state == State.SUCCEEDED:
            params |= {"total_ms": job.total_ms, "downtime_ms": job.downtime_ms, "data_sent": job.data_sent}
        if state == State.FAILED:
            params["where_guest_is"] = where
        audit_record(
            action="migration.reconciled" if reconciled else f"migration.{state.value}",
            outcome="failed" if state == State.FAILED else "ok",
            params=params,
            message={State.SUCCEEDED: where_text, State.CANCELLED: error or where_text}.get(
                state, f"{error} — guest: {where_text}"
            ),
            **services.job_audit_fields(job, job.cancelled_by if state == State.CANCELLED else None),
        )
        return job


def ending(job: MigrationJob, loc: Location, error: str, aborted: bool, where_text: str) -> tuple[str, str, str, str]:
    """(state, where the guest is, error, timeline message) for a job that ended with `error` ('' if
    libvirt reported success) and the guest at `loc`."""
    if not error and moved(job, loc):
        return State.SUCCEEDED, WhereGuestIs.TARGET, "", f"verified by libvirt: {where_text}"
    if (aborted or job.state == State.CANCELLING) and loc.where == WhereGuestIs.SOURCE and job.cancelled_by_id:
        return State.CANCELLED, WhereGuestIs.SOURCE, error, f"cancelled; {where_text}"
    error = error or f"libvirt reported success but verification failed: {where_text}"
    return State.FAILED, loc.where, error, f"failed: {error} ({where_text})"
