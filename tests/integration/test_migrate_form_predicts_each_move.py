"""The Migrate form predicts each open target's move before anything starts, and the job keeps it.

The link speed comes from the last move between the two hosts, the dirty rate from libvirt's measurement
on the guest; the prediction follows the options as they are ticked (post-copy rescues a move that would
not converge), and the job page shows predicted beside actual. The pre-flight is stubbed to a clean
checklist: libvirt's test driver reports no free memory, which is not what this test is about.
"""

import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hosts.models import Guest, Hypervisor
from migrations_app import services
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import facts
from migrations_app.services import admission
from tests.factories import make_user

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024


@pytest.fixture
def world(monkeypatch):
    a = Hypervisor.objects.create(name="hv-a", uri="test:///default", state="online")
    b = Hypervisor.objects.create(name="hv-b", uri="test:///default?b", state="online")
    guest = Guest.objects.create(uuid=uuid.uuid4(), name="web01", hypervisor=a, power="running", memory_mib=1024)
    # a past move between the pair: 400 MiB in 4 s, so the link is 100 MiB/s
    MigrationJob.objects.create(
        guest_name="old",
        guest_uuid=uuid.uuid4(),
        source=a,
        target=b,
        state="succeeded",
        kind="live",
        data_sent=400 * MIB,
        total_ms=4000,
        finished_at=timezone.now(),
    )
    monkeypatch.setattr(
        facts,
        "readiness",
        lambda guest, kind, options: [{"target": b, "verdict": "ready", "items": [], "problems": []}],
    )
    monkeypatch.setattr(facts, "checklist", lambda *args, **kw: [])
    monkeypatch.setattr(admission, "_enqueue", lambda job_id: None)
    client = Client()
    client.force_login(make_user("olga", "operator", password=None))
    return a, b, guest, client


def measured(guest, mibps):
    Guest.objects.filter(pk=guest.pk).update(dirty_rate_mibps=mibps, dirty_rate_at=timezone.now())


def test_each_target_shows_its_predicted_move_with_where_the_figures_come_from(world):
    _, b, guest, client = world
    measured(guest, 20)
    html = client.get(reverse("guest-migrate", args=[guest.pk])).content.decode()
    assert f'id="target-{b.pk}-prediction"' in html
    assert "Predicted:</strong> ≈" in html and "converges" in html
    assert "link 100.0 MiB/s (median of the last 1 move(s) between these hosts)" in html
    assert "dirty rate 20.0 MiB/s (measured by libvirt 0 min ago)" in html


def test_a_guest_dirtying_faster_than_the_link_is_predicted_not_to_converge_until_post_copy_is_allowed(world):
    _, b, guest, client = world
    measured(guest, 150)
    url = reverse("guest-migrate-targets", args=[guest.pk])
    html = client.get(url, {"kind": "live"}).content.decode()
    assert "will not converge: dirty rate 150 MiB/s against 100 MiB/s" in html
    assert "allow auto-converge or post-copy, or raise the cap" in html
    html = client.get(url, {"kind": "live", "allow_postcopy": "on"}).content.decode()
    assert "converges with post-copy" in html
    html = client.get(url, {"kind": "live", "bandwidth_mibps": "16"}).content.decode()
    assert "link 16.0 MiB/s (the 16 MiB/s cap)" in html


def test_the_job_keeps_its_prediction_and_its_page_shows_predicted_beside_actual(world):
    _, b, guest, client = world
    measured(guest, 10)
    operator = make_user("otto", "operator", password=None)
    job = services.migration_request(guest=guest, target=b, kind="live", options={}, actor=operator)
    assert job.prediction["converges"] and job.prediction["link_mibps"] == 100.0
    assert job.prediction["dirty_source"].startswith("measured by libvirt")
    MigrationJob.objects.filter(pk=job.pk).update(state="succeeded", total_ms=12_300, downtime_ms=40)
    html = client.get(reverse("migration-detail", args=[job.pk])).content.decode()
    assert f'id="migration-{job.pk}-predicted"' in html
    assert f'12.30 s <span class="muted">(predicted ≈ {job.prediction["total_s"]:.1f} s)' in html
