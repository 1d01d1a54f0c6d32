"""Operators ask for a refresh and power guests; libvirt's test driver plays the hypervisor."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor
from hosts.services import inventory
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def test_host(tmp_path):
    uri = write_node(tmp_path / "host-a.xml", [NodeDomain("web01", vcpus=2), NodeDomain("db01", running=False)])
    hv = Hypervisor.objects.create(name="hv-a", uri=uri)
    inventory.refresh_hypervisor(hv)
    return hv


def test_operator_requests_a_refresh(client_as, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_as("operator").post(reverse("inventory-refresh"), {"next": "/guests/"})
    assert response.status_code == 302 and response["Location"] == "/guests/"
    assert AuditEvent.objects.filter(action="inventory.refresh_requested", actor_username="operator").exists()
    assert callbacks  # the refresh job is enqueued once the audit row commits


def test_refresh_ignores_foreign_next_urls(client_as, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = client_as("operator").post(reverse("inventory-refresh"), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("topology")


def test_viewer_may_not_refresh(client_as):
    response = client_as("viewer").post(reverse("inventory-refresh"))
    assert response.status_code == 403 and not AuditEvent.objects.filter(action="inventory.refresh_requested")


def test_operator_shuts_down_a_guest_and_sees_libvirts_state(client_as, test_host):
    web = Guest.objects.get(name="web01")
    assert web.power == Guest.Power.RUNNING
    response = client_as("operator").post(reverse("guest-power", args=[web.pk]), {"action": "shutdown"}, follow=True)
    web.refresh_from_db()
    assert web.power == Guest.Power.SHUTOFF  # read back from libvirt through inventory
    assert "libvirt reports shut off" in response.content.decode()
    assert AuditEvent.objects.filter(action="guest.shutdown_requested", guest="web01", outcome="ok").exists()


def test_starting_a_running_guest_shows_libvirts_refusal(client_as, test_host):
    web = Guest.objects.get(name="web01")
    response = client_as("operator").post(reverse("guest-power", args=[web.pk]), {"action": "start"}, follow=True)
    html = response.content.decode()
    assert response.status_code == 200 and "web01: " in html and "already" in html.lower()
    assert AuditEvent.objects.filter(action="guest.started", outcome="failed").exists()


def test_unknown_power_action_is_refused(client_as, test_host):
    web = Guest.objects.get(name="web01")
    response = client_as("operator").post(reverse("guest-power", args=[web.pk]), {"action": "explode"}, follow=True)
    assert "Unknown action" in response.content.decode()
