"""Processes the tests start as a deployment would: servers on free loopback ports, throwaway PostgreSQL
databases, and stopping exactly the process groups a test started (by PID). Shared by tests/e2e,
tests/scale and the benches (bench/processes.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser); skips the test
    when it is not installed."""
    import pytest
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def throwaway_postgres(url: str, tag: str = "e2e") -> str:
    """Create (fresh) `<db>_<tag>_<pid>` on the configured server and return its URL."""
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'kvmcluster'}_{tag}_{os.getpid()}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_postgres(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


# TERM to the leader first, then to the group: as scripts/run.sh stops them (its comment says why). TERM to a
# qcluster's whole group at once kills the pool under its sentinel and leaves the qcluster process waiting on
# them: measured here, it had not exited 40 s later (leader first: gone in under 5 s).
LEADER_GRACE_S = 2.5


def stop_group(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop a process started with start_new_session (its own group: only it and its children), by PID:
    TERM to the leader, to the group after LEADER_GRACE_S, SIGKILL to the group after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=min(LEADER_GRACE_S, timeout))
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # what is left of the group (the group outlives its leader)
    except ProcessLookupError:
        proc.wait()
        return  # the group is gone already
    try:
        proc.wait(timeout=max(timeout - LEADER_GRACE_S, 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- the project's own processes -------------------------------------------------------------------


@dataclass
class ServerEnv:
    """The environment every process of one test deployment shares (database, Redis, data directory)."""

    env: dict[str, str]
    data_dir: Path

    def run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [PYTHON, *args], cwd=ROOT, env=self.env, input=stdin, capture_output=True, text=True, timeout=300
        )
        if done.returncode:
            raise RuntimeError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def seed(self, spec: dict) -> dict:
        return json.loads(self.run(str(ROOT / "tests/e2e/seed.py"), stdin=json.dumps(spec)).strip().splitlines()[-1])


def server_env(data_dir: Path, tag: str = "e2e", **overrides: str) -> ServerEnv:
    """A test deployment's environment and its migrated database: in the embedded profile SQLite files in
    `data_dir`; in the production profile (DATABASE_URL + REDIS_URL) a throwaway PostgreSQL database next
    to the configured one and a private channel-layer prefix on the same Redis. `overrides` (e.g. another
    DATABASE_URL or REDIS_URL) are applied before the database is made. Undo with drop_server_env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_SETTINGS"))}
    env.update(
        KVMCLUSTER_DATA_DIR=str(data_dir),
        KVMCLUSTER_DEBUG="1",  # runserver serves /static/ only with DEBUG on
        KVMCLUSTER_INSECURE_COOKIES="1",  # plain http on loopback
        KVMCLUSTER_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="kvmcluster.settings",
    )
    # The server, its worker and the seed talk to the lab's libvirtd, which want the lab's SASL login.
    import lab as kvmlab

    env.update(kvmlab.client_env())
    env.update(overrides)
    db_url = env.get("DATABASE_URL")
    if db_url:
        env["DATABASE_URL"] = throwaway_postgres(db_url, tag)
    if env.get("REDIS_URL"):
        env["KVMCLUSTER_CHANNEL_PREFIX"] = f"kvmcluster-{tag}-{os.getpid()}"
    server = ServerEnv(env=env, data_dir=data_dir)
    server.run("manage.py", "migrate", "--noinput")
    if not db_url:
        server.run("manage.py", "migrate", "--database", "channels", "--noinput")
    return server


def drop_server_env(server: ServerEnv) -> None:
    if server.env.get("DATABASE_URL"):
        drop_postgres(server.env["DATABASE_URL"])
    shutil.rmtree(server.data_dir, ignore_errors=True)


def _popen(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process in its own group (stop_group stops it and its children, and nothing else), output to `log`."""
    with open(log, "a") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_web(env: dict[str, str], port: int, log: Path, timeout: float = 60) -> subprocess.Popen:
    """daphne (Django's runserver as daphne provides it) on 127.0.0.1:`port`, up once /login/ answers."""
    proc = _popen([PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env, log)
    wait_until_up(proc, f"http://127.0.0.1:{port}/login/", log, timeout)
    return proc


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """A django-q2 cluster (`manage.py qcluster`) on the deployment's database and broker."""
    return _popen([PYTHON, "manage.py", "qcluster"], env, log)


def wait_until_up(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_group(proc, timeout=5) if proc.poll() is None else None
            raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-4000:]}")
        time.sleep(0.3)


# --- servers of our own (for tests that restart them; never the machine's) -------------------------


def start_redis(port: int, data_dir: Path, log: Path) -> subprocess.Popen:
    """A redis-server of the test's own on 127.0.0.1:`port` (no persistence); up when it answers PING."""
    proc = _popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
        ],
        os.environ.copy(),
        log,
    )
    wait_for_port(proc, port, log)
    return proc


def init_postgres(data_dir: Path) -> Path:
    """initdb a throwaway PostgreSQL cluster into `data_dir` (owned by the postgres user: the server
    refuses to run as root), trusting local connections. Its parent must let the postgres user through
    (it is made so: mode 0711)."""
    data_dir.parent.chmod(0o711)
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(data_dir, "postgres", "postgres")
    _as_postgres([_pg_bin("initdb"), "-D", str(data_dir), "-A", "trust", "-U", "postgres", "--no-sync"])
    return data_dir


def start_postgres(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    """The throwaway cluster's server on 127.0.0.1:`port` (socket in its own directory); up when it
    accepts connections."""
    proc = subprocess.Popen(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            _pg_bin("postgres"),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(data_dir),
            "-c",
            "fsync=off",
        ],
        stdout=open(log, "a"),  # noqa: SIM115 (the child keeps it)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_port(proc, port, log)
    return proc


def stop_postgres(proc: subprocess.Popen, data_dir: Path) -> None:
    """Fast shutdown (clients are cut off at once), waited for until the server is gone."""
    if proc.poll() is None or (data_dir / "postmaster.pid").exists():
        _as_postgres([_pg_bin("pg_ctl"), "stop", "-D", str(data_dir), "-m", "fast", "-w", "-t", "60"])
    proc.wait(timeout=60)


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (/usr/lib/postgresql/*/bin)")
    return str(found[-1])


def _as_postgres(args: list[str]) -> None:
    done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")


def wait_for_port(proc: subprocess.Popen, port: int, log: Path | None, timeout: float = 30) -> None:
    """Return once something listens on 127.0.0.1:`port`; raise (with the tail of `log`) if `proc` exits
    first or nothing listens within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before it listened on {port}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listened on {port} within {timeout} s:\n{_tail(log)}")


def _tail(log: Path | None) -> str:
    return log.read_text()[-4000:] if log else ""
