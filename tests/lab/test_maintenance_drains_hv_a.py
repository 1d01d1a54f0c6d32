"""Maintenance mode on the real lab: entering it on hv-a drains hv-a's guests to hv-b as one operation
(running guests live, the shut-off one offline), libvirt then lists no running guest on hv-a and each moved
guest on hv-b only, hv-a stays in maintenance, and leaving maintenance offers the guests back.

lab-g3 has a NIC on br-a-only, a bridge hv-b lacks: the plan lists it as blocked, so the drain is
confirmed with force and ends "incomplete" naming lab-g3 (nothing else may be left)."""

import time

import pytest

from accounts.models import AuditEvent
from hosts.drivers import libvirt as driver
from hosts.models import Hypervisor
from hosts.services import placement
from migrations_app.models import Operation
from migrations_app.services import operation_controls, operations
from migrations_app.services.drain import drain_plan

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

MOVED = {"lab-g1": "live", "lab-g2": "live", "lab-gcache": "offline"}
PINNED = "lab-g3"


def _wait_finished(op_id: int, timeout: float = 300) -> Operation:
    deadline = time.monotonic() + timeout
    while True:
        op = Operation.objects.get(pk=op_id)
        if op.is_terminal:
            return op
        if time.monotonic() > deadline:
            raise AssertionError(
                f"operation #{op_id} still {op.state}: {list(op.jobs.values_list('state', flat=True))}"
            )
        operations.operation_advance(op_id)  # what the reconciler's schedule does
        time.sleep(0.5)


def test_entering_maintenance_drains_hv_a_to_hv_b_and_exit_offers_them_back(mlab, lab):
    for name, mode in MOVED.items():
        mlab.ensure_on(name, "hv-a", running=mode == "live")
    mlab.ensure_on(PINNED, "hv-a", running=False)
    hv_a = mlab.hv("hv-a")
    try:
        plan = drain_plan(hv_a)
        assert {m.guest.name: m.mode for m in plan.moves} == MOVED
        assert {b.guest.name for b in plan.blocked} == {PINNED}
        op = operations.maintenance_enter(hypervisor=hv_a, actor=mlab.operator, force=True, source_ip="127.0.0.1")
        assert Hypervisor.objects.get(pk=hv_a.pk).state == "maintenance"
        op = _wait_finished(op.pk)
        jobs = {j.guest_name: j for j in op.jobs.all()}
        assert {n: (j.state, j.kind) for n, j in jobs.items()} == {n: ("succeeded", m) for n, m in MOVED.items()}
        assert op.state == "incomplete" and len(op.reasons) == 1 and op.reasons[0].startswith(PINNED)
        # libvirt's word, on both hosts: nothing runs on hv-a, each moved guest is on hv-b only
        assert [d.name for d in driver.list_domains(lab.uri("hv-a")) if d.state == "running"] == []
        for name in MOVED:
            assert lab.current_host(name) == "hv-b"
            assert driver.find_domain(lab.uri("hv-a"), lab.guest_uuids[name]) is None
        assert lab.running_on("lab-g1") == ["hv-b"] and lab.running_on("lab-g2") == ["hv-b"]
        assert Hypervisor.objects.get(pk=hv_a.pk).state == "maintenance"
        actions = set(AuditEvent.objects.values_list("action", flat=True))
        assert {"maintenance.confirmed", "operation.finished", "migration.succeeded"} <= actions

        out = operation_controls.maintenance_exit(hypervisor=hv_a, actor=mlab.operator, source_ip="127.0.0.1")
        assert {m["guest"] for m in out["reverse_plan"]} == set(MOVED)
        assert Hypervisor.objects.get(pk=hv_a.pk).state == "online"
    finally:
        placement.set_maintenance(hv_a.pk, False)  # never leave the lab's hv-a refusing guests
