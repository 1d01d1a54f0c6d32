"""When the reconciler takes over a move: its worker process is gone or its heartbeat is stale (no DB)."""

import datetime as dt
import os
import socket
import subprocess
import sys

from migrations_app.models import MigrationJob
from migrations_app.orchestrator.reconciler import STALE_S, orphaned

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def job(owner: str, beat_s_ago: float | None, started_s_ago: float = 600) -> MigrationJob:
    beat = NOW - dt.timedelta(seconds=beat_s_ago) if beat_s_ago is not None else None
    return MigrationJob(
        owner=owner,
        heartbeat_at=beat,
        started_at=NOW - dt.timedelta(seconds=started_s_ago),
        requested_at=NOW - dt.timedelta(seconds=900),
    )


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_fresh_heartbeat_from_a_live_worker_is_not_orphaned():
    assert not orphaned(job(f"{socket.gethostname()}:{os.getpid()}", 1), NOW)


def test_a_worker_whose_process_is_gone_is_orphaned_at_once():
    assert orphaned(job(f"{socket.gethostname()}:{dead_pid()}", 1), NOW)


def test_a_stale_heartbeat_is_orphaned_whoever_owns_it():
    assert orphaned(job("other-machine:1", STALE_S + 1), NOW)
    assert not orphaned(job("other-machine:1", STALE_S - 1), NOW)


def test_a_pid_on_another_machine_is_not_looked_up_here():
    """Only the heartbeat speaks for a worker on another machine (its pid means nothing here)."""
    assert not orphaned(job(f"not-{socket.gethostname()}:{dead_pid()}", 1), NOW)


def test_without_a_heartbeat_the_start_counts():
    assert orphaned(job("other-machine:1", None, started_s_ago=STALE_S + 5), NOW)
    assert not orphaned(job("other-machine:1", None, started_s_ago=5), NOW)
