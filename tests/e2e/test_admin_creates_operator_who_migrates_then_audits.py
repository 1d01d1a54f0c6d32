"""The whole story end to end: an admin creates an operator in the browser, the operator live-migrates a
lab guest, and the admin filters the audit trail to that guest: request (with its pre-flight), start and
verified completion are there, attributed to the operator, in order, with an intact hash chain.

Real parts: the two-host lab (libvirtd x2, a TCG guest), daphne, a django-q2 worker, Debian's Chromium.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.lab_support import guest_on_hv_a, seed_lab, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.lab, pytest.mark.once]

ADMIN_PASSWORD = "admin-password-4242"
OPERATOR_PASSWORD = "Kestrel-Harbour-5531"
GUEST = "lab-g2"


@pytest.fixture
def lab_guest_on_a():
    yield from guest_on_hv_a(GUEST)


@pytest.fixture
def cluster(server_env, lab_guest_on_a):
    return seed_lab(server_env, {"ada": ("admin", ADMIN_PASSWORD)})


def test_admin_creates_operator_who_migrates_and_the_audit_shows_it(
    browser,
    live_server_url,
    cluster,
    worker,
    lab_guest_on_a,
):
    guest_pk = cluster["guests"][GUEST]

    # The admin creates the operator.
    admin = sign_in(browser.new_context(base_url=live_server_url), "ada", ADMIN_PASSWORD)
    admin.goto("/users/new/")
    admin.get_by_label("Username").fill("otto")
    admin.get_by_label("Operator: runs guest migrations").check()
    admin.get_by_label("Password", exact=True).fill(OPERATOR_PASSWORD)
    admin.get_by_label("Password confirmation").fill(OPERATOR_PASSWORD)
    admin.get_by_role("button", name="Create user").click()
    expect(admin.locator("#messages")).to_contain_text("Created otto as operator")

    # The operator live-migrates the guest to hv-b and waits for libvirt's verified result.
    operator = sign_in(browser.new_context(base_url=live_server_url), "otto", OPERATOR_PASSWORD)
    operator.goto(f"/guests/{guest_pk}/")
    operator.get_by_role("link", name="Migrate…").click()
    operator.get_by_role("radio", name=re.compile("^hv-b")).check()
    operator.get_by_role("button", name="Start migration").click()
    expect(operator).to_have_url(re.compile(r"/migrations/\d+/$"), timeout=30_000)
    job_id = re.search(r"/migrations/(\d+)/", operator.url).group(1)
    expect(operator.locator(f"#migration-{job_id}-state")).to_have_text("Succeeded", timeout=180_000)
    assert lab_guest_on_a.running_on(GUEST) == ["hv-b"]

    # The admin filters the audit trail to that guest: request, start, completion, oldest last.
    admin.goto("/audit/")
    admin.get_by_label("Guest (name or UUID)").fill(GUEST)
    admin.get_by_role("button", name="Filter").click()
    expect(admin).to_have_url(re.compile(rf"guest={GUEST}"))
    rows = admin.locator("#audit-table tbody tr")
    expect(rows.filter(has_text="migration.succeeded")).to_have_count(1, timeout=15_000)
    actions = [a.strip() for a in rows.locator("td:nth-child(4) code").all_inner_texts()]
    migration_actions = [a for a in actions if a.startswith("migration.")]
    assert migration_actions[0] == "migration.succeeded" and migration_actions[-1] == "migration.requested"
    assert "migration.started" in migration_actions
    for action in ("migration.requested", "migration.started", "migration.succeeded"):
        expect(rows.filter(has_text=action).first).to_contain_text("hv-a")
    expect(rows.filter(has_text="migration.requested").first).to_contain_text("otto")

    # The request row carries the options and the full pre-flight result; its hash is intact.
    rows.filter(has_text="migration.requested").first.get_by_role("link").first.click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text("migration.requested")
    params = admin.locator("[id$=-params]")
    expect(params).to_contain_text("hv-b")
    expect(params).to_contain_text(re.compile(r"preflight|checks", re.I))
    expect(admin.locator("[id$=-chain]")).to_contain_text("linked in the chain and matches its hash")

    # The completion row links back to the guest migration's timeline.
    admin.go_back()
    rows.filter(has_text="migration.succeeded").first.get_by_role("link").first.click()
    expect(admin.get_by_role("link", name=f"#{job_id} (its timeline)")).to_be_visible()
