"""An operator takes hv-a down for maintenance from the browser and sees it emptied, without reloading.

Real parts end to end: the two-host lab, daphne (runserver), a django-q2 worker (`manage.py qcluster`),
Debian's Chromium. On hv-a's page the operator reads "Can I take this host down?": lab-g1 moves live and
lab-gcache (shut off) offline to hv-b, lab-g3 cannot move (its second NIC is on a bridge hv-b lacks). They
enter maintenance, moving the movable guests anyway, and watch the operation's counts reach "2 done" and its
state "Incomplete" naming lab-g3. The topology tab, open throughout and never reloaded, shows lab-g1 and
lab-gcache gone from hv-a's card and on hv-b's. The test reads the text the page shows (the counts), not
how it got there (polling or a socket push).
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.lab_support import guest_on_hv_a, seed_lab, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.lab]

PASSWORD = "maintenance-password-42"
MOVED = ("lab-g1", "lab-gcache")


@pytest.fixture
def lab_on_a():
    """lab-g1 running and lab-gcache shut off on hv-a (lab-g3 always is), lab-g2 on hv-b; lab-g1 and
    lab-gcache put back on hv-a after."""
    from hosts.drivers import libvirt as driver
    from hosts.drivers.types import MigrationOptions

    gen = guest_on_hv_a("lab-g1")
    lab = next(gen)

    def gcache_to_a() -> None:
        here = lab.current_host("lab-gcache")
        if here not in (None, "hv-a"):
            uuid = lab.guest_uuids["lab-gcache"]
            driver.migrate(lab.uri(here), lab.uri("hv-a"), uuid, MigrationOptions(live=False))

    gcache_to_a()
    if lab.current_host("lab-g2") == "hv-a":  # its home is hv-b: not part of this drain
        driver.migrate(lab.uri("hv-a"), lab.uri("hv-b"), lab.guest_uuids["lab-g2"], MigrationOptions(live=True))
    yield lab
    gcache_to_a()
    next(gen, None)  # lab-g1 back to hv-a


@pytest.fixture
def cluster(server_env, lab_on_a):
    return seed_lab(server_env, {"olga": ("operator", PASSWORD)})


def test_operator_drains_hv_a_and_watches_it_empty(browser, live_server_url, cluster, worker, lab_on_a):
    hv_a, hv_b = cluster["hypervisors"]["hv-a"], cluster["hypervisors"]["hv-b"]
    context = browser.new_context(base_url=live_server_url)

    # Tab 1: the topology, left open (never reloaded).
    topology = sign_in(context, "olga", PASSWORD)
    topology.goto("/")
    card_a, card_b = topology.locator(f"#hypervisor-{hv_a}-card"), topology.locator(f"#hypervisor-{hv_b}-card")
    for name in MOVED:
        expect(card_a).to_contain_text(name)
        expect(card_b).not_to_contain_text(name)
    expect(topology.locator("[data-live-status]").first).to_have_attribute("data-live", "on", timeout=15_000)
    topology.evaluate("window.__e2eMarker = 'no reload'")

    # Tab 2: hv-a's page answers "can I take this host down?"
    page = context.new_page()
    page.goto(f"/hypervisors/{hv_a}/")
    panel = page.locator(f"#hypervisor-{hv_a}-drain-plan")
    expect(panel.get_by_role("heading", level=2)).to_contain_text("No, because lab-g3", timeout=30_000)
    expect(panel.locator(f"#drain-blocked-{cluster['guests']['lab-g3']}")).to_contain_text("br-a-only")
    g1_move = panel.locator(f"#drain-move-{cluster['guests']['lab-g1']}")
    expect(g1_move).to_contain_text("hv-b")
    expect(g1_move).to_contain_text("live")
    expect(panel.locator(f"#drain-move-{cluster['guests']['lab-gcache']}")).to_contain_text("offline")

    # Enter maintenance: the confirmation shows the plan again; move the movable guests anyway.
    panel.get_by_role("link", name="Enter maintenance…").click()
    expect(page.get_by_role("heading", name="Enter maintenance on hv-a")).to_be_visible()
    page.get_by_label(re.compile("Move the movable guests")).check()
    page.get_by_role("button", name="Enter maintenance and move 2 guests").click()
    expect(page).to_have_url(re.compile(r"/operations/\d+/$"), timeout=30_000)
    op_id = re.search(r"/operations/(\d+)/", page.url).group(1)

    # The operation's counts move on by themselves until both moves are done.
    counts = page.locator(f"#operation-{op_id}-counts")
    expect(counts).to_contain_text("of 2")
    expect(counts).to_have_text("2 done · 0 running · 0 waiting · 0 failed, of 2", timeout=180_000)
    expect(page.locator(f"#operation-{op_id}-state")).to_have_text("Incomplete", timeout=30_000)
    expect(page.locator(f"#operation-{op_id}-reasons")).to_contain_text("lab-g3")

    # Tab 1 saw hv-a's guests leave and arrive on hv-b without a reload.
    for name in MOVED:
        expect(card_a).not_to_contain_text(name, timeout=30_000)
        expect(card_b).to_contain_text(name)
    expect(card_a).to_contain_text("lab-g3")
    assert topology.evaluate("window.__e2eMarker") == "no reload"
    # libvirt's word: lab-g1 runs on hv-b only
    assert lab_on_a.running_on("lab-g1") == ["hv-b"]
    context.close()
