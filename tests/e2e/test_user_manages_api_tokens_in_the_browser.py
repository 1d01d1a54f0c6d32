"""An operator creates an API token on their tokens page (shown once), uses it against the API, sees its
last use on the page, revokes it after the confirmation, and the API refuses it from then on."""

import re

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.once]

PASSWORD = "Otter-Lantern-9917"


@pytest.fixture
def accounts(server_env):
    return server_env.seed({"users": [{"username": "olga", "password": PASSWORD, "role": "operator"}]})


def test_operator_creates_uses_and_revokes_a_token(browser, live_server_url, accounts):
    page = browser.new_context(base_url=live_server_url).new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="API tokens").click()
    expect(page.locator("#token-table")).to_contain_text("No tokens")

    page.get_by_label("Valid for (days)").fill("7")
    page.get_by_label("Note").fill("e2e script")
    page.get_by_role("button", name="Create token").click()
    text = page.locator("#token-created-text").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", text)
    prefix = text[:15]

    api = httpx.Client(base_url=live_server_url, headers={"Authorization": f"Token {text}"})
    assert api.get("/api/v1/guests/").status_code == 200
    page.goto("/api-tokens/")
    expect(page.locator("body")).not_to_contain_text(text)  # shown once
    expect(page.locator(f"#token-{prefix}-used")).to_contain_text("UTC from 127.0.0.1")

    page.get_by_role("link", name=f"Revoke token {prefix}").click()
    expect(page.get_by_role("heading", name=f"Revoke token {prefix}?")).to_be_visible()
    page.get_by_role("button", name=f"Revoke {prefix}").click()
    expect(page.locator("#messages")).to_contain_text(f"Token {prefix} revoked")
    assert api.get("/api/v1/guests/").status_code == 401
