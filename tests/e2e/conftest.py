"""A real server for browser tests: daphne (Django's runserver as daphne provides it) in a subprocess.

The server gets its own database: in the embedded profile a fresh SQLite directory; in the production
profile (DATABASE_URL + REDIS_URL set) a throwaway PostgreSQL database next to the configured one and a
private channel-layer prefix on the same Redis. Tests on test-driver hosts seed it through
tests/e2e/seed.py (the real inventory refresh against libvirt test-driver node files) and run no django-q2
worker: a scheduled refresh in another process would read its own copy of the test-driver hosts. Tests on
the real lab (tests/e2e/lab_support.py) ask for the `worker` fixture: their migrations run in it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PYTHON,
    ROOT,
    drop_postgres,
    free_port,
    stop_group,
    throwaway_postgres,
)


@dataclass
class ServerEnv:
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


@pytest.fixture
def server_env(tmp_path_factory) -> ServerEnv:
    data_dir = tmp_path_factory.mktemp("e2e-data")
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
    db_url = env.get("DATABASE_URL")
    if db_url:
        env["DATABASE_URL"] = throwaway_postgres(db_url)
    if env.get("REDIS_URL"):
        env["KVMCLUSTER_CHANNEL_PREFIX"] = f"kvmcluster-e2e-{os.getpid()}"
    server = ServerEnv(env=env, data_dir=data_dir)
    server.run("manage.py", "migrate", "--noinput")
    if not db_url:
        server.run("manage.py", "migrate", "--database", "channels", "--noinput")
    yield server
    if db_url:
        drop_postgres(env["DATABASE_URL"])
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def live_server_url(server_env: ServerEnv):
    """Start daphne on a free loopback port; stop it (by its PID) after the test."""
    port = free_port()
    log = open(server_env.data_dir / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=server_env.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/login/", timeout=2) as resp:
                if resp.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start:\n{(server_env.data_dir / 'server.log').read_text()}")
        time.sleep(0.3)
    yield url
    stop_group(proc, timeout=15)
    log.close()


@pytest.fixture
def worker(server_env):
    """A django-q2 cluster (`manage.py qcluster`) on the test server's database; stopped by its process group."""
    log = open(server_env.data_dir / "worker.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [PYTHON, "manage.py", "qcluster"],
        cwd=ROOT,
        env=server_env.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield proc
    stop_group(proc, timeout=20)  # the cluster we started and its forked workers
    log.close()
    print("worker log (tail):", (server_env.data_dir / "worker.log").read_text()[-4000:])  # shown on failure


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
