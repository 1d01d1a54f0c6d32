"""An operator applies the balancer's proposal from the browser, on the real lab.

Two guests burning CPU (burn=1) make hv-a hot. The worker (`manage.py qcluster`) records the load every
10 s with its inventory watcher; a round on those rows (policy: host load from the guests, a 20 s hold,
the CPU mark between one and two burners, tests/lab/balancer_support.py) proposes moving one burner to
hv-b. The operator sees the proposal on hv-a's page, clicks Apply…, confirms, and follows the move on its
job page (pushed: no reload) while a topology tab, never reloaded, shows the guest arrive under hv-b.
libvirt then runs the guest on hv-b. Real parts: the lab, daphne, qcluster, Debian's Chromium."""

import json
import re
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect

from tests.e2e.lab_support import seed_lab, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.lab, pytest.mark.once]

PASSWORD = "balance-password-42"
BURNERS = {"lab-burn1": 7, "lab-burn2": 8}

# Run in the server's database: wait for 30 s of the watcher's rows, set the lab's policy, then run the
# round every 5 s (as its schedule would, sooner) until it proposes. Prints the proposal.
PROPOSE = """
import json, time
from django.utils import timezone
from migrations_app.models import BalancerProposal
from migrations_app.services.balancer import balancer_round
from tests.lab.balancer_support import BURNERS, guest_pct, set_policy

deadline = time.monotonic() + 240
while min(guest_pct(n, timezone.now()) for n in BURNERS) == 0.0 or time.monotonic() < deadline - 210:
    assert time.monotonic() < deadline, "the watcher recorded no CPU figure for the burning guests"
    time.sleep(5)
mark = set_policy("recommend", timezone.now())
while not BalancerProposal.objects.filter(state="proposed").exists():
    assert time.monotonic() < deadline, "no proposal"
    balancer_round(now=timezone.now())
    time.sleep(5)
p = BalancerProposal.objects.select_related("source", "target").get(state="proposed")
print(json.dumps({"id": p.pk, "guest": p.guest_name, "headline": p.headline, "mark": mark}))
"""


@pytest.fixture
def burning_lab():
    """The lab up, with two burning guests on hv-a (gone afterwards)."""
    import lab as kvmlab
    from lab.handle import LabHandle
    from tests.lab.migration_support import lab_guest

    try:
        kvmlab.preflight()
    except kvmlab.LabError as exc:
        pytest.skip(f"lab unavailable: {exc}")
    kvmlab.up(wait=True)
    handle = LabHandle()
    with ExitStack() as stack:
        for name, mac in BURNERS.items():
            stack.enter_context(lab_guest(handle, name, "hv-a", start=True, fill=4, burn=1, disk=False, mac_suffix=mac))
        yield handle


@pytest.fixture
def cluster(server_env, burning_lab):
    return seed_lab(server_env, {"olga": ("operator", PASSWORD)})


def test_operator_applies_the_proposal_to_move_a_burning_guest_to_hv_b(
    browser, live_server_url, server_env, cluster, worker, burning_lab
):
    from tests.lab.balancer_support import running_on

    hv_a, hv_b = cluster["hypervisors"]["hv-a"], cluster["hypervisors"]["hv-b"]
    proposal = json.loads(server_env.run("manage.py", "shell", "-c", PROPOSE).strip().splitlines()[-1])
    guest = proposal["guest"]
    assert guest in BURNERS and proposal["headline"].startswith(f"move {guest} from hv-a to hv-b: imbalance from")
    print("proposed:", proposal)
    context = browser.new_context(base_url=live_server_url)

    # Tab 1: the topology, left open (never reloaded).
    topology = sign_in(context, "olga", PASSWORD)
    topology.goto("/")
    target_card = topology.locator(f"#hypervisor-{hv_b}-card")
    expect(target_card).not_to_contain_text(guest)
    expect(topology.locator("[data-live-status]").first).to_have_attribute("data-live", "on", timeout=15_000)
    topology.evaluate("window.__e2eMarker = 'no reload'")

    # Tab 2: hv-a's page shows the proposal with its imbalance figures; Apply…, then confirm.
    page = context.new_page()
    page.goto(f"/hypervisors/{hv_a}/")
    panel = page.locator("#balancer-proposals")
    expect(panel).to_contain_text(proposal["headline"], timeout=15_000)
    expect(panel).to_contain_text(f"hv-a has been above {proposal['mark']:g} % CPU")
    panel.get_by_role("link", name="Apply…").click()
    expect(page.get_by_role("heading", name=f"Move {guest} from hv-a to hv-b?")).to_be_visible()
    page.get_by_role("button", name="Start the move").click()
    expect(page).to_have_url(re.compile(r"/migrations/\d+/$"), timeout=30_000)
    job_id = re.search(r"/migrations/(\d+)/", page.url).group(1)
    page.evaluate("window.__e2eMarker = 'no reload'")
    expect(page.locator(f"#migration-{job_id}-state")).to_have_text("Succeeded", timeout=180_000)
    assert page.evaluate("window.__e2eMarker") == "no reload"  # the job page was pushed its end

    # The topology tab saw the guest arrive on hv-b; libvirt runs it there.
    expect(target_card).to_contain_text(guest, timeout=30_000)
    assert topology.evaluate("window.__e2eMarker") == "no reload"
    assert running_on(burning_lab, guest) == ["hv-b"]

    # hv-a's page: the proposal is no longer open; its answer names the move.
    page.goto(f"/hypervisors/{hv_a}/")
    expect(panel.locator(".proposal")).to_have_count(0, timeout=15_000)
    expect(panel).to_contain_text(f"move #{job_id}")
    context.close()
