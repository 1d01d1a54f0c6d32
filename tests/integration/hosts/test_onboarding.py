"""An admin adds, edits, tests and removes hypervisors and storage servers."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from hosts.models import Hypervisor, StorageServer
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client_as):
    return client_as("admin")


def test_viewer_and_operator_may_not_manage_hosts(client_as, cluster):
    hv = cluster["hv_a"]
    for role in ("viewer", "operator"):
        client = client_as(role)
        for url in (
            reverse("hypervisor-create"),
            reverse("hypervisor-edit", args=[hv.pk]),
            reverse("hypervisor-delete", args=[hv.pk]),
            reverse("storage-create"),
            reverse("storage-edit", args=[cluster["nfs"].pk]),
        ):
            assert client.get(url).status_code == 403, url
        response = client.post(reverse("hypervisor-create"), {"name": "evil", "uri": "qemu:///system"})
        assert response.status_code == 403 and "Permission denied" in response.content.decode()
        client.logout()
    assert not Hypervisor.objects.filter(name="evil").exists()


def test_admin_adds_a_hypervisor_with_an_audit_row(admin, cluster, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = admin.post(
            reverse("hypervisor-create"),
            {"name": "hv-c", "uri": "qemu+tcp://10.0.0.4/system", "storage_servers": [cluster["nfs"].pk]},
        )
    hv = Hypervisor.objects.get(name="hv-c")
    assert response.status_code == 302 and response["Location"] == reverse("hypervisor-detail", args=[hv.pk])
    assert list(hv.storage_servers.all()) == [cluster["nfs"]]
    event = AuditEvent.objects.get(action="hypervisor.created")
    assert event.hypervisor == "hv-c" and event.actor_username == "admin"
    assert event.params["uri"] == "qemu+tcp://10.0.0.4/system"


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"name": "", "uri": "qemu:///system"}, "name", "This field is required"),
        ({"name": "bad name!", "uri": "qemu:///system"}, "name", "Use letters"),
        ({"name": "hv-x", "uri": "not a uri"}, "uri", "URI not allowed: URI: it contains spaces"),
        ({"name": "hv-x", "uri": "qemu:///system"}, "uri", "URI not allowed: a local URI"),
        ({"name": "hv-a", "uri": "qemu:///system"}, "name", "already exists"),
        ({"name": "hv-x", "uri": "qemu+tcp://10.0.0.2/system"}, "uri", "already exists"),
        ({"name": "hv-x", "uri": "qemu+tcp://x/system", "migration_address": "tcp://x:1"}, "migration_address", "host"),
    ],
)
def test_bad_hypervisor_input_is_a_form_error(admin, cluster, data, field, text):
    response = admin.post(reverse("hypervisor-create"), data)
    assert response.status_code == 400
    assert text in " ".join(response.context["form"].errors[field])
    assert text in response.content.decode()


def test_test_connection_shows_host_facts(admin, tmp_path):
    uri = write_node(tmp_path / "host-a.xml", [NodeDomain("web01")], cpus=6, memory_mib=8192)
    response = admin.post(reverse("hypervisor-test-connection"), {"uri": uri}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and "probe--ok" in html
    assert f"Connected to {uri}" in html and "6 (" in html and "8192 MiB" in html


def test_test_connection_shows_libvirts_error_text(admin, tmp_path):
    uri = f"test://{tmp_path}/missing.xml"
    response = admin.post(reverse("hypervisor-test-connection"), {"uri": uri}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and "probe--fail" in html and "libvirt says" in html
    assert "missing.xml" in html  # libvirt's own message names the file it could not read


def test_test_connection_without_javascript_keeps_the_form(admin, tmp_path):
    uri = write_node(tmp_path / "host-b.xml", [])
    response = admin.post(reverse("hypervisor-create"), {"name": "hv-b2", "uri": uri, "test": "1"})
    html = response.content.decode()
    assert response.status_code == 200 and "Connected to" in html and 'value="hv-b2"' in html
    assert not Hypervisor.objects.filter(name="hv-b2").exists()  # testing does not save


def test_test_connection_with_a_malformed_uri_is_a_form_error(admin):
    response = admin.post(reverse("hypervisor-test-connection"), {"uri": "zzz"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "URI not allowed: URI: not a libvirt URI" in response.content.decode()


def test_admin_puts_a_host_in_maintenance(admin, cluster):
    hv = cluster["hv_a"]
    data = {"name": "hv-a", "uri": hv.uri, "storage_servers": [cluster["nfs"].pk], "maintenance": "on"}
    assert admin.post(reverse("hypervisor-edit", args=[hv.pk]), data).status_code == 302
    hv.refresh_from_db()
    assert hv.state == Hypervisor.State.MAINTENANCE
    assert AuditEvent.objects.filter(action="hypervisor.updated", hypervisor="hv-a").exists()


def test_deleting_a_host_with_guests_is_refused_with_a_reason(admin, cluster):
    hv = cluster["hv_a"]
    page = admin.get(reverse("hypervisor-delete", args=[hv.pk])).content.decode()
    assert "Cannot delete hv-a" in page and "still has 2 guests" in page
    response = admin.post(reverse("hypervisor-delete", args=[hv.pk]))
    assert response.status_code == 409 and Hypervisor.objects.filter(pk=hv.pk).exists()


def test_deleting_an_empty_host_asks_then_removes(admin, cluster):
    hv = cluster["hv_b"]
    confirm = admin.get(reverse("hypervisor-delete", args=[hv.pk])).content.decode()
    assert "Yes, delete hv-b" in confirm
    assert admin.post(reverse("hypervisor-delete", args=[hv.pk])).status_code == 302
    assert not Hypervisor.objects.filter(pk=hv.pk).exists()
    assert AuditEvent.objects.filter(action="hypervisor.deleted", hypervisor="hv-b").exists()


def test_admin_adds_and_edits_a_storage_server(admin):
    data = {
        "name": "nfs2",
        "address": "10.0.0.6",
        "protocol": "nfs",
        "export_path": "/srv/vm/",
        "mount_path": "/mnt/vm",
    }
    assert admin.post(reverse("storage-create"), data).status_code == 302
    server = StorageServer.objects.get(name="nfs2")
    assert server.export_path == "/srv/vm"
    data["mount_path"] = "/var/lib/libvirt/images"
    assert admin.post(reverse("storage-edit", args=[server.pk]), data).status_code == 302
    server.refresh_from_db()
    assert server.mount_path == "/var/lib/libvirt/images"
    assert AuditEvent.objects.filter(action="storage.updated").count() == 1


def test_bad_storage_input_is_a_form_error(admin):
    data = {"name": "nfs3", "address": "10.0.0.6", "protocol": "nope", "export_path": "srv", "mount_path": "/a/../b"}
    response = admin.post(reverse("storage-create"), data)
    errors = response.context["form"].errors
    assert response.status_code == 400 and set(errors) == {"protocol", "export_path", "mount_path"}


def test_storage_with_disks_cannot_be_deleted(admin, cluster):
    response = admin.post(reverse("storage-delete", args=[cluster["nfs"].pk]))
    assert response.status_code == 409 and "1 guest disk live on nfs1" in response.content.decode()
