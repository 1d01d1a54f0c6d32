"""A viewer hammering forbidden actions: every refusal is audited, a flood is one row plus a count."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from tests.factories import PASSWORD, make_user


@pytest.fixture
def guest(db):
    from hosts.models import Guest, Hypervisor

    hv = Hypervisor.objects.create(name="sec-a", uri="test:///default")
    return Guest.objects.create(uuid=uuid.uuid4(), name="sec-g1", hypervisor=hv)


def _viewer_client() -> Client:
    client = Client(REMOTE_ADDR="127.0.0.9")
    client.force_login(make_user("sec-viewer", "viewer", password=None))
    return client


def test_viewer_posting_forbidden_actions_leaves_denied_rows(guest):
    client = _viewer_client()
    urls = [
        reverse("guest-migrate", kwargs={"pk": guest.pk}),
        reverse("guest-power", kwargs={"pk": guest.pk}),
        reverse("hypervisor-create"),
        reverse("user-create"),
    ]
    for url in urls:
        assert client.post(url, {}).status_code == 403
    rows = AuditEvent.objects.filter(action="auth.denied").order_by("id")
    assert [r.params["path"] for r in rows] == urls
    assert {(r.actor_username, r.params["role"], r.params["method"], r.source_ip) for r in rows} == {
        ("sec-viewer", "viewer", "POST", "127.0.0.9")
    }


def test_a_viewer_refused_by_the_api_leaves_a_denied_row_too(guest):
    client = _viewer_client()
    body = {"guest": guest.pk, "target": "auto"}
    assert client.post("/api/v1/migrations/", body, content_type="application/json").status_code == 403
    assert (
        client.post(
            f"/api/v1/guests/{guest.pk}/power/", {"action": "start"}, content_type="application/json"
        ).status_code
        == 403
    )
    rows = AuditEvent.objects.filter(action="auth.denied").order_by("id")
    assert [(r.params["path"], r.params["interface"], r.params["perm"]) for r in rows] == [
        ("/api/v1/migrations/", "api", "accounts.run_migrations"),
        (f"/api/v1/guests/{guest.pk}/power/", "api", "accounts.power_guests"),
    ]


def test_a_flood_is_one_row_and_the_next_row_counts_the_suppressed(guest, settings):
    from django.core.cache import cache

    from accounts.denials import _pair_key

    settings.DENIAL_AUDIT_WINDOW_SECONDS = 60  # longer than 50 requests take on a loaded machine
    client = _viewer_client()
    url = reverse("guest-migrate", kwargs={"pk": guest.pk})
    for _ in range(50):
        assert client.post(url, {}).status_code == 403
    assert AuditEvent.objects.filter(action="auth.denied").count() == 1
    cache.delete(_pair_key("sec-viewer", url))  # the window ends (its cache entry expires), without waiting
    assert client.post(url, {}).status_code == 403
    rows = list(AuditEvent.objects.filter(action="auth.denied").order_by("id"))
    assert len(rows) == 2
    assert "suppressed" not in rows[0].params and rows[1].params["suppressed"] == 49


def test_failed_sign_in_as_nobody_does_not_store_what_was_typed(db):
    typed = "Hunter2-my-password"
    response = Client(REMOTE_ADDR="127.0.0.10").post(reverse("login"), {"username": typed, "password": "x"})
    assert response.status_code == 200
    row = AuditEvent.objects.filter(action="auth.login_failed").last()
    assert row.params["username"] == "unknown user" and len(row.params["username_hmac"]) == 32
    assert typed not in str(row.params) and typed not in row.message


def test_failed_sign_in_as_a_real_user_names_them(db):
    make_user("sec-real", "viewer")
    Client(REMOTE_ADDR="127.0.0.10").post(reverse("login"), {"username": "sec-real", "password": PASSWORD + "x"})
    row = AuditEvent.objects.filter(action="auth.login_failed").last()
    assert row.params == {"username": "sec-real"}


def test_a_job_whose_requester_lost_the_right_is_refused_and_audited(guest):
    from hosts.models import Hypervisor
    from migrations_app.models import MigrationJob
    from migrations_app.orchestrator.run import run_migration

    target = Hypervisor.objects.create(name="sec-b", uri="test:///default?b")
    viewer = make_user("sec-demoted", "viewer", password=None)  # requested as operator, demoted since
    job = MigrationJob.objects.create(
        guest=guest,
        guest_name=guest.name,
        guest_uuid=guest.uuid,
        source=guest.hypervisor,
        target=target,
        requested_by=viewer,
    )
    run_migration(job.pk)
    [row] = AuditEvent.objects.filter(action="auth.denied")
    assert row.actor_username == "sec-demoted" and row.params["interface"] == "job"
    assert row.params["path"] == f"job:migration/{job.pk}" and row.params["role"] == "viewer"
