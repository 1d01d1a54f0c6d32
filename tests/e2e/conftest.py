"""A real server for browser tests: daphne (Django's runserver as daphne provides it) in a subprocess.

The server gets its own database: in the embedded profile a fresh SQLite directory; in the production
profile (DATABASE_URL + REDIS_URL set) a throwaway PostgreSQL database next to the configured one and a
private channel-layer prefix on the same Redis. Tests on test-driver hosts seed it through
tests/e2e/seed.py (the real inventory refresh against libvirt test-driver node files) and run no django-q2
worker: a scheduled refresh in another process would read its own copy of the test-driver hosts. Tests on
the real lab (tests/e2e/lab_support.py) ask for the `worker` fixture: their migrations run in it.
"""

from __future__ import annotations

import pytest

from tests.servers import (
    ServerEnv,
    chromium,
    drop_server_env,
    free_port,
    start_web,
    start_worker,
    stop_group,
)
from tests.servers import server_env as make_server_env


@pytest.fixture
def server_env(tmp_path_factory) -> ServerEnv:
    server = make_server_env(tmp_path_factory.mktemp("e2e-data"), tag="e2e")
    yield server
    drop_server_env(server)


@pytest.fixture
def live_server_url(server_env: ServerEnv):
    """Start daphne on a free loopback port; stop it (by its PID) after the test."""
    port = free_port()
    log = server_env.data_dir / "server.log"
    try:
        proc = start_web(server_env.env, port, log)
    except RuntimeError as exc:
        pytest.fail(f"server did not start: {exc}")
    yield f"http://127.0.0.1:{port}"
    stop_group(proc, timeout=15)
    print("server log (tail):", log.read_text(errors="replace")[-4000:])  # shown on failure, as the worker's


@pytest.fixture
def worker(server_env):
    """A django-q2 cluster (`manage.py qcluster`) on the test server's database; stopped by its process group."""
    proc = start_worker(server_env.env, server_env.data_dir / "worker.log")
    yield proc
    stop_group(proc, timeout=20)  # the cluster we started and its forked workers
    print("worker log (tail):", (server_env.data_dir / "worker.log").read_text()[-4000:])  # shown on failure


@pytest.fixture
def browser():
    with chromium() as launched:
        yield launched
