"""The dashboard's processes as a bench starts them: a worker (`manage.py qcluster`) and a web process
(daphne), each in a session of its own so that stopping it stops exactly it and its children, by PID.

They inherit the bench's environment: its KVMCLUSTER_DATA_DIR (embedded profile) or DATABASE_URL and
REDIS_URL (production), so they share the bench's database. Finding a port, waiting for it and stopping a
process group are the tests' own (tests/servers.py): one way to stop what we started, by PID.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.servers import ROOT, free_port, stop_group, wait_for_port

__all__ = ["free_port", "start_web", "start_worker", "stop_group"]


def _start(cmd: list[str], log: Path | None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child holds it)
    try:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        if log:
            out.close()


def start_worker(*, warm_s: float = 3.0, log: Path | None = None) -> subprocess.Popen:
    """Start a django-q2 worker and give it `warm_s` to fork its workers (and run the start-up
    reconciler) before the bench asks anything of it."""
    proc = _start([sys.executable, "manage.py", "qcluster"], log)
    time.sleep(warm_s)
    return proc


def start_web(port: int, *, timeout: float = 30.0, log: Path | None = None) -> subprocess.Popen:
    """Start daphne on 127.0.0.1:`port` and return once it accepts connections."""
    daphne = str(Path(sys.executable).with_name("daphne"))
    proc = _start([daphne, "-b", "127.0.0.1", "-p", str(port), "kvmcluster.asgi:application"], log)
    try:
        wait_for_port(proc, port, log, timeout)
    except RuntimeError:
        stop_group(proc)  # a daphne that never listened: nothing of it is left behind
        raise
    return proc
