"""A user manages their own API tokens on the tokens page: created (the text shown once), listed with
the last use, revoked after a confirmation; every creation and revocation is an audit row, and a
request with a revoked, expired or unknown token is refused and audited as a denial."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.denials import _pair_key
from accounts.models import ApiTokenUse, AuditEvent
from accounts.tokens import api_token_create
from tests.factories import make_user
from tests.integration.accounts_support import rows

pytestmark = pytest.mark.django_db
GUESTS = "/api/v1/guests/"


@pytest.fixture
def olga():
    return make_user("olga", "operator", password=None)


@pytest.fixture
def page(olga):
    client = Client(REMOTE_ADDR="127.0.0.7")
    client.force_login(olga)
    return client


def _token_client(text: str) -> Client:
    return Client(REMOTE_ADDR="127.0.0.7", HTTP_AUTHORIZATION=f"Token {text}")


def test_create_shows_the_token_once_and_it_works(page, olga):
    response = page.post(reverse("token-list"), {"days": 7, "note": "backup script"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    text = re.search(r'<pre id="token-created-text">([0-9a-f]+)</pre>', response.content.decode())[1]
    token = AuthToken.objects.get(user=olga)
    assert text.startswith(token.token_key) and token.digest != text  # stored hashed
    assert timedelta(days=6, hours=23) < token.expiry - timezone.now() <= timedelta(days=7)
    row = rows("api_token.created")[-1]
    assert (row.actor_username, row.params["prefix"], row.params["note"]) == ("olga", token.token_key, "backup script")
    assert row.source_ip == "127.0.0.7"
    assert _token_client(text).get(GUESTS).status_code == 200
    listing = page.get(reverse("token-list")).content.decode()
    assert token.token_key in listing and text not in listing  # never shown again


def test_the_list_shows_when_a_token_was_last_used(page, olga):
    token, text = api_token_create(user=olga, days=30)
    assert "never" in page.get(reverse("token-list")).content.decode().split(f"token-{token.token_key}-used")[1][:200]
    before = timezone.now()
    assert _token_client(text).get(GUESTS).status_code == 200
    use = ApiTokenUse.objects.get(token=token)
    assert use.last_used_at >= before and use.last_used_ip == "127.0.0.7"
    cell = page.get(reverse("token-list")).content.decode().split(f"token-{token.token_key}-used")[1][:200]
    assert use.last_used_at.strftime("%Y-%m-%d %H:%M") in cell
    # recorded at most once a minute: a polling script does not write a row per request
    ApiTokenUse.objects.filter(token=token).update(last_used_at=before - timedelta(hours=1))
    assert _token_client(text).get(GUESTS).status_code == 200
    assert ApiTokenUse.objects.get(token=token).last_used_at == before - timedelta(hours=1)


def test_bad_days_are_a_form_error(page, olga):
    response = page.post(reverse("token-list"), {"days": 0})
    assert response.status_code == 400 and "errorlist" in response.content.decode()
    assert not AuthToken.objects.filter(user=olga).exists() and not rows("api_token.created")


def test_revoke_asks_first_then_the_token_is_refused_and_audited(page, olga):
    token, text = api_token_create(user=olga, days=30)
    url = reverse("token-revoke", kwargs={"pk": token.token_key})
    confirm = page.get(url)
    assert confirm.status_code == 200 and f"Revoke token {token.token_key}?" in confirm.content.decode()
    assert AuthToken.objects.filter(pk=token.pk).exists()  # asking is not revoking
    assert page.post(url).status_code == 302
    assert not AuthToken.objects.filter(pk=token.pk).exists()
    row = rows("api_token.revoked")[-1]
    assert (row.actor_username, row.params["prefix"]) == ("olga", token.token_key)
    refused = _token_client(text).get(GUESTS)
    assert refused.status_code == 401 and refused.json()["detail"]
    denial = AuditEvent.objects.filter(action="auth.denied").latest("id")
    assert denial.params["interface"] == "api" and denial.params["path"] == GUESTS
    assert denial.source_ip == "127.0.0.7" and denial.message == "API token refused: Invalid token"
    assert text not in str(denial.params) + denial.message


def test_an_expired_token_is_refused_and_the_denial_says_expired(olga):
    token, text = api_token_create(user=olga, days=1)
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert _token_client(text).get(GUESTS).status_code == 401
    denial = AuditEvent.objects.filter(action="auth.denied").latest("id")
    assert denial.message == f"API token refused: expired (token {token.token_key})"


def test_someone_elses_token_cannot_be_seen_or_revoked(page):
    other = make_user("vic", "viewer", password=None)
    token, _ = api_token_create(user=other, days=30)
    url = reverse("token-revoke", kwargs={"pk": token.token_key})
    assert page.get(url).status_code == 404 and page.post(url).status_code == 404
    assert AuthToken.objects.filter(pk=token.pk).exists() and not rows("api_token.revoked")
    assert token.token_key not in page.get(reverse("token-list")).content.decode()


def test_a_flood_of_bad_tokens_is_one_denial_row_per_window(settings):
    settings.DENIAL_AUDIT_WINDOW_SECONDS = 60
    cache.delete(_pair_key("anon:127.0.0.7", GUESTS))
    before = AuditEvent.objects.filter(action="auth.denied").count()
    for _ in range(20):
        assert _token_client("0123456789abcdef" * 4).get(GUESTS).status_code == 401
    assert AuditEvent.objects.filter(action="auth.denied").count() == before + 1
    cache.delete(_pair_key("anon:127.0.0.7", GUESTS))


def test_manage_py_and_the_page_share_the_service(page, olga):
    """`manage.py api_token revoke` and the page both call accounts.tokens.api_token_revoke; the page
    passes the owner, so it cannot reach another user's token even with a shared prefix."""
    from accounts.tokens import api_token_revoke

    mine, _ = api_token_create(user=olga, days=30)
    theirs, _ = api_token_create(user=make_user("vic", "viewer", password=None), days=30)
    assert api_token_revoke(prefix=theirs.token_key, user=olga, actor=olga) == 0
    assert api_token_revoke(prefix=mine.token_key, user=olga, actor=olga) == 1
    assert AuthToken.objects.filter(pk=theirs.pk).exists()
