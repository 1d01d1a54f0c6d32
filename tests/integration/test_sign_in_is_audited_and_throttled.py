"""Sign-in, sign-out and failed sign-in leave audit rows with the source IP; repeated failures lock the pair."""

import pytest
from accounts_support import rows
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import LoginThrottle
from tests.factories import PASSWORD, make_user

IP = "127.0.0.9"


@pytest.fixture
def browser():
    return Client(REMOTE_ADDR=IP)


def _login(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


@pytest.mark.django_db
def test_login_page_renders_with_security_headers(browser):
    response = browser.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content and b"Sign in" in response.content
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp


@pytest.mark.django_db
def test_login_and_logout_are_audited_with_source_ip(browser):
    user = make_user("alice", "viewer")
    response = _login(browser, "alice", PASSWORD)
    assert response.status_code == 302
    [login] = rows("auth.login")
    assert (login.actor_id, login.actor_username, login.source_ip, login.outcome) == (user.pk, "alice", IP, "ok")
    assert browser.get(reverse("logout")).status_code == 405  # a link cannot sign anyone out
    response = browser.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    [logout] = rows("auth.logout")
    assert (logout.actor_username, logout.source_ip) == ("alice", IP)


@pytest.mark.django_db
def test_failed_login_is_audited_without_the_password(browser):
    make_user("bob", "operator")
    response = _login(browser, "bob", "wrong-password-123")
    assert response.status_code == 200 and b"Please enter a correct username and password" in response.content
    [failed] = rows("auth.login_failed")
    assert failed.actor is None and failed.source_ip == IP and failed.outcome == "failed"
    assert failed.params == {"username": "bob"}
    assert "wrong-password" not in str(failed.params) + failed.message


@pytest.mark.django_db
def test_inactive_user_cannot_sign_in_and_it_is_audited(browser):
    make_user("carol", "viewer", is_active=False)
    assert _login(browser, "carol", PASSWORD).status_code == 200
    assert rows("auth.login_failed", params__username="carol")
    assert not rows("auth.login")


@pytest.mark.django_db
@override_settings(LOGIN_MAX_FAILURES=3, LOGIN_IP_MAX_FAILURES=4)
def test_repeated_failures_lock_the_username_from_that_address(browser):
    make_user("dave", "admin")
    for _ in range(3):
        assert _login(browser, "dave", "nope-nope-nope").status_code == 200
    [throttled] = rows("auth.login_throttled")
    assert throttled.outcome == "refused" and throttled.params["username"] == "dave"

    # Locked: even the right password is refused, with the reason, and the refusal is audited.
    response = _login(browser, "dave", PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert rows("auth.login_refused", params__username="dave")
    assert not rows("auth.login")

    # The account lock holds across addresses, but it is the short one: once it ends, dave signs in from
    # another address while the guessing address stays locked.
    other = Client(REMOTE_ADDR="127.0.0.10")
    assert _login(other, "dave", PASSWORD).status_code == 429
    LoginThrottle.objects.filter(username="dave").update(locked_until=timezone.now())  # the minute passes
    assert _login(other, "dave", PASSWORD).status_code == 302


@pytest.mark.django_db
@override_settings(LOGIN_MAX_FAILURES=3)
def test_success_before_the_limit_clears_the_count(browser):
    make_user("erin", "viewer")
    _login(browser, "erin", "bad-password-1")
    _login(browser, "erin", "bad-password-2")
    assert _login(browser, "erin", PASSWORD).status_code == 302
    assert not LoginThrottle.objects.filter(username="erin").exists()


@pytest.mark.django_db
@override_settings(LOGIN_MAX_FAILURES=2, LOGIN_LOCKOUT_SECONDS=0, LOGIN_ACCOUNT_LOCKOUT_SECONDS=0)
def test_lock_ends_after_the_lockout(browser):
    make_user("frank", "viewer")
    _login(browser, "frank", "bad-password-1")
    _login(browser, "frank", "bad-password-2")
    assert _login(browser, "frank", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_pages_need_login(browser):
    response = browser.get(reverse("audit-list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_htmx_request_without_a_session_is_sent_to_the_login_page(browser):
    response = browser.get(reverse("audit-list"), headers={"HX-Request": "true"})
    assert response.status_code == 200 and response["HX-Redirect"] == f"{reverse('login')}?next=/audit/"
    assert response.content == b""  # nothing for htmx to swap into the page


@pytest.mark.django_db
def test_htmx_logout_sends_the_browser_to_the_login_page(browser):
    browser.force_login(make_user("hank", "viewer", password=None))
    response = browser.post(reverse("logout"), headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == reverse("login") and rows("auth.logout")
