"""The Migrate form's default target is "Auto": the option names the host it would pick and why (the
ranking of planning.targets over the same readiness the form shows), or says why no host can take the
guest; the job keeps the reason. libvirt test-driver hosts; the worker is replaced by a list."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor, StorageServer
from migrations_app.models import MigrationJob
from migrations_app.services import admission
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _cluster(tmp_path, monkeypatch, target_bridges=("br0",)):
    """hv-a holds a shut-off guest on shared storage; hv-b (2 GiB free) and hv-c (6 GiB free) may take it."""
    from hosts.services import inventory
    from tests.libvirt_nodes import NodeDomain, write_node

    monkeypatch.setattr(admission, "_enqueue", lambda job_id: None)
    nfs = StorageServer.objects.create(
        name="au-nfs", address="127.0.0.1", export_path="/srv", mount_path="/var/lib/libvirt/images"
    )
    guest = NodeDomain("au-g1", running=False, memory_mib=512, disk_path="/var/lib/libvirt/images/au-g1.qcow2")
    uris = {
        "hv-a": write_node(tmp_path / "a.xml", [guest]),
        "hv-b": write_node(tmp_path / "b.xml", [], bridges=target_bridges),
        "hv-c": write_node(tmp_path / "c.xml", [], bridges=target_bridges),
    }
    for name, uri in uris.items():
        Hypervisor.objects.create(name=name, uri=uri).storage_servers.set([nfs])
    inventory.refresh_all()
    # libvirt's test driver reports no free memory; the ranking reads the inventory's figure
    Hypervisor.objects.filter(name="hv-b").update(memory_free_mib=2048)
    Hypervisor.objects.filter(name="hv-c").update(memory_free_mib=6144)
    client = Client()
    client.force_login(make_user("au-op", "operator", password=None))
    return Guest.objects.get(name="au-g1"), client


def test_auto_is_the_default_and_names_the_best_host_and_why(tmp_path, monkeypatch):
    guest, client = _cluster(tmp_path, monkeypatch)
    page = client.get(reverse("guest-migrate", args=[guest.pk]), {"kind": "offline"}).content.decode()
    assert 'value="auto" checked' in page
    # hv-c leaves more memory free after the move; both are equal in the rest (the reasons list ties too)
    assert "Auto (best: hv-c — most free memory (6.0 GiB after the move), idle link, " in page
    targets = client.get(reverse("guest-migrate-targets", args=[guest.pk]), {"kind": "offline", "target": "auto"})
    assert targets.status_code == 200 and "Auto (best: hv-c" in targets.content.decode()


def test_a_move_to_auto_goes_to_that_host_and_keeps_the_reason(tmp_path, monkeypatch):
    guest, client = _cluster(tmp_path, monkeypatch)
    response = client.post(
        reverse("guest-migrate", args=[guest.pk]), {"target": "auto", "kind": "offline", "timeout_action": "abort"}
    )
    job = MigrationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
    assert job.target.name == "hv-c"
    assert job.target_reason.startswith("auto: most free memory (6.0 GiB after the move), idle link")
    audit = AuditEvent.objects.get(action="migration.requested", outcome="ok")
    assert audit.params["target_reason"] == job.target_reason
    page = client.get(job.get_absolute_url()).content.decode()
    assert f"How hv-c was chosen: {job.target_reason}" in page


def test_the_api_moves_to_auto_and_says_why(tmp_path, monkeypatch):
    guest, client = _cluster(tmp_path, monkeypatch)
    body = {"guest": guest.name, "target": "auto", "kind": "offline"}
    response = client.post(reverse("api-migration-list"), body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["target_name"] == "hv-c"
    assert response.json()["target_reason"].startswith("auto: most free memory")


def test_auto_says_when_no_host_can_take_the_guest(tmp_path, monkeypatch):
    guest, client = _cluster(tmp_path, monkeypatch, target_bridges=("br9",))
    page = client.get(reverse("guest-migrate", args=[guest.pk]), {"kind": "offline"}).content.decode()
    assert "Auto (no host can take it: hv-b fails “" in page and "hv-c fails “" in page
    response = client.post(
        reverse("guest-migrate", args=[guest.pk]), {"target": "auto", "kind": "offline", "timeout_action": "abort"}
    )
    assert response.status_code == 400 and "No hypervisor can take au-g1: hv-b fails" in response.content.decode()
    assert not MigrationJob.objects.exists()
