"""Wall-clock marks of the worker's steps in one move, stored with the job when it settles.

bench/migration.py reads them (MigrationJob.timings) to split the dashboard's own cost into phases:
pickup, claim, pre-flight re-run, setup, libvirt's job, verification, settle + push. They are
epoch milliseconds, so the bench (another process on the same machine) can set its own clock beside
them. Kept in memory per job and written once, in the settle's transaction: no extra write on the
timed path.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_marks: dict[int, dict[str, int]] = {}


def mark(job_id: int, name: str) -> None:
    now = int(time.time() * 1000)
    with _lock:
        _marks.setdefault(job_id, {})[name] = now


def take(job_id: int) -> dict[str, int]:
    """The job's marks so far (and forget them): the settle stores them."""
    with _lock:
        return _marks.pop(job_id, {})
