"""Maintenance mode as an Operation: entering it drains the host through ordinary guest migrations,
in plan order, never twice per guest, and the operation ends done / incomplete / cancelled from the database
(libvirt test-driver hosts; the worker is replaced by a list of enqueued job ids)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor, StorageServer
from hosts.services import placement
from hosts.services.power import PowerRefused, guest_power
from migrations_app import services
from migrations_app.models import MigrationJob, Operation
from migrations_app.services import operation_controls as controls
from migrations_app.services import operations
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)  # children advance on commit


@pytest.fixture
def drain(tmp_path, settings, monkeypatch):
    """mt-a holds three shut-off guests on shared storage; mt-b can take them (offline moves)."""
    from hosts.services import inventory
    from tests.libvirt_nodes import NodeDomain, write_node

    settings.MIGRATION_MAX_OUTGOING = 1
    settings.MIGRATION_MAX_INCOMING = 1
    enqueued: list[int] = []
    monkeypatch.setattr(services.admission, "_enqueue", enqueued.append)
    nfs = StorageServer.objects.create(
        name="mt-nfs", address="127.0.0.1", export_path="/srv", mount_path="/var/lib/libvirt/images"
    )
    doms = [
        NodeDomain(n, running=False, memory_mib=m, disk_path=f"/var/lib/libvirt/images/{n}.qcow2")
        for n, m in (("g1", 256), ("g2", 512), ("g3", 128))
    ]
    a = write_node(tmp_path / "a.xml", doms)
    b = write_node(tmp_path / "b.xml", [])
    hosts = [Hypervisor.objects.create(name=n, uri=u) for n, u in (("mt-a", a), ("mt-b", b))]
    for hv in hosts:
        hv.storage_servers.set([nfs])
    inventory.refresh_all()
    # libvirt's test driver reports no free memory; the planner books what the inventory says
    Hypervisor.objects.filter(name="mt-b").update(memory_free_mib=8192)
    hosts = [Hypervisor.objects.get(pk=h.pk) for h in hosts]
    return {
        "a": hosts[0],
        "b": hosts[1],
        "enqueued": enqueued,
        "operator": make_user("mt-op", "operator", password=None),
    }


def _end(job: MigrationJob, state: str, *, moved: bool) -> None:
    """What the worker would do: run the job and settle it (a verified move changes the guest's host)."""
    services.transition(job.pk, "running")
    if moved:
        placement.record_location(job.guest_id, power="shutoff", hypervisor=job.target)
    services.transition(job.pk, state, error="" if moved else "boom", where_guest_is="target" if moved else "source")


def _enter(d, **kw) -> Operation:
    return operations.maintenance_enter(hypervisor=d["a"], actor=d["operator"], **kw)


def test_entering_maintenance_starts_children_in_plan_order_and_sets_the_host(drain):
    op = _enter(drain)
    drain["a"].refresh_from_db()
    assert drain["a"].state == "maintenance"
    assert [m["guest"] for m in op.plan["moves"]] and len(op.plan["moves"]) == 3
    jobs = list(op.jobs.order_by("id"))
    assert [j.guest_name for j in jobs] == [op.plan["moves"][0]["guest"]]  # window = 1 outgoing slot
    assert jobs[0].idempotency_key == f"op{op.pk}-guest{jobs[0].guest_id}"
    assert AuditEvent.objects.filter(action="maintenance.confirmed", outcome="ok").exists()
    for _ in range(3):
        job = op.jobs.order_by("-id").first()
        _end(job, "succeeded", moved=True)
    assert [j.guest_name for j in op.jobs.order_by("id")] == [m["guest"] for m in op.plan["moves"]]
    op.refresh_from_db()
    assert op.state == "done" and not Guest.objects.filter(hypervisor=drain["a"]).exists()
    assert AuditEvent.objects.filter(action="operation.finished", params__state="done").exists()


def test_a_failure_with_stop_on_first_failure_stops_the_rest_and_ends_incomplete(drain):
    op = _enter(drain, stop_on_first_failure=True)
    _end(op.jobs.get(), "failed", moved=False)
    op.refresh_from_db()
    assert op.jobs.count() == 1 and op.stopped and op.state == "incomplete"
    assert len(op.reasons) == 3 and any("failed: boom" in r for r in op.reasons)


def test_a_failure_without_stop_goes_on_and_ends_incomplete(drain):
    op = _enter(drain)
    _end(op.jobs.get(), "failed", moved=False)
    for _ in range(2):
        _end(op.jobs.order_by("-id").first(), "succeeded", moved=True)
    op.refresh_from_db()
    assert op.jobs.count() == 3 and op.state == "incomplete" and len(op.reasons) == 1


def test_advancing_twice_never_starts_a_second_move_of_a_guest(drain):
    op = _enter(drain)
    operations.operation_advance(op.pk)
    operations.advance_active()  # the reconciler after a worker crash
    assert op.jobs.count() == 1
    _end(op.jobs.get(), "succeeded", moved=True)
    operations.operation_advance(op.pk)
    operations.operation_advance(op.pk)
    guests = list(MigrationJob.objects.values_list("guest_id", flat=True))
    assert len(guests) == len(set(guests)) == 2


def test_pause_resume_and_cancel(drain):
    op = _enter(drain)
    op = controls.operation_pause(operation=op, actor=drain["operator"])
    _end(op.jobs.get(), "succeeded", moved=True)
    op.refresh_from_db()
    assert op.state == "paused" and op.jobs.count() == 1  # nothing new starts while paused
    op = controls.operation_resume(operation=op, actor=drain["operator"])
    assert op.jobs.count() == 2
    op = controls.operation_cancel(operation=op, actor=drain["operator"])
    assert op.state == "cancelled" and op.jobs.filter(state="cancelled").count() == 1
    with pytest.raises(services.MigrationError, match="cannot be resumed"):
        controls.operation_resume(operation=op, actor=drain["operator"])
    assert {"operation.paused", "operation.resumed", "operation.cancelled"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )


def test_a_host_in_maintenance_takes_no_guest(drain):
    guest = Guest.objects.get(name="g1")
    stale = Hypervisor.objects.get(pk=drain["b"].pk)  # read before the host went into maintenance
    placement.set_maintenance(drain["b"].pk, True)
    with pytest.raises(services.PreflightFailed, match="in maintenance"):
        services.migration_request(
            guest=guest,
            target=stale,
            kind="offline",
            options=None,
            actor=drain["operator"],
        )
    placement.set_maintenance(drain["a"].pk, True)
    with pytest.raises(PowerRefused, match="in maintenance"):
        guest_power(guest=Guest.objects.select_related("hypervisor").get(pk=guest.pk), action="start")


def test_a_second_operation_on_the_host_and_a_viewer_are_refused(drain):
    _enter(drain)
    with pytest.raises(services.MigrationError, match="already has an operation"):
        _enter(drain)
    with pytest.raises(PermissionDenied):
        operations.maintenance_enter(hypervisor=drain["a"], actor=make_user("mt-v", "viewer", password=None))


def test_exit_maintenance_offers_the_guests_back(drain):
    op = _enter(drain)
    with pytest.raises(services.MigrationError, match="in progress"):
        controls.maintenance_exit(hypervisor=drain["a"], actor=drain["operator"])
    for _ in range(3):
        _end(op.jobs.order_by("-id").first(), "succeeded", moved=True)
    out = controls.maintenance_exit(hypervisor=drain["a"], actor=drain["operator"])
    drain["a"].refresh_from_db()
    assert drain["a"].state == "online"
    assert sorted(m["guest"] for m in out["reverse_plan"]) == ["g1", "g2", "g3"]
    assert {m["to"] for m in out["reverse_plan"]} == {"mt-a"}


def _api(user) -> Client:
    client = Client(REMOTE_ADDR="127.0.0.11")
    client.force_login(user)
    return client


def test_the_api_enters_maintenance_shows_the_operation_and_pauses_it(drain):
    client = _api(drain["operator"])
    url = reverse("api-maintenance-list", kwargs={"hypervisor_pk": drain["a"].pk})
    response = client.post(url, {"stop_on_first_failure": True}, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "running" and body["stop_on_first_failure"] is True
    eta = body["progress"].pop("eta_s")
    assert body["progress"] == {"total": 3, "done": 0, "running": 1, "waiting": 2, "failed": 0, "percent": 0}
    assert eta == round(sum(m["prediction"]["total_s"] for m in body["plan"]["moves"]))  # one move at a time
    detail = client.get(reverse("api-operation-detail", kwargs={"pk": body["id"]})).json()
    assert [c["guest_name"] for c in detail["children"]] == [body["plan"]["moves"][0]["guest"]]
    paused = client.post(reverse("api-operation-pause", kwargs={"pk": body["id"]}))
    assert paused.status_code == 202 and paused.json()["state"] == "paused"
    again = client.post(url, {}, content_type="application/json")
    assert again.status_code == 409 and "already has an operation" in again.json()["detail"]


def test_a_viewer_may_not_enter_maintenance_and_is_audited(drain):
    viewer = make_user("mt-viewer", "viewer", password=None)
    url = reverse("api-maintenance-list", kwargs={"hypervisor_pk": drain["a"].pk})
    response = _api(viewer).post(url, {}, content_type="application/json")
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="auth.denied", actor=viewer).exists()
    assert not Operation.objects.exists() and Hypervisor.objects.get(pk=drain["a"].pk).state != "maintenance"


def test_the_pages_confirm_show_progress_and_exit(drain):
    a = drain["a"]
    viewer_page = _api(make_user("mt-v2", "viewer", password=None)).get(reverse("hypervisor-drain-plan", args=[a.pk]))
    assert "Enter maintenance" not in viewer_page.content.decode()
    client = _api(drain["operator"])
    assert "Enter maintenance…" in client.get(reverse("hypervisor-drain-plan", args=[a.pk])).content.decode()
    confirm = client.get(reverse("hypervisor-maintenance", args=[a.pk])).content.decode()
    assert "Stop on first failure" in confirm and "move 3 guests" in confirm
    response = client.post(reverse("hypervisor-maintenance", args=[a.pk]), {"stop_on_first_failure": "on"})
    op = Operation.objects.get()
    assert response.status_code == 302 and response["Location"] == op.get_absolute_url() and op.stop_on_first_failure
    page = client.get(op.get_absolute_url()).content.decode()
    assert "0 done · 1 running · 2 waiting · 0 failed, of 3" in page and 'hx-trigger="every 2s"' in page
    assert f'id="operation-{op.pk}-job-{op.jobs.get().pk}"' in page and "Pause" in page
    client.post(reverse("operation-cancel", args=[op.pk]))
    op.refresh_from_db()
    assert op.state == "cancelled"
    assert "Exit maintenance" in client.get(reverse("hypervisor-drain-plan", args=[a.pk])).content.decode()
    exited = client.post(reverse("hypervisor-maintenance-exit", args=[a.pk]))
    assert exited.status_code == 200 and Hypervisor.objects.get(pk=a.pk).state == "online"


def test_a_child_created_before_a_crash_is_adopted_not_moved_twice(drain, settings):
    """A worker died between creating a child and linking it to the operation: the next step adopts it."""
    op = _enter(drain)
    first = op.jobs.get()
    MigrationJob.objects.filter(pk=first.pk).update(operation=None)  # the link was never written
    settings.MIGRATION_MAX_OUTGOING = 3
    operations.operation_advance(op.pk)
    operations.operation_advance(op.pk)
    guests = list(MigrationJob.objects.values_list("guest_id", flat=True))
    assert len(guests) == len(set(guests)) == 3
    assert op.jobs.filter(pk=first.pk).exists()
