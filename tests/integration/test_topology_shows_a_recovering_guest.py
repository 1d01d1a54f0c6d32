"""While HA recovery restarts a guest of a failed host, the topology (its chip and row, pushed and on reload)
and the guest page say "recovering", and the failed host's card says it is being recovered; once the
restart ends, started or refused, "recovering" is gone (docs/ha.md, section 4). libvirt's test driver plays
both hosts; the pages are read from inside the restart, while libvirt is being asked to start the guest."""

import re
import subprocess

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from hosts import events
from hosts.drivers import libvirt as driver
from hosts.drivers.types import LeaseHeld
from hosts.models import Guest
from hosts.services import placement
from kvmcluster.workers import worker_label
from migrations_app.orchestrator import reconciler
from migrations_app.services import recovery
from tests import factories
from tests.integration.ha_support import ha_domain, ha_pair

# Transactional: the topology pushes are sent on commit, so each is rendered when the restart sent it.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cluster(tmp_path):
    """hv-a (failed) with web01 (restart on failure); hv-b healthy and empty."""
    a, b = ha_pair(tmp_path, [ha_domain("web01", running=False)], flagged={"web01": 0})
    return a, b, Guest.objects.get(name="web01")


def _text(html: str, pattern: str) -> str:
    """The visible text (tags stripped, spaces collapsed) of the first element `pattern` matches; "" if none."""
    found = re.search(pattern, html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()) if found else ""


def _chip(html: str, pk: int) -> str:
    return _text(html, rf'<a id="guest-{pk}-chip"[^>]*>(.*?)</a>')


def _row(html: str, pk: int) -> str:
    return _text(html, rf'<tr id="guest-{pk}-row"[^>]*>(.*?)</tr>')


def _host_note(html: str, pk: int) -> str:
    return _text(html, rf'id="hypervisor-{pk}-recovery">(.*?)</p>')


def _watch_the_restart(client, monkeypatch, guest, start):
    """Read both pages and the pushes so far while libvirt is asked to start the guest, then call `start`."""
    pushes: list[str] = []
    monkeypatch.setattr(events, "_send", pushes.append)
    during: dict[str, object] = {}

    def watching(uri, xml):
        during["topology"] = client.get(reverse("topology")).content.decode()
        during["guest_page"] = client.get(reverse("guest-detail", args=[guest.pk])).content.decode()
        during["pushes"] = list(pushes)
        during["api"] = client.get(f"/api/v1/guests/{guest.pk}/").json()
        return start(uri, xml)

    monkeypatch.setattr(recovery.driver, "define_and_start", watching)
    return during, pushes


def test_a_guest_being_restarted_shows_as_recovering_and_stops_once_it_runs(cluster, client, monkeypatch):
    a, b, web = cluster
    client.force_login(factories.make_user("viewer", "viewer", password=None))
    during, pushes = _watch_the_restart(client, monkeypatch, web, driver.define_and_start)

    assert recovery.recover_host(a.pk, lease_wait_s=0) == {"web01": "started on hv-b"}

    # During: the reloaded topology, the push that started it, and the guest page all say so in words.
    page = during["topology"]
    assert "recovering" in _chip(page, web.pk) and "its host failed" in _chip(page, web.pk)
    assert "recovering" in _row(page, web.pk)
    assert _host_note(page, a.pk).startswith("Failed, being recovered: 1 guest restarting")
    pushed = "".join(during["pushes"])
    assert "recovering" in _chip(pushed, web.pk) and "recovering" in _row(pushed, web.pk)
    assert "recovering" in _text(during["guest_page"], r"<h1>(.*?)</h1>")
    assert "Restart on a healthy host in progress" in during["guest_page"]
    assert during["api"]["recovering"] is True and client.get(f"/api/v1/guests/{web.pk}/").json()["recovering"] is False

    # After: it runs on hv-b, and neither the last push nor a reload nor its page says "recovering".
    assert {d.name for d in driver.list_domains(b.uri) if d.state == "running"} == {"web01"}
    last = pushes[-1]
    assert "web01" in _chip(last, web.pk) and "recovering" not in _chip(last, web.pk)
    assert f'id="hypervisor-{a.pk}-card"' in last  # the failed host's card lost the chip
    assert _host_note(last, a.pk).startswith("Failed: its guests with restart on failure")
    page = client.get(reverse("topology")).content.decode()
    assert "recovering" not in _chip(page, web.pk) and "recovering" not in _row(page, web.pk)
    assert "recovering" not in _text(
        client.get(reverse("guest-detail", args=[web.pk])).content.decode(), r"<h1>(.*?)</h1>"
    )
    assert Guest.objects.filter(recovering=True).count() == Guest.objects.filter(migrating=True).count() == 0


def test_a_refused_restart_stops_showing_as_recovering_too(cluster, client, monkeypatch):
    a, b, web = cluster
    client.force_login(factories.make_user("viewer", "viewer", password=None))

    def refuse(uri, xml):
        raise LeaseHeld("resource busy: Failed to acquire lock: Lease is held by another host", 55, uri)

    during, pushes = _watch_the_restart(client, monkeypatch, web, refuse)
    outcome = recovery.recover_host(a.pk, lease_wait_s=0)["web01"]

    assert outcome.startswith("not started: the lock manager refused its lease")
    assert "recovering" in _chip(during["topology"], web.pk)
    assert "recovering" not in _chip(pushes[-1], web.pk) and "recovering" not in _row(pushes[-1], web.pk)
    assert "recovering" not in _chip(client.get(reverse("topology")).content.decode(), web.pk)
    assert not Guest.objects.get(pk=web.pk).recovering


def test_only_one_recovery_restarts_a_guest_at_a_time(cluster, monkeypatch):
    a, b, web = cluster
    other = worker_label("w2")  # another worker's recovery holds it, alive
    assert placement.claim_recovery(web.pk, other)
    asked = []
    monkeypatch.setattr(recovery.driver, "define_and_start", lambda uri, xml: asked.append(uri))

    assert recovery.recover_host(a.pk, lease_wait_s=0) == {"web01": "not started: another recovery is restarting it"}
    assert asked == []
    assert Guest.objects.get(pk=web.pk).recovering_by == other  # still the other one's
    assert recovery.release_abandoned() == []  # its worker lives and it is recent
    assert not placement.release_recovery(web.pk, worker_label()) and placement.release_recovery(web.pk, other)


def test_a_restart_whose_worker_died_stops_showing_as_recovering_at_the_reconcilers_pass(cluster, client):
    a, b, web = cluster
    client.force_login(factories.make_user("viewer", "viewer", password=None))
    gone = worker_label("w2", pid=_a_pid_that_is_gone())
    assert placement.claim_recovery(web.pk, gone)
    assert "recovering" in _chip(client.get(reverse("topology")).content.decode(), web.pk)

    decisions = reconciler.reconcile()

    assert "web01: abandoned HA restart released" in decisions
    assert "recovering" not in _chip(client.get(reverse("topology")).content.decode(), web.pk)
    row = AuditEvent.objects.get(action="guest.ha_restart", guest="web01")
    assert row.outcome == "failed" and "stopped before it finished" in row.message
    # A live holder past the longest a restart may take is released too (another machine's dead worker).
    assert placement.claim_recovery(web.pk, worker_label("w3"))
    late = timezone.now() + timezone.timedelta(seconds=recovery.ABANDONED_MARGIN_S + 301)
    assert recovery.release_abandoned(
        now=late,
    ) == ["web01"]


def _a_pid_that_is_gone() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
