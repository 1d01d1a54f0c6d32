"""An operator opening an ended guest migration reads how it ended (failed and rolled back, cancelled),
not the bookkeeping phase "Done" with "ETA done". The jobs come from real flows: a live move that
libvirt's test driver really refuses, and a cancel before the worker picked the job up."""

import re

import pytest
from django.urls import reverse

from hosts.models import Guest, Hypervisor
from hosts.services.inventory import refresh_hypervisor
from migrations_app import services
from migrations_app.models import MigrationJob
from migrations_app.tasks import run_migration
from tests.factories import make_user
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tmp_path, monkeypatch):
    """web01 running on hv-a; hv-b is libvirt's default test host (a node file reports no free memory, so
    the pre-flight would refuse it; the default host has 3 MiB free and no bridges, so web01 is tiny and
    has no NIC). Two independent hosts; jobs are not run until the test says so."""
    web = NodeDomain("web01", memory_mib=2, bridge="")
    a = Hypervisor.objects.create(name="hv-a", uri=write_node(tmp_path / "a.xml", [web]))
    b = Hypervisor.objects.create(name="hv-b", uri="test:///default")
    for hv in (a, b):
        refresh_hypervisor(hv)  # what libvirt says of both hosts and the guest, as the inventory records it
    guest = Guest.objects.get(uuid=web.uuid)
    enqueued: list[int] = []
    monkeypatch.setattr(services.admission, "_enqueue", enqueued.append)
    operator = make_user("otto", "operator", password=None)
    return {"guest": guest, "hv_b": b, "operator": operator, "enqueued": enqueued}


def request(world) -> MigrationJob:
    return services.migration_request(
        guest=world["guest"], target=world["hv_b"], kind="live", options={}, actor=world["operator"]
    )


def progress_card(client, job) -> str:
    """The card as the page renders it; the poll fallback must return the same words."""
    client.force_login(make_user("vera", "viewer", password=None))
    page = client.get(reverse("migration-detail", args=[job.pk])).content.decode()
    card = re.search(r'<section id="migration-\d+-progress".*?</section>', page, re.S).group(0)
    polled = client.get(reverse("migration-progress", args=[job.pk])).content.decode()
    assert re.sub(r"\s+", " ", polled).strip() == re.sub(r"\s+", " ", card).strip()
    return card


def test_a_live_move_libvirt_refused_says_it_failed_and_the_guest_stayed(client, world):
    job = request(world)
    assert run_migration(job.pk) == "failed"  # the real task body; libvirt's test driver cannot migrate
    job.refresh_from_db()
    assert job.where_guest_is == "source"

    card = progress_card(client, job)
    assert "Failed and rolled back: the guest stayed on hv-a" in card
    assert "Done" not in card and "ETA" not in card
    assert "not supported" in card  # libvirt's own words, under "libvirt says"
    assert "converging" not in card


def test_a_move_cancelled_before_it_started_says_so(client, world):
    job = request(world)
    services.migration_cancel(job=job, actor=world["operator"])

    card = progress_card(client, job)
    assert "Cancelled: the guest stayed on hv-a" in card
    assert "Done" not in card and "ETA" not in card


def test_a_move_under_way_still_shows_its_phase_and_an_eta(client, world):
    job = request(world)
    MigrationJob.objects.filter(pk=job.pk).update(
        state="running", phase="precopy", iteration=1, data_total=256 << 20, data_remaining=128 << 20,
        throughput_bps=32 << 20,
    )  # fmt: skip
    card = progress_card(client, MigrationJob.objects.get(pk=job.pk))
    assert "Copying memory (memory pass 1)" in card
    assert re.search(r"<dt>ETA</dt><dd [^>]*>about 4 s</dd>", card)
