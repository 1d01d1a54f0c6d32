"""A viewer trying every operator and admin action is refused, and each refusal is an audit row; a
flood of refusals is one row per window, and the next row counts the ones suppressed in between."""

import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor
from migrations_app.models import MigrationJob
from tests.integration.accounts_support import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    a = Hypervisor.objects.create(name="den-a", uri="test:///default")
    b = Hypervisor.objects.create(name="den-b", uri="test:///default?b")
    g = Guest.objects.create(uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", name="test", hypervisor=a)
    job = MigrationJob.objects.create(guest=g, guest_name="test", guest_uuid=g.uuid, source=a, target=b)
    return {"guest": g, "job": job, "b": b}


def test_every_refused_action_of_a_viewer_is_an_audit_row(world):
    viewer = make_user("den-viewer", "viewer", password=None)
    client = Client(REMOTE_ADDR="127.0.0.44")
    client.force_login(viewer)
    job, guest = world["job"], world["guest"]
    posts = {
        reverse("guest-migrate", args=[guest.pk]): {"target": world["b"].pk, "kind": "live"},
        reverse("migration-cancel", args=[job.pk]): {},
        reverse("migration-bandwidth", args=[job.pk]): {"mibps": 5},
        reverse("migration-postcopy", args=[job.pk]): {},
        reverse("guest-power", args=[guest.pk]): {"action": "destroy", "confirmed": "yes"},
        reverse("hypervisor-create"): {"name": "x", "uri": "qemu+tcp://127.0.0.1/system"},
        reverse("user-create"): {"username": "mallory", "role": "admin"},
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 403, url
    api = client.post("/api/v1/migrations/", {"guest": guest.pk, "target": "auto"}, content_type="application/json")
    assert api.status_code == 403
    rows = AuditEvent.objects.filter(action="auth.denied").order_by("id")
    assert [r.params["path"] for r in rows] == [*posts, "/api/v1/migrations/"]
    assert {(r.actor_username, r.params["role"], r.params["method"], r.source_ip, r.outcome) for r in rows} == {
        ("den-viewer", "viewer", "POST", "127.0.0.44", "refused")
    }
    assert [r.params["via"] for r in rows][-1] == "api"
    assert not MigrationJob.objects.exclude(pk=job.pk).exists() and not Hypervisor.objects.filter(name="x").exists()


def test_a_flood_of_refusals_is_one_row_per_window_and_the_next_counts_the_rest(world, settings):
    settings.KVMCLUSTER_DENIAL_WINDOW_SECONDS = 1
    client = Client(REMOTE_ADDR="127.0.0.45")
    client.force_login(make_user("den-flood", "viewer", password=None))
    url = reverse("migration-cancel", args=[world["job"].pk])
    for _ in range(30):
        assert client.post(url).status_code == 403
    rows = list(AuditEvent.objects.filter(action="auth.denied", actor_username="den-flood"))
    assert len(rows) == 1 and rows[0].params["suppressed"] == 0
    time.sleep(1.2)  # the window ends (the cache entry expires); not a timing assertion
    assert client.post(url).status_code == 403
    rows = list(AuditEvent.objects.filter(action="auth.denied", actor_username="den-flood").order_by("id"))
    assert len(rows) == 2 and rows[1].params["suppressed"] == 29
    other = reverse("migration-postcopy", args=[world["job"].pk])  # another path has its own window
    client.post(other)
    assert AuditEvent.objects.filter(action="auth.denied", actor_username="den-flood").count() == 3
