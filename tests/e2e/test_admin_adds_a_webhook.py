"""An admin adds a webhook target in the browser (its generated secret is shown once), finds the empty
delivery log, and removes it after a confirmation; the server allows loopback webhooks for this test."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.once]

ADMIN_PASSWORD = "admin-password-4242"


@pytest.fixture
def loopback_webhooks(server_env):
    server_env.env["KVMCLUSTER_WEBHOOK_ALLOW"] = "127.0.0.0/8"  # read by the server started after this
    return server_env.seed({"users": [{"username": "ada", "password": ADMIN_PASSWORD, "role": "admin"}]})


def test_admin_adds_a_webhook_then_removes_it(browser, loopback_webhooks, live_server_url):
    page = browser.new_context(base_url=live_server_url).new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("link", name="Notifications").click()
    expect(page.locator("#notification-target-table")).to_contain_text("No webhook targets yet")
    page.get_by_role("link", name="Add a target").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("chatops")
    page.get_by_label("Webhook (HTTP POST, signed)").check()
    page.get_by_label("Webhook URL").fill("http://127.0.0.1:9/hook")
    page.get_by_label("A guest migration failed").check()
    page.get_by_role("button", name="Add target").click()

    expect(page.locator("#messages")).to_contain_text("Added chatops")
    expect(page.locator("#messages")).to_contain_text("shown only now")
    expect(page.get_by_role("heading", name="chatops")).to_be_visible()
    expect(page.get_by_text("Nothing sent yet")).to_be_visible()

    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page.get_by_role("heading", name="Delete chatops?")).to_be_visible()
    page.get_by_role("button", name="Yes, delete chatops").click()
    expect(page.locator("#messages")).to_contain_text("Removed chatops")
    expect(page.locator("#notification-target-table")).to_contain_text("No webhook targets yet")
