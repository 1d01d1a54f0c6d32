"""A viewer opens a guest, a hypervisor and a storage server page."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_guest_page_shows_disks_nics_host_and_state(client_as, cluster):
    html = client_as("viewer").get(reverse("guest-detail", args=[cluster["db"].pk])).content.decode()
    assert "db01" in html and "Shut off" in html and "hv-a" in html
    assert "/local/db01.qcow2" in html and "writeback" in html and "not on shared storage" in html
    assert "br0" in html
    assert "Shut down" not in html and "Start" not in html  # viewers get no power buttons


def test_operator_gets_power_buttons(client_as, cluster):
    html = client_as("operator").get(reverse("guest-detail", args=[cluster["web"].pk])).content.decode()
    assert "Shut down" in html and "Force off" in html


def test_force_off_asks_for_confirmation_first(client_as, cluster):
    response = client_as("operator").post(reverse("guest-power", args=[cluster["web"].pk]), {"action": "destroy"})
    assert response.status_code == 200 and "Yes, force off web01" in response.content.decode()


def test_viewer_may_not_power_guests(client_as, cluster):
    response = client_as("viewer").post(reverse("guest-power", args=[cluster["web"].pk]), {"action": "shutdown"})
    assert response.status_code == 403


def test_hypervisor_page_lists_its_guests_and_facts(client_as, cluster):
    html = client_as("viewer").get(reverse("hypervisor-detail", args=[cluster["hv_a"].pk])).content.decode()
    assert "qemu+tcp://10.0.0.2/system" in html and "web01" in html and "db01" in html
    assert "1 of 2 guests running" in html


def test_offline_hypervisor_page_shows_libvirts_error(client_as, cluster):
    html = client_as("viewer").get(reverse("hypervisor-detail", args=[cluster["hv_b"].pk])).content.decode()
    assert "Connection refused" in html and "Offline" in html


def test_lists_and_storage_page(client_as, cluster):
    client = client_as("viewer")
    assert "hv-b" in client.get(reverse("hypervisor-list")).content.decode()
    storage = client.get(reverse("storage-list")).content.decode()
    assert "nfs1" in storage and "10.0.0.5:/srv/images" in storage
    detail = client.get(reverse("storage-detail", args=[cluster["nfs"].pk])).content.decode()
    assert "web01" in detail and "db01" not in detail and "hv-a" in detail


@pytest.mark.parametrize("name", ["guest-detail", "hypervisor-detail", "storage-detail"])
def test_missing_objects_are_404(client_as, name):
    assert client_as("viewer").get(reverse(name, args=[9999])).status_code == 404
