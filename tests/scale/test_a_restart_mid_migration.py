"""Redis, then PostgreSQL, restarted in the middle of a live move on the lab (two workers, one web).

Both servers are this test's own (a redis-server and an initdb'd PostgreSQL cluster on free loopback
ports, tests/servers.py): the machine's Redis and PostgreSQL are never restarted. libvirt drives the move
whatever happens to them; what is checked is that the dashboard catches up: the job settles as libvirt
says, and the viewer's page shows progress again and the end without a reload.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.lab_support import sign_in as browser_sign_in
from tests.scale.conftest import GUEST
from tests.scale.two_workers import PASSWORD, deploy, request_move, sign_in
from tests.servers import (
    drop_server_env,
    free_port,
    init_postgres,
    server_env,
    start_postgres,
    start_redis,
    stop_postgres,
)

pytestmark = [pytest.mark.lab, pytest.mark.e2e]

DOWN_S = 3


class OwnServers:
    """A Redis and a PostgreSQL of this test's own, restartable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.redis_port, self.pg_port = free_port(), free_port()
        self.pg_dir = init_postgres(root / "pg")
        self.redis = start_redis(self.redis_port, root, root / "redis.log")
        self.pg = start_postgres(self.pg_dir, self.pg_port, root / "postgres.log")

    @property
    def urls(self) -> dict[str, str]:
        return {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg_port}/kvmcluster",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
        }

    def restart_redis(self) -> None:
        os.killpg(self.redis.pid, signal.SIGKILL)
        self.redis.wait()
        time.sleep(DOWN_S)
        self.redis = start_redis(self.redis_port, self.root, self.root / "redis.log")

    def restart_postgres(self) -> None:
        stop_postgres(self.pg, self.pg_dir)
        time.sleep(DOWN_S)
        self.pg = start_postgres(self.pg_dir, self.pg_port, self.root / "postgres.log")

    def stop(self) -> None:
        if self.redis.poll() is None:
            os.killpg(self.redis.pid, signal.SIGKILL)
            self.redis.wait()
        stop_postgres(self.pg, self.pg_dir)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def restartable(tmp_path_factory, lab_guest):
    own = OwnServers(Path(tempfile.mkdtemp(prefix="kvt-restart-")))  # /tmp: the postgres user must reach it
    server = server_env(tmp_path_factory.mktemp("restart-data"), tag="restart", **own.urls)
    nodes = deploy(server)
    try:
        nodes.start(web_count=1)
        yield own, nodes
    finally:
        nodes.stop()
        for name in nodes.workers or ("node-1", "node-2"):
            print(f"--- {name} log (tail)\n{nodes.log(name).read_text()[-3000:]}")
        drop_server_env(server)
        own.stop()


class Viewer:
    """The job's page in Chromium, with every socket it opened to the job and the frames each received
    (each with the time it arrived)."""

    def __init__(self, browser, base_url: str, job_id: int) -> None:
        self.sockets: list[list[tuple[float, str]]] = []
        self.job_id = job_id
        self.back_at = 0.0  # when the restarted server answered again
        context = browser.new_context(base_url=base_url)
        self.page = browser_sign_in(context, "olga", PASSWORD)
        self.page.on("websocket", self._opened)
        self.page.goto(f"/migrations/{job_id}/")

    def _opened(self, ws) -> None:
        if f"/ws/migrations/{self.job_id}/" in ws.url:
            frames: list[tuple[float, str]] = []
            self.sockets.append(frames)
            ws.on("framereceived", lambda payload: frames.append((time.time(), _text(payload))))

    def frames_since(self, since: float) -> list[str]:
        return [f for frames in self.sockets for at, f in frames if at >= since]

    def wait_running(self) -> None:
        expect(self.page.locator(f"#migration-{self.job_id}-bar")).to_have_attribute(
            "value", re.compile(r"^([1-9]|[1-9][0-9])$"), timeout=120_000
        )


def _text(payload: str | bytes) -> str:
    return payload if isinstance(payload, str) else ""


def move_with_a_restart(restartable, browser, lab_guest, restart: str):
    own, nodes = restartable
    target = "hv-b" if lab_guest.current_host(GUEST) == "hv-a" else "hv-a"
    job_id = request_move(
        sign_in(nodes.webs[0]), nodes.ids["guests"][GUEST], nodes.ids["hypervisors"][target], bandwidth_mibps=4
    )
    viewer = Viewer(browser, nodes.webs[0], job_id)
    viewer.wait_running()
    sockets_before = len(viewer.sockets)
    t0 = time.time()
    getattr(own, f"restart_{restart}")()
    viewer.back_at = time.time()  # the server answers again
    expect(viewer.page.locator(f"#migration-{job_id}-state")).to_have_text("Succeeded", timeout=240_000)
    settled_s = time.time() - t0
    job = nodes.job(job_id)
    assert job["state"] == "succeeded" and job["where"] == "target", job
    assert lab_guest.running_on(GUEST) == [target]
    assert job["audit"].count("migration.started") == 1
    return viewer, sockets_before, job, settled_s


def test_a_redis_restart_mid_move_loses_nothing(restartable, browser, lab_guest):
    viewer, before, job, settled_s = move_with_a_restart(restartable, browser, lab_guest, "redis")
    # Progress reaches the page again once Redis is back, through the same socket (the pub/sub layer's
    # subscription reconnects inside daphne) or a new one (the socket dropped and htmx reopened it): either
    # way the page carries the move on to its end without a reload.
    after = viewer.frames_since(viewer.back_at)
    assert any('data-state="running"' in f for f in after), f"no progress after Redis came back ({len(after)} frames)"
    assert any('data-state="succeeded"' in f for f in after)
    print(
        f"Redis down {DOWN_S} s mid-move: Succeeded on the page {settled_s:.1f} s after the restart began; "
        f"{len(viewer.sockets) - before} socket(s) reopened, {len(after)} frames after; worker {job['owner']}"
    )
    viewer.page.context.close()


def test_a_postgresql_restart_mid_move_settles_right(restartable, browser, lab_guest):
    viewer, _before, job, settled_s = move_with_a_restart(restartable, browser, lab_guest, "postgres")
    # The worker that ran the move settled it itself: it skipped the progress copies it could not write
    # and retried its last writes (migrations_app/orchestrator/dbretry.py), so the reconciler had nothing
    # to do (without the retries the task died at its first write and the reconciler settled it).
    assert job["reconciler"] == [], job
    assert "migration.reconciled" not in job["audit"], job["audit"]
    print(
        f"PostgreSQL down {DOWN_S} s mid-move: Succeeded on the page {settled_s:.1f} s after the restart began; "
        f"reconciler: {job['reconciler'] or 'not needed'}; worker {job['owner']}"
    )
    viewer.page.context.close()
