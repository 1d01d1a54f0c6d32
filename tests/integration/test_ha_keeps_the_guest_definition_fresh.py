"""The definition HA restarts a guest from follows the guest's edits: the inventory watcher's full round
re-reads it from a healthy host that answers, never from a suspect or failed one, and a fresh definition
without a <lease> is kept as it is, so the recovery refuses it (docs/ha.md, section 4). libvirt's test
driver plays the host; an edit is a redefinition on the same connection the dashboard uses."""

import pytest
from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.drivers.libvirt import connection
from hosts.models import Guest, Hypervisor
from hosts.services import ha, watcher
from migrations_app.services import recovery
from tests.integration.ha_support import ha_domain, ha_pair
from tests.libvirt_nodes import NodeDomain, domain_xml
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(tmp_path):
    """web01 (restart on failure, 256 MiB) running on hv-a; hv-b healthy and empty."""
    dom = ha_domain("web01", memory_mib=256)
    ha_pair(tmp_path, [dom], flagged={"web01": 0}, failed=False)
    return dom


def _edit(guest: Guest, dom: NodeDomain) -> None:
    """What `virsh edit` does: a new persistent definition for the domain (it applies at its next boot)."""
    connection.cached(guest.hypervisor.uri).defineXML(domain_xml(dom))


def _round() -> None:
    """One full round of the inventory watcher (refresh, load, judgement, kept definitions)."""
    assert watcher.run_watcher(duration_s=0.05, interval_s=60) == 1


@pytest.mark.django_db(transaction=True)  # the watcher closes stale connections between rounds
def test_an_edited_guest_is_kept_as_edited_after_the_watchers_round(web):
    guest = Guest.objects.get(name="web01")
    assert "<memory unit='KiB'>262144</memory>" in guest.definition_xml
    web.memory_mib = 512
    _edit(guest, web)

    _round()

    kept = Guest.objects.get(name="web01").definition_xml
    assert "<memory unit='KiB'>524288</memory>" in kept and "<lease>" in kept
    assert kept == driver.domain_xml(guest.hypervisor.uri, web.uuid, inactive=True)
    assert ha.refresh_kept_definitions() == []  # unchanged: read, compared, not written


def test_a_suspect_or_failed_host_is_never_read_from(web):
    guest = Guest.objects.get(name="web01")
    before = guest.definition_xml
    web.memory_mib = 1024
    _edit(guest, web)
    for health in ("suspect", "failed"):
        Hypervisor.objects.filter(pk=guest.hypervisor_id).update(health=health, health_since=timezone.now())
        assert ha.refresh_kept_definitions() == []
        assert Guest.objects.get(name="web01").definition_xml == before


def test_a_fresh_definition_without_a_lease_is_kept_and_the_recovery_refuses_it(web):
    guest = Guest.objects.get(name="web01")
    web.lease = ""
    _edit(guest, web)

    assert ha.refresh_kept_definitions() == ["web01"]

    assert "<lease>" not in Guest.objects.get(name="web01").definition_xml
    Hypervisor.objects.filter(pk=guest.hypervisor_id).update(health="failed", health_since=timezone.now())
    Hypervisor.objects.exclude(pk=guest.hypervisor_id).update(memory_free_mib=8192)
    outcome = recovery.recover_host(guest.hypervisor_id, lease_wait_s=0)["web01"]
    assert outcome.startswith("not started: its kept definition has no <lease>")


@pytest.mark.django_db(transaction=True)  # the round's threads must see the rows
def test_a_host_whose_libvirt_stalls_holds_up_no_other_hosts_guests(tmp_path, monkeypatch):
    """A host whose libvirtd waits (a guest start inside sanlock, docs/ha.md "Evidence") is left for a later
    round after hosts.services.host_calls' wait; the other host's guests are kept as edited meanwhile. The
    stall is a stand-in (an Event): the lab cannot produce it on demand."""
    import threading

    from hosts.services import host_calls, inventory
    from tests import factories

    web, db = ha_domain("web01", memory_mib=256), ha_domain("db01", memory_mib=256)
    _a, b = ha_pair(tmp_path, [web], flagged={"web01": 0}, failed=False)
    connection.cached(b.uri).defineXML(domain_xml(db))
    inventory.refresh_hypervisor(b)
    operator = factories.make_user("op2", "operator", password=None)
    ha.guest_ha_set(guest=Guest.objects.get(name="db01"), restart=True, priority=0, actor=operator)
    for dom in (web, db):
        dom.memory_mib = 512
        _edit(Guest.objects.get(name=dom.name), dom)
    released = threading.Event()
    stalled = []
    real = driver.domain_xml

    def reading(uri, uuid, **kw):
        if uri == b.uri and not released.is_set():
            stalled.append(uri)
            released.wait(30)
        return real(uri, uuid, **kw)

    monkeypatch.setattr(driver, "domain_xml", reading)
    monkeypatch.setattr(host_calls, "WAIT_S", 0.5)
    try:
        assert ha.refresh_kept_definitions() == ["web01"]
        assert ha.refresh_kept_definitions() == []  # hv-b still busy: asked nothing more
        assert stalled == [b.uri]
    finally:
        released.set()
    wait_for(lambda: b.uri not in host_calls.busy(), what="hv-b's call never returned")
    assert ha.refresh_kept_definitions() == ["db01"]  # its late read was dropped; this round reads it again
    assert "<memory unit='KiB'>524288</memory>" in Guest.objects.get(name="db01").definition_xml
