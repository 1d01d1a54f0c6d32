"""The only place that names migration groups and sends to them (docs/architecture.md, "Events").

Groups: "migration.<id>" (one job's page), "operation.<id>" (one operation's page: its counts, bar and
ETA, pushed when the operation or one of its children changes state) and "migrations.active" (the panel
on every page). Each
message carries ready HTML: the same partial the page renders, marked hx-swap-oob, so the htmx ws
extension swaps it by DOM id (docs/architecture.md, "One partial, two routes"). Sends never raise
into the caller: a dead channel layer must not fail a guest migration.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import connection
from django.template.loader import render_to_string

from kvmcluster import layer
from migrations_app.display import move_percent

log = logging.getLogger(__name__)

ACTIVE_GROUP = "migrations.active"
PROGRESS = "migration.progress"  # consumer handler: migration_progress
STATE = "migration.state"  # consumer handler: migration_state
ACTIVE = "migration.active"  # consumer handler: migration_active
OPERATION = "operation.progress"  # consumer handler: operation_progress


# Outside the job page a move shows in two places: the active-migrations banner (every page) and the
# guest's row and chip in the topology. Both are pushed on one clock, from one figure
# (display.move_percent of the same in-memory job): on two clocks (1/s and 4/s) they showed 13 % and
# 16 % at once. 4/s, as often as libvirt is polled.
OUTSIDE_EVERY_S = 0.25
_last_outside_push: dict[int, float] = {}
# A state push (another thread) re-renders the banner from the database: it sends the guest's figure
# with it, and the lock keeps each pair of sends together, so the last figure both places got is one.
_outside_lock = threading.Lock()


def job_group(job_id: int) -> str:
    return f"migration.{job_id}"


def operation_group(operation_id: int) -> str:
    return f"operation.{operation_id}"


def _send(group: str, message: dict) -> None:
    try:
        layer.group_send(group, message)
    except Exception:  # live updates are best effort; the DB row is the truth
        log.exception("could not send %s to %s", message.get("type"), group)


def render_progress(job, oob: bool = True, sampled_at_ms: int | None = None) -> str:
    return render_to_string(
        "migrations_app/migration_detail.html#progress",
        {"job": job, "oob": oob, "sampled_at_ms": sampled_at_ms},
    )


def render_current(job_id: int) -> str:
    """The job's card as the database has it now (hx-swap-oob), "" if there is no such job."""
    from migrations_app.models import MigrationJob

    job = MigrationJob.objects.select_related("source", "target").filter(pk=job_id).first()
    return render_progress(job) if job else ""


def render_active_row(job, oob: bool = True) -> str:
    """The job's line in the banner; its figure is display.move_percent(job), as in the guest's row."""
    return render_to_string("migrations_app/components/active_panel.html#row", {"job": job, "oob": oob})


def push_progress(job, sampled_at_ms: int) -> None:
    """One progress sample of `job` (an in-memory MigrationJob with fresh latest-progress fields)."""
    html = render_progress(job, sampled_at_ms=sampled_at_ms)
    _send(
        job_group(job.pk),
        {"type": PROGRESS, "html": html, "sampled_at_ms": sampled_at_ms, "sent_at_ms": int(time.time() * 1000)},
    )
    now = time.monotonic()
    if now - _last_outside_push.get(job.pk, 0.0) >= OUTSIDE_EVERY_S:  # after the job page: it is what is benchmarked
        _last_outside_push[job.pk] = now
        with _outside_lock:  # one moment, one job, one function: the banner renders move_percent(job) too
            _send(ACTIVE_GROUP, {"type": ACTIVE, "html": render_active_row(job)})
            _push_guest_move(job, move_percent(job), sampled_at_ms)


# State pushes leave the caller at once: one thread per process renders and sends them, in order
# (at interpreter exit, concurrent.futures finishes what is queued).
# A request would otherwise wait ~70 ms per push before answering (and before its job is enqueued),
# and a worker before it starts libvirt's move; both are time the operator sees.
_pusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="migration-push")
_waiting: dict[int, bool] = {}  # job id -> whether its waiting push re-renders the topology
_waiting_lock = threading.Lock()


def push_job(job_id: int, topology: bool = True) -> None:
    """A state change of `job_id` (committed): queue a push of its card and the active panel, and of
    its guest and hosts in the topology unless the caller knows the change left them as they were
    (`topology=False`: the topology renders guests and hosts, not job states, and its render costs
    more than the rest together, on the cores the move itself needs).

    A push already waiting for the same job is enough: it reads the job when it runs, so it sends
    the newest state, and it re-renders the topology if any change it covers asked for that."""
    with _waiting_lock:
        if job_id in _waiting:
            _waiting[job_id] = _waiting[job_id] or topology
            return
        _waiting[job_id] = topology
    _pusher.submit(_push_job_now, job_id)


def wait_for_pushes(timeout: float = 30) -> None:
    """Return once the pushes queued so far have gone out, with the push thread's database connection
    closed. For tests: a push still reading the database while a test empties it (PostgreSQL's TRUNCATE
    locks table by table, as a joined SELECT does) can deadlock the two, and an open connection keeps
    PostgreSQL from dropping the test database."""
    _pusher.submit(lambda: connection.close()).result(timeout=timeout)  # the push thread's own connection


def _push_job_now(job_id: int) -> None:
    with _waiting_lock:
        topology = _waiting.pop(job_id, True)  # first: a change committed from now on queues a push of its own
    ended = True
    try:
        # The connection of the job's previous push is kept while the job runs (within CONN_MAX_AGE):
        # its ending is pushed on the timed path of every move, and a new PostgreSQL connection there
        # cost tens of milliseconds on a loaded machine (bench/migration.py, settle + push).
        connection.close_if_unusable_or_obsolete()
        ended = _render_and_send_job(job_id, topology)
    except Exception:  # as _send: best effort, and the push thread must survive
        log.exception("could not push guest migration #%s", job_id)
    finally:
        if ended:
            connection.close()  # the job is over: no idle connection held until the next one


def _render_and_send_job(job_id: int, topology: bool = True) -> bool:
    """Push the job's card, the active panel and (if asked) the topology; True if the job has ended."""
    from migrations_app.models import MigrationJob
    from migrations_app.selectors import active_jobs

    job = MigrationJob.objects.select_related("source", "target").filter(pk=job_id).first()
    if job is None:
        return True
    if job.is_terminal:  # no more samples: forget its throttle clock
        _last_outside_push.pop(job.pk, None)
    _send(
        job_group(job.pk),
        {"type": STATE, "html": render_progress(job), "state": job.state, "sent_at_ms": int(time.time() * 1000)},
    )
    panel = render_to_string(
        "migrations_app/components/active_panel.html#panel", {"active_migrations": active_jobs(), "oob": True}
    )
    with _outside_lock:
        _send(ACTIVE_GROUP, {"type": ACTIVE, "html": panel})
        percent = move_percent(job)
        if percent is not None:  # e.g. cancelling mid-move: the row shows the banner's (stored) figure too
            _push_guest_move(job, percent)
    if topology:
        _notify_topology(job)
    if job.is_terminal and job.guest_id:
        _push_guest_timeline(job.guest_id)
    return job.is_terminal


def render_once() -> None:
    """Render every push once and send nothing: a fresh process's first render costs 3x a later one."""
    from hosts import events as host_events
    from migrations_app.selectors import active_jobs, jobs

    job = jobs().order_by("-pk").first()
    if job is not None:
        render_progress(job)
        render_active_row(job)
        if job.guest_id:
            host_events.render_topology_push(hypervisor_ids=[job.source_id, job.target_id], guest_ids=[job.guest_id])
            host_events.render_guest_move(
                job.guest_id, guest_name=job.guest_name, percent=50, target_name=job.target.name, job_url=""
            )
    render_to_string(
        "migrations_app/components/active_panel.html#panel", {"active_migrations": active_jobs(), "oob": True}
    )


def _push_guest_move(job, percent: int | None, sampled_at_ms: int | None = None) -> None:
    """The guest's move indicator in the topology (hosts.events), with the banner's figure."""
    if not job.guest_id:
        return
    try:
        from hosts import events as host_events

        host_events.guest_move_progress(
            job.guest_id,
            guest_name=job.guest_name,
            percent=percent,
            target_name=job.target.name,
            job_url=job.get_absolute_url(),
            sampled_at_ms=sampled_at_ms,
        )
    except Exception:  # best effort, as above
        log.exception("guest move push failed")


def _notify_topology(job) -> None:
    """The guest's place in the topology (hosts.events renders and sends it) after a state change."""
    try:
        from hosts import events as host_events

        host_events.topology_changed(
            hypervisor_ids=[job.source_id, job.target_id], guest_ids=[job.guest_id] if job.guest_id else []
        )
    except Exception:  # best effort, as above
        log.exception("topology push failed")


def _push_guest_timeline(guest_id: int) -> None:
    """The guest's moves beside its load chart (the guest page's socket, hosts.events), once one ended."""
    try:
        from hosts import events as host_events

        html = render_to_string("migrations_app/components/guest_moves.html", {"guest_id": guest_id, "oob": True})
        host_events.guest_timeline_changed(guest_id, html)
    except Exception:  # best effort, as above
        log.exception("guest timeline push failed")


# --- operations (maintenance): the operation page's progress panel -----------------------------------

_waiting_ops: set[int] = set()


def push_operation(operation_id: int) -> None:
    """The operation (or one of its children) changed state, committed: queue a push of its progress
    panel on the same thread as job pushes. A push already waiting reads the newest counts when it runs."""
    with _waiting_lock:
        if operation_id in _waiting_ops:
            return
        _waiting_ops.add(operation_id)
    _pusher.submit(_push_operation_now, operation_id)


def render_operation(op, progress, can_run: bool, oob: bool = True) -> str:
    return render_to_string(
        "migrations_app/operation_detail.html#operation-progress",
        {"op": op, "progress": progress, "can_run": can_run, "oob": oob},
    )


def _push_operation_now(operation_id: int) -> None:
    with _waiting_lock:
        _waiting_ops.discard(operation_id)  # first: a change committed from now on queues a push of its own
    try:
        from migrations_app.models import Operation
        from migrations_app.services.operations import operation_progress

        op = Operation.objects.select_related("hypervisor", "requested_by").filter(pk=operation_id).first()
        if op is None:
            return
        progress = operation_progress(op)
        # The panel holds the controls: one rendering for those who may use them, one for viewers; the
        # consumer forwards the one its user may see (it knows the user's role, the pusher does not).
        _send(
            operation_group(op.pk),
            {
                "type": OPERATION,
                "html": render_operation(op, progress, can_run=False),
                "html_run": render_operation(op, progress, can_run=True),
                "state": op.state,
            },
        )
    except Exception:  # as _send: best effort, and the push thread must survive
        log.exception("could not push operation #%s", operation_id)
    finally:
        connection.close()
