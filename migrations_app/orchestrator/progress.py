"""Progress of a running live move: every libvirt sample is pushed at once; the DB gets a throttled copy.

Pushing first and writing second keeps the operator's view close to libvirt (bench: pickup latency);
the throttle (Pulp's 500 ms) keeps the samples table small. libvirt events arrive on libvirt's event
thread and are only queued there; the poll thread records them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from django.utils import timezone

from hosts.drivers.types import JobStats
from migrations_app import events
from migrations_app.choices import Phase
from migrations_app.convergence import Convergence, Sample
from migrations_app.models import MigrationJob, MigrationSample
from migrations_app.services import record_event

log = logging.getLogger(__name__)

DB_EVERY_S = 0.5


def phase_for(stats: JobStats, current: str) -> str:
    if stats.postcopy or current == Phase.POSTCOPY:
        return Phase.POSTCOPY
    if current == Phase.SWITCHOVER:
        return current
    return Phase.PRECOPY if stats.data_total else Phase.SETUP


class ProgressReporter:
    """Holds the job in memory, folds samples into it, pushes each, persists every DB_EVERY_S."""

    def __init__(self, job: MigrationJob, clock: Callable[[], float] = time.monotonic):
        """`clock` (seconds, monotonic) paces the DB copies; tests pass a fake one."""
        self.job = job
        self._clock = clock
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.completed_raw: dict | None = None
        self.completed = threading.Event()  # set when libvirt's job-completed event arrives
        self.lifecycle = threading.Event()  # set on each lifecycle event of the guest (cleared by the waiter)
        self.samples = 0
        self.pushed = 0
        self._last_db = -float("inf")  # the first sample is stored whatever the clock reads
        self.convergence = Convergence()

    # --- called on libvirt's event thread: no DB, no blocking
    def on_libvirt_event(self, kind: str, data: dict) -> None:
        if kind == "completed":
            self.completed_raw = data
            self.completed.set()
        elif kind == "lifecycle":
            self.lifecycle.set()
        self.events.put((kind, data))

    # --- called on the poll thread
    def drain_events(self) -> bool:
        changed = False
        while True:
            try:
                kind, data = self.events.get_nowait()
            except queue.Empty:
                return changed
            if kind == "iteration":
                msg = f"libvirt: memory pass {data.get('iteration')}"
            elif kind == "completed":
                msg = f"libvirt: job completed (downtime {data.get('downtime', '?')} ms)"
            else:
                msg = f"libvirt: {data.get('event')}"
                if data.get("event") == "suspended":
                    self.job.phase = Phase.SWITCHOVER
                    self.job.remaining_grew = False  # paused for the switch-over: it converged
            record_event(self.job.pk, "libvirt", msg, {k: v for k, v in data.items() if isinstance(v, int | str)})
            changed = True

    def sample(self, stats: JobStats, sampled_at_ms: int | None = None) -> None:
        job = self.job
        sampled_at_ms = sampled_at_ms or int(time.time() * 1000)
        remaining = stats.data_remaining
        job.data_total, job.data_processed, job.data_remaining = stats.data_total, stats.data_processed, remaining
        job.throughput_bps, job.dirty_rate_bps, job.iteration = stats.memory_bps, stats.dirty_rate_bps, stats.iteration
        job.phase = phase_for(stats, job.phase)
        was_stalled = job.remaining_grew
        stalled = self.convergence.add(Sample(stats.iteration, remaining, stats.memory_bps, stats.dirty_rate_bps))
        # the field keeps its old name; it now means "stalled" (migrations_app.convergence), and only a
        # pre-copy can be: once the guest is paused for the switch-over or post-copy runs, it is converging
        job.remaining_grew = stalled and job.phase == Phase.PRECOPY
        job.progress_at = timezone.now()
        job.elapsed_ms = stats.elapsed_ms
        self.samples += 1
        events.push_progress(job, sampled_at_ms)
        self.pushed += 1
        now = self._clock()
        if job.remaining_grew != was_stalled:
            self._note_convergence(stats)
        if now - self._last_db >= DB_EVERY_S or job.remaining_grew != was_stalled:
            self._last_db = now  # a change of verdict is stored at once: the poll fallback must agree
            self.persist(stats)

    def _note_convergence(self, stats: JobStats) -> None:
        """A line in the timeline each time the verdict changes, with the figures it rests on."""
        starts = ", ".join(f"{b / 1048576:.1f}" for b in self.convergence.pass_starts[-3:])
        figures = f"dirty rate {stats.dirty_rate_bps / 1048576:.1f} MiB/s, sent {stats.memory_bps / 1048576:.1f} MiB/s"
        if self.job.remaining_grew:
            msg = f"not converging: the last passes began with {starts} MiB left; {figures}"
        else:
            msg = f"converging again (pass {stats.iteration}); {figures}"
        record_event(self.job.pk, "progress", msg, {"stalled": self.job.remaining_grew, "iteration": stats.iteration})

    def persist(self, stats: JobStats | None = None) -> None:
        job = self.job
        if stats is not None:
            MigrationSample.objects.create(
                job_id=job.pk,
                at=job.progress_at or timezone.now(),
                elapsed_ms=stats.elapsed_ms,
                data_total=stats.data_total,
                data_processed=stats.data_processed,
                data_remaining=stats.data_remaining,
                throughput_bps=stats.memory_bps,
                dirty_rate_bps=stats.dirty_rate_bps,
                iteration=stats.iteration,
            )
        MigrationJob.objects.filter(pk=job.pk).update(
            progress_at=job.progress_at,
            data_total=job.data_total,
            data_processed=job.data_processed,
            data_remaining=job.data_remaining,
            throughput_bps=job.throughput_bps,
            dirty_rate_bps=job.dirty_rate_bps,
            iteration=job.iteration,
            remaining_grew=job.remaining_grew,
            phase=job.phase,
            heartbeat_at=timezone.now(),
        )

    def heartbeat(self) -> None:
        """A sign of life for the reconciler, unless a progress copy (which carries one) was written
        within DB_EVERY_S: during a move that is every time, and the write would take the database's
        write lock on the cores the move needs for nothing."""
        if self._clock() - self._last_db < DB_EVERY_S:
            return
        MigrationJob.objects.filter(pk=self.job.pk).update(heartbeat_at=timezone.now(), phase=self.job.phase)
