"""Compare-and-set transitions, the one-active-migration-per-guest constraint and slot admission,
against the real database (no libvirt: nothing here asks a host anything)."""

import uuid

import pytest
from django.db import IntegrityError, transaction

from hosts.models import Guest, Hypervisor
from migrations_app import services
from migrations_app.models import MigrationJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    a = Hypervisor.objects.create(name="hv-a", uri="test:///a")
    b = Hypervisor.objects.create(name="hv-b", uri="test:///b")
    c = Hypervisor.objects.create(name="hv-c", uri="test:///c")
    guests = [
        Guest.objects.create(uuid=uuid.uuid4(), name=f"g{i}", hypervisor=a, memory_mib=256, migrating=True)
        for i in range(3)
    ]
    return a, b, c, guests


def job(guest, source, target, state="queued") -> MigrationJob:
    return MigrationJob.objects.create(
        guest=guest, guest_name=guest.name, guest_uuid=guest.uuid, source=source, target=target, state=state
    )


def test_cas_moves_only_from_expected_state(world):
    a, b, _, (g, *_) = world
    j = job(g, a, b, "pending")
    assert services.transition(j.pk, "running", expected={"pending"}).state == "running"
    with pytest.raises(services.TransitionConflict, match="is running, not pending"):
        services.transition(j.pk, "running", expected={"pending"})  # a duplicate task is a no-op


def test_terminal_transition_clears_guest_migrating_and_records_timeline(world):
    a, b, _, (g, *_) = world
    j = job(g, a, b, "running")
    services.transition(j.pk, "failed", error="boom", where_guest_is="source")
    g.refresh_from_db()
    j.refresh_from_db()
    assert not g.migrating and j.finished_at and j.error == "boom"
    assert j.events.filter(kind="state", data__state="failed").exists()


def test_illegal_transition_refused_before_touching_db(world):
    a, b, _, (g, *_) = world
    j = job(g, a, b, "succeeded")
    with pytest.raises(ValueError):
        services.transition(j.pk, "running", expected={"succeeded"})


def test_one_active_migration_per_guest_is_a_database_constraint(world):
    a, b, c, (g, *_) = world
    job(g, a, b, "running")
    with pytest.raises(IntegrityError), transaction.atomic():
        job(g, a, c, "queued")
    job(g, a, c, "failed")  # finished jobs do not count


def test_admission_in_request_order_per_host(world, settings, monkeypatch):
    settings.MIGRATION_MAX_OUTGOING = 1
    settings.MIGRATION_MAX_INCOMING = 1
    a, b, c, (g0, g1, g2) = world
    started = []
    monkeypatch.setattr(services.admission, "_enqueue", started.append)
    first, second, _third = job(g0, a, b), job(g1, a, c), job(g2, a, b)
    with transaction.atomic():
        admitted = services.admit_queued()
    assert admitted == [first.pk]
    assert MigrationJob.objects.get(pk=second.pk).state == "queued"
    services.transition(first.pk, "running")
    services.transition(first.pk, "succeeded")
    with transaction.atomic():
        assert services.admit_queued() == [second.pk]  # next in request order, not the third


def test_unknown_option_and_bad_values_are_refused():
    with pytest.raises(services.MigrationError, match="unknown option"):
        services.normalize_options("live", {"rm_rf": True})
    with pytest.raises(services.MigrationError, match="whole number"):
        services.normalize_options("live", {"bandwidth_mibps": "fast"})
    with pytest.raises(services.MigrationError, match="post-copy"):
        services.normalize_options("live", {"timeout_action": "postcopy"})
    assert services.normalize_options("offline", {"bandwidth_mibps": "30"})["bandwidth_mibps"] == 30
