"""Two web and two worker nodes on one PostgreSQL and one Redis, the real lab underneath.

A live move requested on web 1 runs once, on one worker (one "started" audit row, one owner), and a viewer
on web 2 sees its progress and its end (the channel layer carries the worker's pushes to both webs). Then
the worker running a move is killed (SIGKILL, its whole process group): libvirt carries the move on, the
other worker's reconciler adopts or settles it, and libvirt, the job and the page agree on where the
guest is.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.lab_support import sign_in as browser_sign_in
from tests.scale.conftest import GUEST
from tests.scale.two_workers import NAMES, PASSWORD, request_move, sign_in

pytestmark = [pytest.mark.lab, pytest.mark.e2e]


def other_host(lab) -> str:
    return "hv-b" if lab.current_host(GUEST) == "hv-a" else "hv-a"


def viewer(browser, base_url: str):
    """A signed-in viewer's tab on `base_url` (signed in before the move is asked: a login takes longer
    than an uncapped lab move)."""
    return browser_sign_in(browser.new_context(base_url=base_url), "olga", PASSWORD)


def watch_job(page, job_id: int) -> list[str]:
    """Open the job's page in the viewer's tab; the frames its job socket receives."""
    frames: list[str] = []

    def on_socket(ws):
        if f"/ws/migrations/{job_id}/" in ws.url:
            ws.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, str) else ""))

    page.on("websocket", on_socket)
    page.goto(f"/migrations/{job_id}/")
    return frames


def test_a_move_asked_on_one_web_runs_once_and_is_seen_on_the_other(all_workers, browser, lab_guest):
    nodes = all_workers
    target = other_host(lab_guest)
    page = viewer(browser, nodes.webs[1])
    client = sign_in(nodes.webs[0])
    started = time.time()
    # The cap makes the move last a few seconds, so web 2's viewer is connected while it runs.
    job_id = request_move(client, nodes.ids["guests"][GUEST], nodes.ids["hypervisors"][target], bandwidth_mibps=16)
    frames = watch_job(page, job_id)

    state = page.locator(f"#migration-{job_id}-state")
    expect(state).to_have_text("Succeeded", timeout=180_000)
    print(f"move #{job_id} on the lab: Succeeded on web 2's page {time.time() - started:.1f} s after the request")

    job = nodes.job(job_id)
    assert job["state"] == "succeeded" and job["where"] == "target"
    assert job["audit"].count("migration.started") == 1, job["audit"]
    owner = job["owner"].split("/")[0]
    assert owner in NAMES
    assert lab_guest.running_on(GUEST) == [target]
    expect(page.locator(f"#migration-{job_id}-worker")).to_contain_text(f"{owner}/")
    # web 2's viewer got the worker's progress, not only the end: cards that were running, then the final one
    running = [f for f in frames if 'data-state="running"' in f]
    assert running, f"{len(frames)} frames, none while the move ran"
    assert any('data-state="succeeded"' in f for f in frames)
    print(f"viewer on web 2: {len(frames)} frames ({len(running)} while running); worker {job['owner']}")
    page.context.close()


def test_a_killed_worker_leaves_the_guest_on_one_host_and_the_dashboard_says_which(all_workers, browser, lab_guest):
    nodes = all_workers
    target = other_host(lab_guest)
    source = lab_guest.current_host(GUEST)
    page = viewer(browser, nodes.webs[1])
    client = sign_in(nodes.webs[0])
    # A cap keeps the move running long enough to kill its worker in the middle of it.
    job_id = request_move(client, nodes.ids["guests"][GUEST], nodes.ids["hypervisors"][target], bandwidth_mibps=4)
    watch_job(page, job_id)
    expect(page.locator(f"#migration-{job_id}-bar")).to_have_attribute(
        "value", re.compile(r"^([1-9]|[1-9][0-9])$"), timeout=120_000
    )
    owner = nodes.job(job_id)["owner"]
    victim = owner.split("/")[0]
    survivor = next(n for n in NAMES if n != victim)
    nodes.kill_worker(victim)

    settled = nodes.wait(
        "the job settled after its worker was killed",
        lambda: (j := nodes.job(job_id))["state"] in ("succeeded", "failed", "cancelled") and j,
        timeout=240,
        every=2,
    )
    after = time.time() - nodes.killed_at[victim]
    on = lab_guest.running_on(GUEST)
    assert len(on) == 1, f"libvirt runs {GUEST} on {on}"
    where = {"target": target, "source": source}.get(settled["where"])
    assert where == on[0], f"the job says {settled['where']}, libvirt says {on}"
    assert settled["state"] == ("succeeded" if where == target else "failed")
    if any("re-attached" in note for note in settled["reconciler"]):  # libvirt still moved it: adopted
        assert settled["owner"].startswith(f"{survivor}/"), settled
    assert settled["audit"].count("migration.started") == 1
    assert len(settled["reconciler"]) >= 1, settled
    print(
        f"move #{job_id}: {victim} killed mid-move; {survivor} settled it {settled['state']} {after:.1f} s later "
        f"({'; '.join(settled['reconciler'])})"
    )
    expect(page.locator(f"#migration-{job_id}-state")).to_have_text(settled["state"].capitalize(), timeout=60_000)
    expect(page.locator(f"#migration-{job_id}-worker")).to_have_text(settled["owner"])
    page.context.close()
