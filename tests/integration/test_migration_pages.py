"""The guest migration pages against the database: constant query counts (an N+1 shows up here),
readable history, and viewers refused on every action endpoint."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosts.models import Guest, Hypervisor
from migrations_app.models import MigrationJob
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def jobs(n: int) -> None:
    a, _ = Hypervisor.objects.get_or_create(name="hv-a", uri="test:///a")
    b, _ = Hypervisor.objects.get_or_create(name="hv-b", uri="test:///b")
    for i in range(n):
        g = Guest.objects.create(uuid=uuid.uuid4(), name=f"g{Guest.objects.count()}", hypervisor=a)
        MigrationJob.objects.create(
            guest=g,
            guest_name=g.name,
            guest_uuid=g.uuid,
            source=a,
            target=b,
            state="succeeded",
            total_ms=2500 + i,
            downtime_ms=40,
            requested_by=None,
        )


def count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_history_page_query_count_does_not_grow_with_rows(client):
    make_user("vera", "viewer")
    assert client.login(username="vera", password=PASSWORD)
    jobs(3)
    small = count(client, reverse("migration-list"))
    jobs(40)
    assert count(client, reverse("migration-list")) == small
    body = client.get(reverse("migration-list")).content.decode()
    assert "hv-a → hv-b" in body and "Succeeded" in body and "40 ms" in body


def test_viewer_is_refused_on_every_action_endpoint(client):
    make_user("vera", "viewer")
    assert client.login(username="vera", password=PASSWORD)
    jobs(1)
    job = MigrationJob.objects.get()
    for name, args in (
        ("migration-cancel", [job.pk]),
        ("migration-bandwidth", [job.pk]),
        ("migration-postcopy", [job.pk]),
        ("guest-migrate", [job.guest_id]),
    ):
        assert client.post(reverse(name, args=args)).status_code == 403, name
    # target readiness is a GET (it runs the pre-flight against every host): refused to viewers too
    assert client.get(reverse("guest-migrate-targets", args=[job.guest_id])).status_code == 403
    assert client.get(reverse("migration-detail", args=[job.pk])).status_code == 200
    assert client.get(reverse("migration-progress", args=[job.pk])).status_code == 200


def test_target_readiness_follows_the_compression_option_with_libvirts_answer(client):
    """libvirt's test driver cannot compress a migration: ticking compression adds the check, and the
    target is blocked with libvirt's own words (a real libvirt answer, no mock)."""
    make_user("otto", "operator")
    assert client.login(username="otto", password=PASSWORD)
    a = Hypervisor.objects.create(name="hv-a", uri="test:///default")
    Hypervisor.objects.create(name="hv-b", uri="test:///default?b")
    # the test driver's own running guest, "test"
    g = Guest.objects.create(uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", name="test", hypervisor=a, power="running")
    url = reverse("guest-migrate-targets", args=[g.pk])
    plain = client.get(url, {"kind": "live"}).content.decode()
    assert "Both hosts can compress" not in plain
    compressed = client.get(url, {"kind": "live", "compressed": "on"}).content.decode()
    assert "Both hosts can compress the migration (XBZRLE)" in compressed
    assert "not supported by the connection driver" in compressed and "Untick compression" in compressed


def test_a_refused_post_shows_the_checks_for_the_options_it_was_sent_with(client):
    make_user("otto", "operator")
    assert client.login(username="otto", password=PASSWORD)
    a = Hypervisor.objects.create(name="hv-a", uri="test:///default")
    Hypervisor.objects.create(name="hv-b", uri="test:///default?b")
    g = Guest.objects.create(uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", name="test", hypervisor=a, power="running")
    response = client.post(reverse("guest-migrate", args=[g.pk]), {"compressed": "on", "kind": "live"})
    assert response.status_code == 400 and "This field is required" in response.content.decode()  # no target
    assert "Both hosts can compress the migration (XBZRLE)" in response.content.decode()


def test_a_waiting_live_job_shows_its_running_controls_greyed_out(client):
    make_user("otto", "operator")
    assert client.login(username="otto", password=PASSWORD)
    jobs(1)
    job = MigrationJob.objects.get()
    MigrationJob.objects.filter(pk=job.pk).update(state="pending", options={"allow_postcopy": True})
    page = client.get(reverse("migration-detail", args=[job.pk])).content.decode()
    assert page.count('disabled data-enable-when="running"') == 2  # bandwidth and post-copy
    assert "can be changed once the move is running" in page
    MigrationJob.objects.filter(pk=job.pk).update(state="running")
    page = client.get(reverse("migration-detail", args=[job.pk])).content.decode()
    assert "data-enable-when" not in page and 'name="mibps"' in page and "Switch to post-copy" in page
