"""Requests through the real pages on the real lab: per-host queueing in request order, the same
request posted 10 times at once gives one guest migration, viewers get no controls and a 403."""

import threading

import pytest
from django.test import Client
from django.urls import reverse

from migrations_app import services
from migrations_app.models import MigrationJob

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
PASSWORD = "a-long-enough-password-42"


def test_second_move_from_a_busy_host_waits_queued_then_runs_in_order(mlab, lab, settings):
    settings.MIGRATION_MAX_OUTGOING = 1
    mlab.ensure_on("lab-g1", "hv-a")
    mlab.ensure_on("lab-g2", "hv-a")
    first = mlab.request("lab-g1", "hv-b", bandwidth_mibps=10)
    second = mlab.request("lab-g2", "hv-b")
    assert first.state in ("pending", "running")  # the worker may already have claimed it
    assert second.state == "queued"
    assert {"key": "concurrency", "status": "warn"}.items() <= {
        k: v for i in second.preflight if i["key"] == "concurrency" for k, v in i.items()
    }.items()
    first = mlab.wait_done(first.pk)
    second = mlab.wait_done(second.pk)
    assert first.state == second.state == "succeeded", (first.error, second.error)
    assert second.started_at >= first.finished_at
    assert lab.running_on("lab-g1") == ["hv-b"] and lab.running_on("lab-g2") == ["hv-b"]


def test_same_request_posted_ten_times_at_once_gives_one_migration(mlab, lab, runner):
    runner.autostart = False  # we count jobs; nothing needs to move
    guest = mlab.ensure_on("lab-g1", "hv-a")
    url = reverse("guest-migrate", args=[guest.pk])
    data = {
        "target": mlab.hv("hv-b").pk,
        "kind": "live",
        "bandwidth_mibps": 5,
        "persist_dest": "on",
        "undefine_source": "on",
        "timeout_action": "abort",
        "shutdown_timeout_s": 60,
    }
    statuses: list[tuple[int, str]] = []
    barrier = threading.Barrier(10)

    def post():
        from django.db import connections

        c = Client()
        assert c.login(username=mlab.operator.username, password=PASSWORD)
        barrier.wait()
        r = c.post(url, data)
        statuses.append((r.status_code, r.content.decode()))
        connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert MigrationJob.objects.filter(guest_name="lab-g1").count() == 1
    assert sum(1 for s, _ in statuses if s == 302) == 1
    refusals = [body for s, body in statuses if s != 302]
    assert len(refusals) == 9 and all("already has an active guest migration" in b for b in refusals)
    assert all(s < 500 for s, _ in statuses)
    job = MigrationJob.objects.get(guest_name="lab-g1")
    services.migration_cancel(job=job, actor=mlab.operator)
    assert MigrationJob.objects.get(pk=job.pk).state == "cancelled"
    assert not mlab.guest("lab-g1").migrating


def test_viewer_sees_no_controls_and_gets_403_posting(mlab, lab, runner):
    runner.autostart = False
    guest = mlab.ensure_on("lab-g1", "hv-a")
    job = mlab.request("lab-g1", "hv-b")
    viewer = Client()
    assert viewer.login(username=mlab.viewer.username, password=PASSWORD)
    page = viewer.get(reverse("migration-detail", args=[job.pk]))
    assert page.status_code == 200
    assert "Cancel migration" not in page.content.decode() and f"#{job.pk}" in page.content.decode()
    for name in ("migration-cancel", "migration-bandwidth", "migration-postcopy"):
        r = viewer.post(reverse(name, args=[job.pk]), {"mibps": 5})
        assert r.status_code == 403, name
        assert "run guest migrations" in r.content.decode().lower() or "permission" in r.content.decode().lower()
    r = viewer.post(reverse("guest-migrate", args=[guest.pk]), {"target": mlab.hv("hv-b").pk, "kind": "live"})
    assert r.status_code == 403
    assert MigrationJob.objects.count() == 1
    operator = Client()
    assert operator.login(username=mlab.operator.username, password=PASSWORD)
    assert "Cancel migration" in operator.get(reverse("migration-detail", args=[job.pk])).content.decode()
    r = operator.post(reverse("migration-cancel", args=[job.pk]))
    assert r.status_code == 302 and MigrationJob.objects.get(pk=job.pk).state == "cancelled"


def test_migrate_form_shows_readiness_per_target(mlab, lab):
    guest = mlab.ensure_on("lab-g3", "hv-a")
    op = Client()
    assert op.login(username=mlab.operator.username, password=PASSWORD)
    body = op.get(reverse("guest-migrate", args=[guest.pk])).content.decode()
    assert "hv-b" in body and "blocked" in body and "br-a-only" in body
    bad = op.post(reverse("guest-migrate", args=[guest.pk]), {"target": "not-a-number", "kind": "sideways"})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()
