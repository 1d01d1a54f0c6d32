"""A failed host's "restart on failure" guests start on a healthy host, higher priority first; a guest whose
lease the lock manager refuses is not started and the audit says the old host may still run it; a guest
without the flag is left alone; a cleared host loses its stale definitions (docs/ha.md, section 4).
libvirt's test driver plays both hosts; the lease refusal is the driver's LeaseHeld, as libvirt raises it."""

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from hosts.drivers import libvirt as driver
from hosts.drivers.types import LeaseHeld
from hosts.models import Guest, Hypervisor
from hosts.services import ha_detection
from migrations_app.services import recovery
from tests import factories
from tests.integration.ha_support import ha_domain, ha_pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(tmp_path):
    """hv-a (failed) with web01 (HA, priority 5), db01 (HA, priority 9), tmp01 (no HA); hv-b healthy, empty."""
    doms = [ha_domain(n, running=False) for n in ("web01", "db01", "tmp01")]
    return ha_pair(tmp_path, doms, flagged={"web01": 5, "db01": 9})


def test_the_ha_guests_of_a_failed_host_run_on_the_healthy_one_in_priority_order(cluster):
    a, b = cluster
    outcomes = recovery.recover_host(a.pk, lease_wait_s=0)

    assert list(outcomes) == ["db01", "web01"]  # priority 9 before 5
    assert outcomes["db01"] == outcomes["web01"] == "started on hv-b"
    running = {d.name for d in driver.list_domains(b.uri) if d.state == "running"}
    assert running == {"db01", "web01"}  # libvirt's word, not ours
    assert set(Guest.objects.filter(hypervisor=b).values_list("name", flat=True)) == {"db01", "web01"}
    assert Guest.objects.get(name="tmp01").hypervisor == a  # no flag: left alone
    rows = AuditEvent.objects.filter(action="guest.ha_restart", outcome="ok").order_by("id")
    assert [(r.guest, r.target_hypervisor, r.actor_username) for r in rows] == [
        ("db01", "hv-b", ""),
        ("web01", "hv-b", ""),
    ]
    assert not Guest.objects.filter(migrating=True).exists()


def test_a_lease_held_elsewhere_means_the_guest_is_not_started_and_the_audit_says_why(cluster, monkeypatch):
    a, b = cluster

    def refuse(uri, xml):
        raise LeaseHeld("resource busy: Failed to acquire lock: Lease is held by another host", 55, uri)

    monkeypatch.setattr(recovery.driver, "define_and_start", refuse)
    outcomes = recovery.recover_host(a.pk, lease_wait_s=0)

    assert outcomes["db01"].startswith("not started: the lock manager refused its lease on hv-b")
    assert driver.list_domains(b.uri) == []
    assert Guest.objects.get(name="db01").hypervisor == a
    row = AuditEvent.objects.filter(action="guest.ha_restart", guest="db01").get()
    assert row.outcome == "refused" and "the old host may still run this guest" in row.message


def test_a_kept_definition_without_a_lease_is_reported_not_started(cluster):
    a, b = cluster
    Guest.objects.filter(name="web01").update(definition_xml="<domain type='test'><name>web01</name></domain>")
    outcomes = recovery.recover_host(a.pk, lease_wait_s=0)
    assert outcomes["web01"].startswith("not started: its kept definition has no <lease>")
    assert "web01" not in {d.name for d in driver.list_domains(b.uri)}


@pytest.fixture
def suspect_a(cluster, monkeypatch, settings) -> Hypervisor:
    """hv-a suspect (libvirt gone), its sanlock lease stamp frozen at 7: failed once the 30 s grace is over."""
    a, _b = cluster
    Hypervisor.objects.filter(pk=a.pk).update(health="suspect", health_since=timezone.now(), state="offline")
    settings.HA_LOCKSPACE, settings.HA_GRACE_SECONDS = "kvmlab:/srv/leases/lockspace", 30
    Hypervisor.objects.filter(pk=a.pk).update(ha_host_id=1)
    monkeypatch.setattr(ha_detection.sanlock, "lease_stamp", lambda lockspace, host_id: 7)
    return a


def test_declaring_a_host_failed_enqueues_its_recovery_once_committed(
    suspect_a, monkeypatch, django_capture_on_commit_callbacks
):
    a = suspect_a
    enqueued = []
    monkeypatch.setattr(recovery, "_enqueue", enqueued.append)
    t0 = timezone.now()
    ha_detection.detect_failures(now=t0)  # the stamp is read: its first sight counts as a renewal
    assert Hypervisor.objects.get(pk=a.pk).health == "suspect" and enqueued == []
    with django_capture_on_commit_callbacks(execute=True):
        ha_detection.detect_failures(now=t0 + timezone.timedelta(seconds=31))
    assert Hypervisor.objects.get(pk=a.pk).health == "failed"
    assert enqueued == [a.pk]


def test_the_failed_card_is_pushed_before_the_recovery_is_enqueued(
    suspect_a, monkeypatch, django_capture_on_commit_callbacks
):
    """The recovery's own push ("being recovered") must come after the one saying "failed": enqueued
    first, a recovery claimed its guest and pushed while the detection was still rendering the card from
    before the claim, and that stale card, sent last, said "Failed" for the whole restart (seen in CI)."""
    from hosts import events

    order: list[str] = []
    monkeypatch.setattr(recovery, "_enqueue", lambda pk: order.append("recovery enqueued"))
    monkeypatch.setattr(
        events, "_send", lambda html: order.append("failed card pushed" if 'recovery">' in html else "other push")
    )
    t0 = timezone.now()
    ha_detection.detect_failures(now=t0)
    with django_capture_on_commit_callbacks(execute=True):
        ha_detection.detect_failures(now=t0 + timezone.timedelta(seconds=31))
    assert order[:2] == ["failed card pushed", "recovery enqueued"], order


def test_clearing_a_recovered_host_removes_its_stale_definitions(cluster):
    a, b = cluster
    recovery.recover_host(a.pk, lease_wait_s=0)
    admin = factories.make_user("admin", "admin", password=None)
    ha_detection.hypervisor_health_clear(hypervisor=a, actor=admin)
    assert {d.name for d in driver.list_domains(a.uri)} == {"tmp01"}
    row = AuditEvent.objects.get(action="host.health_cleared")
    assert sorted(row.params["stale_definitions_removed"]) == ["db01", "web01"]


def test_a_restart_and_a_failed_host_are_notified(cluster, monkeypatch):
    from notifications import services as notifications

    sent = []
    monkeypatch.setattr(notifications, "notify", lambda event, data: sent.append((event, data)))
    a, _ = cluster
    recovery.recover_host(a.pk, lease_wait_s=0)
    restarted = [d["ha_restart"] for e, d in sent if e == "guest.ha_restarted"]
    assert [(r["guest"], r["target"]) for r in restarted] == [("db01", "hv-b"), ("web01", "hv-b")]
    admin = factories.make_user("admin", "admin", password=None)
    ha_detection.hypervisor_health_clear(hypervisor=a, actor=admin)
    assert ("host.recovered", "hv-a") in [(e, d.get("hypervisor", {}).get("name")) for e, d in sent]


def test_the_guest_page_says_what_its_last_restart_on_failure_did(cluster, client, monkeypatch):
    a, _ = cluster
    client.force_login(factories.make_user("viewer", "viewer", password=None))

    def refuse(uri, xml):
        raise LeaseHeld("resource busy: Failed to acquire lock: Lease <b>held</b> by another host", 55, uri)

    monkeypatch.setattr(recovery.driver, "define_and_start", refuse)
    recovery.recover_host(a.pk, lease_wait_s=0)
    db01 = Guest.objects.get(name="db01")
    page = client.get(f"/guests/{db01.pk}/").content.decode()
    assert f'id="guest-{db01.pk}-ha-last"' in page and "hv-a failed: <strong>not started</strong>" in page
    assert "the old host may still run this guest" in page
    assert "Lease &lt;b&gt;held&lt;/b&gt;" in page  # libvirt's text is escaped, not markup

    monkeypatch.undo()
    recovery.recover_host(a.pk, lease_wait_s=0)  # the lease is free now: it starts
    page = client.get(f"/guests/{db01.pk}/").content.decode()
    assert "hv-a failed: <strong>started on hv-b</strong>" in page and "may still run" not in page
    tmp01 = Guest.objects.get(name="tmp01")  # never restarted: no such line
    assert "-ha-last" not in client.get(f"/guests/{tmp01.pk}/").content.decode()


def test_a_flagged_guest_that_was_shut_off_when_its_host_was_last_seen_stays_off(cluster):
    a, b = cluster
    Guest.objects.filter(name="web01").update(power=Guest.Power.SHUTOFF)  # the operator had shut it down
    outcomes = recovery.recover_host(a.pk, lease_wait_s=0)
    assert outcomes == {"db01": "started on hv-b"}
    assert "web01" not in {d.name for d in driver.list_domains(b.uri)}
    assert Guest.objects.get(name="web01").hypervisor == a
    started = AuditEvent.objects.get(action="host.recovery_started")
    assert started.params["left_as_last_seen"] == {"web01": "shutoff"}
    assert "1 not running when the host was last seen" in started.message
