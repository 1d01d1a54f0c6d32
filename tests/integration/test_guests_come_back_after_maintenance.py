"""After maintenance, the operator brings the guests of the drain back as one operation (kind "return")
whose moves all target the original host, from the page or the API, audited (libvirt test-driver hosts;
the moves are started, not run: the worker is replaced by a list)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from hosts.drivers import libvirt as driver
from hosts.models import Guest, Hypervisor
from migrations_app.models import Operation
from migrations_app.services import operation_controls as controls
from tests.integration.test_maintenance_operations import _end, _enter, drain  # noqa: F401 (fixture)
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db(transaction=True)  # children advance on commit


def _drained_and_exited(d) -> Operation:
    """The drain ran to its end and the host left maintenance; libvirt's hosts now say where the guests went."""
    op = _enter(d)
    for _ in range(3):
        _end(op.jobs.order_by("-id").first(), "succeeded", moved=True)
    guests = list(Guest.objects.filter(hypervisor=d["b"]).order_by("name"))
    image = "/var/lib/libvirt/images/{}.qcow2"
    doms = [
        NodeDomain(g.name, uuid=str(g.uuid), running=False, memory_mib=g.memory_mib, disk_path=image.format(g.name))
        for g in guests
    ]
    write_node(_path(d["a"]), [])
    write_node(_path(d["b"]), doms)
    driver.close_all()  # test:/// hosts are read from their file when opened
    Hypervisor.objects.filter(pk=d["a"].pk).update(memory_free_mib=8192)
    controls.maintenance_exit(hypervisor=d["a"], actor=d["operator"])
    return op


def _path(hv):
    from pathlib import Path

    return Path(hv.uri.removeprefix("test://"))


def test_confirming_the_reverse_plan_starts_a_return_operation_toward_the_original_host(drain, settings):  # noqa: F811
    settings.MIGRATION_MAX_INCOMING = 3
    drained = _drained_and_exited(drain)
    client = Client(REMOTE_ADDR="127.0.0.12")
    client.force_login(drain["operator"])
    url = reverse("hypervisor-maintenance-return", args=[drain["a"].pk])
    confirm = client.get(url).content.decode()
    assert "Bring 3 guests back to mt-a" in confirm and confirm.count("Move back…") == 3

    response = client.post(url, {"stop_on_first_failure": "on"})
    op = Operation.objects.get(kind="return")
    assert response.status_code == 302 and response["Location"] == op.get_absolute_url()
    assert op.hypervisor == drain["a"] and op.state == "running" and op.stop_on_first_failure
    children = list(op.jobs.select_related("source", "target").order_by("guest_name"))
    assert [(j.guest_name, j.source.name, j.target.name) for j in children] == [
        ("g1", "mt-b", "mt-a"),
        ("g2", "mt-b", "mt-a"),
        ("g3", "mt-b", "mt-a"),
    ]
    assert {j.idempotency_key for j in children} == {f"op{op.pk}-guest{j.guest_id}" for j in children}
    row = AuditEvent.objects.get(action="maintenance.return_confirmed", outcome="ok")
    assert row.params["operation_id"] == op.pk and row.params["plan"]["moves"][0]["of_operation"] == drained.pk
    assert AuditEvent.objects.filter(action="migration.requested", outcome="ok").count() == 3 + 3  # drain + return
    page = client.get(op.get_absolute_url()).content.decode()
    assert "Bringing guests back to mt-a" in page and "mt-b → mt-a" in page
    assert all(m["prediction"]["total_s"] > 0 for m in op.plan["moves"]) and "Time left: about" in page

    for job in children:  # the moves end: every guest is back, the operation is done
        _end(job, "succeeded", moved=True)
    op.refresh_from_db()
    assert op.state == "done" and Guest.objects.filter(hypervisor=drain["a"]).count() == 3
    again = client.post(url, {})
    assert again.status_code == 409 and "no guest of the last drain of mt-a is left" in again.content.decode()


def test_the_api_starts_the_return_and_refuses_while_the_host_is_in_maintenance(drain):  # noqa: F811
    client = Client(REMOTE_ADDR="127.0.0.12")
    client.force_login(drain["operator"])
    url = reverse("api-maintenance-return", kwargs={"hypervisor_pk": drain["a"].pk})
    _enter(drain)
    refused = client.post(url, {}, content_type="application/json")
    assert refused.status_code == 409 and "is in maintenance" in refused.json()["detail"]
    assert AuditEvent.objects.filter(action="maintenance.return_confirmed", outcome="refused").exists()


def test_the_api_return_targets_the_original_host(drain):  # noqa: F811
    _drained_and_exited(drain)
    client = Client(REMOTE_ADDR="127.0.0.12")
    client.force_login(drain["operator"])
    url = reverse("api-maintenance-return", kwargs={"hypervisor_pk": drain["a"].pk})
    response = client.post(url, {}, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "return" and body["hypervisor_name"] == "mt-a"
    assert body["progress"]["total"] == 3 and len(body["children"]) == 1  # one incoming slot on mt-a
    assert body["children"][0]["source_name"] == "mt-b" and body["children"][0]["target_name"] == "mt-a"
