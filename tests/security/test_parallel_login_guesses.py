"""Parallel sign-in guesses cannot get more than the limit through (SQLite and PostgreSQL profiles)."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client, override_settings
from django.urls import reverse

from accounts import throttle
from accounts.clientip import client_ip
from accounts.models import AuditEvent, LoginThrottle
from tests.factories import make_user


def _parallel(count: int, attempt) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = attempt(i)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.django_db(transaction=True)
@override_settings(LOGIN_MAX_FAILURES=5, LOGIN_IP_MAX_FAILURES=100)
def test_parallel_guesses_on_one_account_from_many_addresses_get_at_most_the_limit():
    make_user("target-admin", "admin", password=None)
    results = _parallel(12, lambda i: throttle.reserve("target-admin", f"127.0.1.{i + 1}"))
    assert None not in results
    assert sum(r.locked_until is None for r in results) == 5
    assert LoginThrottle.objects.get(username="target-admin", source_ip="").failures == 5


@pytest.mark.django_db(transaction=True)
@override_settings(LOGIN_MAX_FAILURES=100, LOGIN_IP_MAX_FAILURES=4)
def test_parallel_guesses_over_ipv6_are_counted_per_64():
    # Test strings stay on loopback, so the attempts come from ::1 (whose /64 is ::/64); address_key is
    # what puts any other address of that /64 in the same bucket.
    make_user("someone", "viewer", password=None)
    results = _parallel(10, lambda i: throttle.reserve("someone", "::1"))
    assert sum(r.locked_until is None for r in results) == 4
    assert LoginThrottle.objects.get(username="", source_ip="::/64").failures == 4
    assert throttle.address_key("::1") == throttle.address_key("0:0:0:0:0:0:0:1") == "::/64"
    assert throttle.address_key("::ffff:127.0.0.1") == "127.0.0.1"  # a v4 client on a dual-stack socket


@pytest.mark.django_db(transaction=True)
@override_settings(LOGIN_UNKNOWN_MAX_FAILURES=3, LOGIN_IP_MAX_FAILURES=100)
def test_guessing_names_that_are_no_user_shares_one_bucket_and_stores_no_name():
    results = _parallel(8, lambda i: throttle.reserve(f"guess-{i}-secret", f"127.0.2.{i + 1}"))
    assert sum(r.locked_until is None for r in results) == 3
    assert not LoginThrottle.objects.filter(username__contains="guess").exists()


@pytest.mark.django_db(transaction=True)
@override_settings(LOGIN_MAX_FAILURES=3, LOGIN_IP_MAX_FAILURES=100)
def test_parallel_sign_in_posts_are_refused_past_the_limit():
    make_user("posted", "viewer", password=None)

    def post(i: int) -> int:
        client = Client(REMOTE_ADDR=f"127.0.3.{i + 1}")
        return client.post(reverse("login"), {"username": "posted", "password": "wrong"}).status_code

    codes = _parallel(8, post)
    assert sorted(codes) == [200] * 3 + [429] * 5
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 3


@pytest.mark.django_db
@override_settings(LOGIN_MAX_FAILURES=2, LOGIN_IP_MAX_FAILURES=4, LOGIN_ACCOUNT_LOCKOUT_SECONDS=60)
def test_one_address_cannot_keep_an_admin_locked_out():
    """The attacker's address is locked for the long period; the account lock is short and ends."""
    from django.utils import timezone

    make_user("boss", "admin", password=None)
    attacker = "127.0.4.1"
    for _ in range(2):
        assert throttle.reserve("boss", attacker).locked_until is None
    LoginThrottle.objects.filter(username="boss").update(locked_until=timezone.now())  # account lock ends
    for _ in range(2):
        assert throttle.reserve("boss", attacker).locked_until is None
    # Address now locked for LOGIN_LOCKOUT_SECONDS: further guesses are refused and no longer count.
    LoginThrottle.objects.filter(username="boss").update(locked_until=timezone.now())
    refused = throttle.reserve("boss", attacker)
    assert refused.locked_until is not None and refused.refused_by == "address"
    assert throttle.reserve("boss", "127.0.4.2").locked_until is None  # the admin, elsewhere


@override_settings(TRUSTED_PROXIES=["127.0.0.2"])
def test_forwarded_for_is_honoured_only_from_a_trusted_proxy(rf):
    via_proxy = rf.get("/", REMOTE_ADDR="127.0.0.2", HTTP_X_FORWARDED_FOR="127.9.9.9, 127.0.5.5")
    assert client_ip(via_proxy) == "127.0.5.5"  # the right-most hop the proxy added, not the client's claim
    direct = rf.get("/", REMOTE_ADDR="127.0.0.3", HTTP_X_FORWARDED_FOR="127.0.5.5")
    assert client_ip(direct) == "127.0.0.3"
