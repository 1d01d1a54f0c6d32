"""Tasks a django-q2 worker enqueues when it spawns (django_q.signals.post_spawn)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def enqueue_at_worker_start(func: str, task_name: str) -> None:
    """Enqueued rather than run in the signal, so a slow libvirt host never delays the worker's
    readiness; a failure is logged, not raised (the minute schedules start the same tasks anyway)."""
    try:
        from django_q.tasks import async_task

        async_task(func, task_name=task_name)
    except Exception:  # see above
        log.exception("could not enqueue %s at worker start", func)
