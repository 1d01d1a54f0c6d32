"""An operator live-migrates a lab guest from the browser and watches it move; a viewer cannot.

Real parts end to end: the two-host lab (libvirtd x2, a TCG guest), daphne (runserver), a django-q2
worker (`manage.py qcluster`), Debian's Chromium. The topology tab stays open and never reloads: the
guest's chip appears under the target host when the worker's verified result is pushed.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.lab_support import guest_on_hv_a, seed_lab, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.lab]

PASSWORD = "migrate-password-42"
GUEST = "lab-g1"


@pytest.fixture
def lab_guest_on_a():
    yield from guest_on_hv_a(GUEST)


@pytest.fixture
def cluster(server_env, lab_guest_on_a):
    return seed_lab(server_env, {"olga": ("operator", PASSWORD), "victor": ("viewer", PASSWORD)})


def login(context, username: str):
    return sign_in(context, username, PASSWORD)


def test_operator_live_migrates_guest_and_viewer_cannot(browser, live_server_url, cluster, worker, lab_guest_on_a):
    guest_pk = cluster["guests"][GUEST]
    hv_b = cluster["hypervisors"]["hv-b"]
    context = browser.new_context(base_url=live_server_url)

    # Tab 1: the topology, left open (never reloaded).
    topology = login(context, "olga")
    topology.goto("/")
    target_card = topology.locator(f"#hypervisor-{hv_b}-card")
    expect(target_card).not_to_contain_text(GUEST)
    expect(topology.locator("[data-live-status]").first).to_have_attribute("data-live", "on", timeout=15_000)
    topology.evaluate("window.__e2eMarker = 'no reload'")

    # Tab 2: from the topology's chip to the guest page, then Migrate.
    page = context.new_page()
    page.goto("/")
    page.locator(f"#guest-{guest_pk}-chip").click()
    expect(page).to_have_url(re.compile(rf"/guests/{guest_pk}/$"))
    page.get_by_role("link", name="Migrate…").click()
    expect(page.get_by_role("heading", name=re.compile(f"Migrate {GUEST}"))).to_be_visible()
    page.get_by_role("radio", name=re.compile("^hv-b")).check()
    page.get_by_label("Bandwidth cap (MiB/s)").fill("8")
    page.get_by_role("button", name="Start migration").click()
    expect(page).to_have_url(re.compile(r"/migrations/\d+/$"), timeout=30_000)
    job_id = re.search(r"/migrations/(\d+)/", page.url).group(1)

    # The bar moves and the chart draws while libvirt copies memory.
    # (locators, not wait_for_function: the CSP forbids eval, as it should)
    bar = page.locator(f"#migration-{job_id}-bar")
    expect(bar).to_have_attribute("value", re.compile(r"^([6-9]|[1-9][0-9])$"), timeout=60_000)
    # The bandwidth control, greyed out while the job waited, applies now that it runs (no reload).
    expect(page.get_by_label("Bandwidth (MiB/s)")).to_be_enabled()
    # Meanwhile the topology tab's row and chip show the move with its percentage (pushed, not polled).
    for place in ("row", "chip"):
        move = topology.locator(f"#guest-{guest_pk}-move-{place}")
        expect(move).to_contain_text(re.compile(r"moving → hv-b \d+ %"), timeout=30_000)
        expect(move.get_by_role("progressbar", name=f"Guest migration of {GUEST}")).to_be_attached()
    line = page.locator(".migration-chart polyline.line--remaining")
    expect(line).to_have_attribute("points", re.compile(r"\S+ \S+ \S+"), timeout=60_000)
    expect(page.locator(f"#migration-{job_id}-state")).to_have_text("Succeeded", timeout=120_000)
    expect(page.locator(f"#migration-{job_id}-result")).to_contain_text("Downtime")

    # Tab 1 saw the guest arrive on hv-b without a reload.
    expect(target_card).to_contain_text(GUEST, timeout=30_000)
    expect(topology.locator(f"#guest-{guest_pk}-move-row")).to_have_count(0)  # the re-pushed row has no move
    assert topology.evaluate("window.__e2eMarker") == "no reload"
    assert lab_guest_on_a.running_on(GUEST) == ["hv-b"]
    context.close()

    # A viewer: no Migrate control, and a direct POST is refused with 403.
    viewer_ctx = browser.new_context(base_url=live_server_url)
    vpage = login(viewer_ctx, "victor")
    vpage.goto(f"/guests/{guest_pk}/")
    expect(vpage.get_by_role("heading", name=re.compile(GUEST))).to_be_visible()
    expect(vpage.get_by_role("link", name="Migrate…")).to_have_count(0)
    token = next(c["value"] for c in viewer_ctx.cookies() if c["name"] == "csrftoken")
    resp = vpage.request.post(
        f"/guests/{guest_pk}/migrate/",
        form={"target": str(cluster["hypervisors"]["hv-a"]), "kind": "live"},
        headers={"X-CSRFToken": token, "Referer": live_server_url + "/"},
    )
    assert resp.status == 403
    assert "permission" in resp.text().lower()
    viewer_ctx.close()
