"""`make run` ends on Ctrl-C within seconds: exit status 0, one goodbye line, no web or worker left.

scripts/run.sh runs here without the lab (KVMCLUSTER_RUN_LAB=0), in the embedded profile with its own
data and log directories and a free loopback port. A task that sleeps keeps one worker busy the way a
guest migration would: the stop must not wait for it (libvirt carries a migration on by itself and the
reconciler settles its job at the next start).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")
# The script gives the worker 2.5 s, then TERMs its whole group, then KILLs: under 5 s at the worst. The
# bound is generous for a loaded machine; it fails when the stop waits for the busy task (120 s).
STOP_BOUND_S = 10
START_TIMEOUT_S = 180
GOODBYE = re.compile(r"^run: stopping web and worker\.\.\. stopped in (\d+\.\d) s\. Goodbye\.$")

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL")),
    reason="the run script is started in the embedded profile either way; the embedded run covers it",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    """A process of group `pgid` is still running (zombies waiting for init to reap them do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class Run:
    """scripts/run.sh in its own session (as a terminal's foreground job is its own process group)."""

    def __init__(self, tmp_path: Path):
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "DJANGO_SETTINGS"))
            and k not in ("DATABASE_URL", "REDIS_URL", "KVMCLUSTER_SECRET_KEY", "KVMCLUSTER_AUDIT_KEY")
        }
        self.log_dir = tmp_path / "log"
        self.env.update(
            KVMCLUSTER_DATA_DIR=str(tmp_path / "data"),
            KVMCLUSTER_LOG_DIR=str(self.log_dir),
            KVMCLUSTER_PORT=str(_free_port()),
            KVMCLUSTER_RUN_LAB="0",
            KVMCLUSTER_Q_WORKERS="2",
        )
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "run.sh")],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def pid_of(self, what: str) -> int:
        return int(re.search(rf"{what} pid (\d+)", self.output()).group(1))

    def worker_log(self) -> str:
        path = self.log_dir / "worker.log"
        return path.read_text() if path.exists() else ""

    def keep_a_worker_busy(self, seconds: int) -> None:
        code = f"from django_q.tasks import async_task; async_task('time.sleep', {seconds}, task_name='busy')"
        subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=self.env, check=True, timeout=60)
        _wait_for(lambda: "processing busy" in self.worker_log(), 60, "a worker to take the busy task")

    def kill_leftovers(self) -> None:
        """Only what this test started: the script's group, and the web and worker groups it printed."""
        groups = [self.proc.pid]
        for what in ("web", "worker"):
            try:
                groups.append(self.pid_of(what))
            except AttributeError:
                pass
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)


@pytest.fixture
def run(tmp_path):
    r = Run(tmp_path)
    yield r
    r.kill_leftovers()


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(lambda p: os.killpg(p.pid, signal.SIGINT), id="ctrl-c-to-the-terminal-group"),
        pytest.param(lambda p: p.send_signal(signal.SIGTERM), id="term-from-make"),
    ],
)
def test_run_stops_within_seconds_and_exits_0(run, stop):
    _wait_for(
        lambda: "Press Ctrl-C" in run.output() or run.proc.poll() is not None,
        START_TIMEOUT_S,
        "`make run` to start",
    )
    assert run.proc.poll() is None, run.output()
    web, worker = run.pid_of("web"), run.pid_of("worker")
    run.keep_a_worker_busy(120)

    t0 = time.monotonic()
    stop(run.proc)
    rc = run.proc.wait(timeout=60)
    took = time.monotonic() - t0

    assert rc == 0, run.output()
    assert took < STOP_BOUND_S, f"stopped after {took:.1f} s\n{run.output()}"
    last = run.lines[-1]
    assert GOODBYE.match(last), run.output()
    assert "did not stop" not in run.output()  # no KILL was needed
    print(f"stopped {took:.2f} s after the signal: {last}")
    assert not _group_alive(web) and not _group_alive(worker)
    # It did not wait for the task: the busy worker was ended, not finished.
    assert "Processed 'time.sleep'" not in run.worker_log()
