"""An admin creates an operator in the browser, the operator signs in, the admin demotes them (the operator's
live socket is closed and reconnects with the new role) and finds all of it in the audit trail."""

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.once]

ADMIN_PASSWORD = "admin-password-4242"
NEW_PASSWORD = "Otter-Lantern-9917"


@pytest.fixture
def accounts(server_env):
    return server_env.seed({"users": [{"username": "ada", "password": ADMIN_PASSWORD, "role": "admin"}]})


def _poll(check, seconds: float) -> None:
    # Not page.wait_for_function: its string predicate is eval'd in the page, which our CSP forbids.
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def _sign_in(page, username, password):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_admin_creates_operator_then_audits_it(browser, live_server_url, accounts):
    admin = browser.new_context(base_url=live_server_url).new_page()
    _sign_in(admin, "ada", ADMIN_PASSWORD)
    expect(admin.get_by_role("link", name="Users")).to_be_visible()

    # Create: a weak password is refused with the validator's reason, then a strong one works.
    admin.get_by_role("link", name="Users").click()
    admin.get_by_role("link", name="Add user").click()
    admin.get_by_label("Username").fill("otto")
    admin.get_by_label("Operator: runs guest migrations").check()
    admin.get_by_label("Password", exact=True).fill("password123")
    admin.get_by_label("Password confirmation").fill("password123")
    admin.get_by_role("button", name="Create user").click()
    expect(admin.get_by_role("alert").first).to_contain_text("too common")
    admin.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    admin.get_by_label("Password confirmation").fill(NEW_PASSWORD)
    admin.get_by_role("button", name="Create user").click()
    expect(admin.locator("#messages")).to_contain_text("Created otto as operator")
    row = admin.locator("tr", has_text="otto")
    expect(row).to_contain_text("operator")

    # The operator signs in and keeps the topology open: its live socket is connected.
    operator = browser.new_context(base_url=live_server_url).new_page()
    _sign_in(operator, "otto", NEW_PASSWORD)
    expect(operator.locator(".role-badge")).to_have_text("operator")
    expect(operator.get_by_role("link", name="Users")).to_have_count(0)
    live = operator.locator("[data-live-status]").first
    expect(live).to_have_attribute("data-live", "on", timeout=15_000)
    operator.evaluate("window.__closed = 0; document.addEventListener('htmx:wsClose', () => window.__closed++)")

    # The admin makes otto a viewer: otto's socket is closed within seconds and reconnects.
    row.get_by_role("link", name="Change role of otto").click()
    admin.get_by_label("Viewer: sees everything").check()
    admin.get_by_role("button", name="Save role").click()
    expect(admin.locator("#messages")).to_contain_text("otto is now viewer")
    _poll(lambda: operator.evaluate("window.__closed") > 0, seconds=10)
    expect(live).to_have_attribute("data-live", "on", timeout=15_000)

    # The users page is refused to otto with the reason.
    response = operator.goto("/users/")
    assert response.status == 403
    expect(operator.locator("#forbidden-reason")).to_contain_text("manage users")

    # The audit trail, filtered to user changes, shows both, newest first, with the actor.
    admin.get_by_role("link", name="Audit").click()
    admin.get_by_label("Action").fill("user.")
    admin.get_by_role("button", name="Filter").click()
    expect(admin).to_have_url(re.compile(r"action=user\."))
    table = admin.locator("#audit-table tbody")
    expect(table.locator("tr")).to_have_count(2)
    expect(table.locator("tr").nth(0)).to_contain_text("user.role_changed")
    expect(table.locator("tr").nth(1)).to_contain_text("user.created")
    expect(table).to_contain_text("ada")

    # otto's sign-in is there too, and its detail page shows the source IP and an intact hash.
    admin.get_by_label("Action").fill("auth.login")
    admin.get_by_label("Actor (username)").fill("otto")
    admin.get_by_role("button", name="Filter").click()
    expect(table.locator("tr")).to_have_count(1)
    table.get_by_role("link").first.click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text("auth.login")
    expect(admin.locator("dl.facts").first).to_contain_text("127.0.0.1")
    expect(admin.locator("[id$=-chain]")).to_contain_text("linked in the chain and matches its hash")
