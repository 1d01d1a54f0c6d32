"""An operator turns "restart on failure" on for lab-g1 in the browser, hv-a dies, and the topology, never
reloaded, shows lab-g1 "recovering" while sanlock makes its restart on hv-b wait, then running on hv-b.

Real parts end to end (docs/ha.md, sections 3 and 4): the lab in sanlock mode (lab-g1 holds its lease on
hv-a), daphne, a django-q2 worker (`manage.py qcluster`) and Debian's Chromium. Nothing in this process
plays the watcher or the recovery: the worker's inventory watcher (a full round every
INVENTORY_REFRESH_SECONDS) marks hv-a suspect, then failed after the grace period, reading hv-a's lease
in the lab's lockspace; that transaction enqueues the recovery job, which the worker runs. Its start of
lab-g1 on hv-b waits inside sanlock until hv-a is dead to it (~80 s at the lab's io timeout), and that wait
is when the page must say "recovering". The test reads what the pages show and what libvirt says, never
how long anything took.
"""

import time

import pytest
from playwright.sync_api import expect

import lab as kvmlab
from lab import guests, hypervisors
from lab.config import SANLOCK_LOCKSPACE, paths
from lab.handle import LabHandle
from tests.e2e.lab_support import seed_lab, sign_in
from tests.sanlock_mode import sanlock_mode
from tests.servers import drop_server_env
from tests.servers import server_env as make_server_env

# Once per suite: four minutes of the lab switched to sanlock mode and back (tests/conftest.py).
pytestmark = [pytest.mark.e2e, pytest.mark.lab, pytest.mark.once]

PASSWORD = "redundancy-password-42"
GUEST = "lab-g1"  # starts on hv-a
GRACE_S = 20  # the lab HA test's: shorter than sanlock's dead-host time, so the restart waits in sanlock
LEASE_WAIT_S = 240


@pytest.fixture
def sanlock_lab():
    """The lab in sanlock mode at its initial placement; afterwards taken down (hv-a is half dead) and
    brought up in the mode this session found, reset, as tests/lab/test_ha_restarts_the_guests_of_a_dead_host.py
    leaves it."""
    try:
        kvmlab.preflight()
    except kvmlab.LabError as exc:
        pytest.skip(f"lab unavailable: {exc}")
    with sanlock_mode():
        lab = LabHandle()
        lab.wait_heartbeat(GUEST, timeout=60)
        yield lab


@pytest.fixture
def server_env(sanlock_lab, tmp_path_factory):
    """The deployment's environment with the HA settings (kvmcluster/settings.py) for web, worker and seed:
    the lab's lockspace readable here (the second failure signal), the lab test's grace period, and a lease
    wait longer than sanlock's dead-host time. Depends on the lab so it is torn down before the lab is."""
    server = make_server_env(
        tmp_path_factory.mktemp("e2e-data"),
        tag="e2e",
        KVMCLUSTER_HA_LOCKSPACE=f"{SANLOCK_LOCKSPACE}:{paths().lockspace}",
        KVMCLUSTER_HA_GRACE_SECONDS=str(GRACE_S),
        KVMCLUSTER_HA_LEASE_WAIT_SECONDS=str(LEASE_WAIT_S),
    )
    yield server
    drop_server_env(server)


@pytest.fixture
def cluster(server_env, sanlock_lab):
    return seed_lab(server_env, {"olga": ("operator", PASSWORD)})


def test_operator_watches_a_dead_hosts_guest_recover_on_the_other_host(
    browser, live_server_url, cluster, worker, sanlock_lab
):
    g1 = cluster["guests"][GUEST]
    hv_a, hv_b = cluster["hypervisors"]["hv-a"], cluster["hypervisors"]["hv-b"]
    context = browser.new_context(base_url=live_server_url)

    # The guest page: the operator turns "restart on failure" on in the Redundancy panel.
    page = sign_in(context, "olga", PASSWORD)
    page.goto(f"/guests/{g1}/")
    panel = page.locator(f"#guest-{g1}-ha")
    expect(panel.locator(f"#guest-{g1}-ha-state")).to_have_text("off")
    panel.get_by_label("Restart on a healthy host when its host fails").check()
    panel.get_by_label("Priority (higher restarts first)").fill("5")
    panel.get_by_role("button", name="Save").click()
    expect(page.locator(f"#guest-{g1}-ha-state")).to_have_text("on, priority 5", timeout=30_000)
    expect(page.locator(f"#guest-{g1}-ha-refused")).to_have_count(0)

    # The topology, left open and never reloaded.
    topology = context.new_page()
    topology.goto("/")
    card_a, card_b = topology.locator(f"#hypervisor-{hv_a}-card"), topology.locator(f"#hypervisor-{hv_b}-card")
    expect(card_a).to_contain_text(GUEST)
    expect(card_b).not_to_contain_text(GUEST)
    expect(topology.locator("[data-live-status]").first).to_have_attribute("data-live", "on", timeout=15_000)
    topology.evaluate("window.__e2eMarker = 'no reload'")

    t0 = time.monotonic()
    kvmlab.crash_host("hv-a")
    seen: dict[str, float] = {}

    # The watcher declares hv-a failed (grace period, no libvirt answer, no lease renewal); the recovery job
    # claims lab-g1 and asks hv-b to start it, which waits inside sanlock: meanwhile the page says so.
    recovery_note = topology.locator(f"#hypervisor-{hv_a}-recovery")
    expect(recovery_note).to_contain_text("Failed, being recovered: 1 guest restarting", timeout=180_000)
    seen["failed, being recovered"] = time.monotonic() - t0
    chip_badge = card_a.locator(f"#guest-{g1}-recovering-chip")
    expect(chip_badge).to_be_visible(timeout=10_000)
    expect(chip_badge).to_contain_text("recovering")
    expect(topology.locator(f"#guest-{g1}-recovering-row")).to_contain_text("recovering")
    seen["recovering shown"] = time.monotonic() - t0

    # sanlock grants the lease once hv-a is dead to it: lab-g1 runs on hv-b, "recovering" gone with the chip.
    expect(card_b).to_contain_text(GUEST, timeout=LEASE_WAIT_S * 1000)
    seen["on hv-b's card"] = time.monotonic() - t0
    expect(topology.locator(f"#guest-{g1}-recovering-chip")).to_have_count(0, timeout=10_000)
    expect(topology.locator(f"#guest-{g1}-recovering-row")).to_have_count(0, timeout=10_000)
    expect(card_a).not_to_contain_text(GUEST)
    expect(recovery_note).to_contain_text("Failed: its guests with restart on failure")
    assert topology.evaluate("window.__e2eMarker") == "no reload"

    # The guest page says what the last restart on failure did.
    page.goto(f"/guests/{g1}/")
    last = page.locator(f"#guest-{g1}-ha-last")
    expect(last).to_contain_text("hv-a failed: started on hv-b")
    expect(page.get_by_role("heading", level=1)).not_to_contain_text("recovering")

    # libvirt's word: lab-g1 runs on hv-b; hv-a's QEMUs are gone (its libvirtd is dead: by PID).
    assert guests.domains(sanlock_lab.uri("hv-b")).get(GUEST) == "running"
    assert hypervisors.qemu_pids(sanlock_lab.paths, "hv-a") == []
    print("\nseconds after the crash: " + ", ".join(f"{k} {v:.1f}" for k, v in seen.items()))
    print("last restart:", last.inner_text())
    context.close()
