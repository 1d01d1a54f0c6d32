"""An operator marks a guest "restart on failure" from its page or the API; the pre-flight refuses a
guest without a lock-manager lease or with a disk off shared storage (docs/ha.md). libvirt's test driver
plays the hypervisor, so the lease is what the inventory read from the guest's definition."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor, StorageServer
from hosts.services import inventory
from tests import factories
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db

IMAGES = "/srv/images"


@pytest.fixture
def host(tmp_path):
    nfs = StorageServer.objects.create(name="nfs1", address="127.0.0.5", export_path=IMAGES, mount_path=IMAGES)
    local = StorageServer.objects.create(
        name="local1", address="127.0.0.6", export_path="/local", mount_path="/local", protocol="local"
    )
    uri = write_node(
        tmp_path / "host-a.xml",
        [
            NodeDomain("leased", disk_path=f"{IMAGES}/leased.qcow2", lease="kvmlab/leased"),
            NodeDomain("unleased", disk_path=f"{IMAGES}/unleased.qcow2"),
            NodeDomain("local-disk", disk_path="/local/local-disk.qcow2", lease="kvmlab/local-disk"),
        ],
    )
    hv = Hypervisor.objects.create(name="hv-a", uri=uri)
    hv.storage_servers.add(nfs, local)
    inventory.refresh_hypervisor(hv)
    return hv


@pytest.fixture
def login(client):
    users = {}

    def as_role(role):
        if role not in users:
            users[role] = factories.make_user(role, role, password=None)
        client.force_login(users[role])
        return client

    return as_role


def _post(client, guest, **data):
    return client.post(reverse("guest-ha", args=[guest.pk]), data)


def test_the_inventory_reads_the_lease_from_the_definition(host):
    assert Guest.objects.get(name="leased").lease == "kvmlab/leased"
    assert Guest.objects.get(name="unleased").lease == ""


def test_an_operator_turns_restart_on_failure_on_for_a_leased_guest_on_shared_storage(host, login):
    guest = Guest.objects.get(name="leased")
    page = login("operator").get(guest.get_absolute_url()).content.decode()
    assert "Restart on failure: <strong" in page and "holds lease kvmlab/leased" in page

    response = _post(login("operator"), guest, restart="on", priority="7")

    assert response.status_code == 302
    guest.refresh_from_db()
    assert (guest.ha_restart, guest.ha_priority) == (True, 7)
    row = AuditEvent.objects.get(action="guest.ha_set", guest="leased")
    assert row.outcome == "ok" and row.actor_username == "operator" and row.params["restart"] is True
    assert "on, priority 7" in login("operator").get(guest.get_absolute_url()).content.decode()


def test_a_guest_without_a_lease_is_refused_and_the_page_says_why(host, login):
    guest = Guest.objects.get(name="unleased")
    response = _post(login("operator"), guest, restart="on", priority="1")

    assert response.status_code == 422
    assert "Not turned on" in response.content.decode() and "no &lt;lease&gt;" in response.content.decode()
    guest.refresh_from_db()
    assert guest.ha_restart is False
    assert AuditEvent.objects.get(action="guest.ha_set", guest="unleased").outcome == "refused"


def test_a_disk_off_shared_storage_is_refused(host, login):
    guest = Guest.objects.get(name="local-disk")
    response = login("admin").post(reverse("guest-ha", args=[guest.pk]), {"restart": "on"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and f'id="guest-{guest.pk}-ha-refused"' in html
    assert "not on shared storage: vda (local1)" in html
    guest.refresh_from_db()
    assert guest.ha_restart is False


def test_a_viewer_sees_the_panel_without_the_form_and_may_not_post(host, login):
    guest = Guest.objects.get(name="leased")
    page = login("viewer").get(guest.get_absolute_url()).content.decode()
    assert "Restart on failure: <strong" in page and reverse("guest-ha", args=[guest.pk]) not in page
    assert _post(login("viewer"), guest, restart="on").status_code == 403
    guest.refresh_from_db()
    assert guest.ha_restart is False


def test_the_api_sets_the_flag_and_answers_a_refusal_with_the_failing_check(host, login):
    client = login("operator")
    leased, unleased = Guest.objects.get(name="leased"), Guest.objects.get(name="unleased")

    done = client.post(
        reverse("api-guest-ha", kwargs={"pk": leased.pk}),
        {"restart": True, "priority": 3},
        content_type="application/json",
    )
    refused = client.post(
        reverse("api-guest-ha", kwargs={"pk": unleased.pk}), {"restart": True}, content_type="application/json"
    )

    assert done.status_code == 200 and (done.json()["ha_restart"], done.json()["ha_priority"]) == (True, 3)
    assert refused.status_code == 409
    assert [c["name"] for c in refused.json()["checks"]] == ["lease"]
    unleased.refresh_from_db()
    assert unleased.ha_restart is False
    off = client.post(
        reverse("api-guest-ha", kwargs={"pk": leased.pk}), {"restart": False}, content_type="application/json"
    )
    assert off.status_code == 200 and off.json()["ha_restart"] is False
