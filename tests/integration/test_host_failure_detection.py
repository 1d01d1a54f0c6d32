"""A host whose libvirt stops answering is suspect at once and failed only after the grace period with
no renewal of its lockspace lease; the page states the grace period and an operator clears a failed host
(docs/ha.md, section 3). libvirt's test driver plays the host; the lease reader is replaced by a stand-in
whose timestamp the test moves or freezes (the real one reads sanlock's lockspace: tests/lab)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from hosts.models import Hypervisor
from hosts.services import ha_detection, inventory
from tests import factories
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(tmp_path, settings):
    settings.HA_LOCKSPACE = "kvmlab:/srv/leases/lockspace"
    settings.HA_GRACE_SECONDS = 60
    hv = Hypervisor.objects.create(
        name="hv-a", uri=write_node(tmp_path / "host-a.xml", [NodeDomain("web01")]), ha_host_id=1
    )
    inventory.refresh_hypervisor(hv)
    assert ha_detection.detect_failures() == []  # answering: healthy, nothing to say
    hv.uri = "qemu+tcp://127.0.99.9/system"  # nobody listens there: libvirt "stops answering"
    hv.save()
    inventory.refresh_hypervisor(hv)
    hv.refresh_from_db()
    assert hv.state == Hypervisor.State.OFFLINE
    return hv


@pytest.fixture
def lease(monkeypatch):
    """The host's lease timestamp as the stand-in reports it; the test sets `lease.stamp`."""

    class Lease:
        stamp: int | None = 500
        reads: list[tuple[str, int]] = []

        def __call__(self, lockspace, host_id):
            self.reads.append((lockspace, host_id))
            return self.stamp

    stand_in = Lease()
    monkeypatch.setattr(ha_detection.sanlock, "lease_stamp", stand_in)
    return stand_in


def _round(at_s: float, t0):
    ha_detection.detect_failures(now=t0 + timedelta(seconds=at_s))
    return Hypervisor.objects.get(name="hv-a")


def test_a_silent_host_with_a_frozen_lease_is_suspect_then_failed_after_the_grace_period(host, lease, client):
    t0 = timezone.now()
    assert _round(0, t0).health == Hypervisor.Health.SUSPECT
    assert _round(55, t0).health == Hypervisor.Health.SUSPECT
    failed = _round(60, t0)

    assert failed.health == Hypervisor.Health.FAILED and "grace 60 s" in failed.health_note
    assert lease.reads[0] == ("kvmlab:/srv/leases/lockspace", 1)
    rows = AuditEvent.objects.filter(hypervisor="hv-a", action__in=["host.suspect", "host.failed"]).order_by("id")
    assert [(r.action, r.actor_username) for r in rows] == [("host.suspect", ""), ("host.failed", "")]

    client.force_login(factories.make_user("viewer", "viewer", password=None))
    page = client.get(failed.get_absolute_url()).content.decode()
    assert "grace period of 60 s" in page and f'id="hypervisor-{failed.pk}-health-badge">Failed<' in page
    assert reverse("hypervisor-health-clear", args=[failed.pk]) not in page  # a viewer cannot clear it


def test_a_silent_host_whose_lease_still_renews_is_never_declared_failed(host, lease):
    t0 = timezone.now()
    for at in range(0, 300, 10):
        lease.stamp = 500 + at
        hv = _round(at, t0)
        assert hv.health == Hypervisor.Health.SUSPECT
    assert "still renews" in hv.health_note


def test_without_a_lockspace_a_silent_host_stays_suspect(host, lease, settings):
    settings.HA_LOCKSPACE = ""
    t0 = timezone.now()
    assert _round(0, t0).health == _round(600, t0).health == Hypervisor.Health.SUSPECT
    assert lease.reads == []


def test_a_failed_host_stays_failed_when_libvirt_answers_until_an_operator_clears_it(host, lease, client, tmp_path):
    t0 = timezone.now()
    _round(0, t0), _round(61, t0)
    hv = Hypervisor.objects.get(name="hv-a")
    hv.uri = write_node(tmp_path / "host-a2.xml", [NodeDomain("web01")])
    hv.save()
    inventory.refresh_hypervisor(hv)
    assert _round(70, t0).health == Hypervisor.Health.FAILED

    client.force_login(factories.make_user("operator", "operator", password=None))
    response = client.post(reverse("hypervisor-health-clear", args=[hv.pk]))

    assert response.status_code == 302
    assert Hypervisor.objects.get(pk=hv.pk).health == Hypervisor.Health.HEALTHY
    cleared = AuditEvent.objects.get(action="host.health_cleared")
    assert cleared.actor_username == "operator" and cleared.params["was"] == "failed"
