"""Can I take hv-a down? On the real lab: the plan from libvirt's facts, and nothing moves.

hv-a holds lab-g1 (running, cache=none, shared NFS disk), lab-g3 (running, but on a bridge only hv-a has)
and lab-gcache (shut off, cache=writeback). The plan moves lab-g1 live and lab-gcache offline to hv-b,
each with a prediction, and lists lab-g3 as blocked with the bridge check's words. Every guest is still
where it was afterwards, by libvirt's word.
"""

import pytest

from accounts.models import AuditEvent
from migrations_app.models import MigrationJob
from migrations_app.services import drain

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.once]


def test_the_plan_for_hv_a_moves_two_guests_and_names_the_blocked_one(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")
    mlab.ensure_on("lab-g3", "hv-a")
    mlab.ensure_on("lab-gcache", "hv-a", running=False)
    mlab.refresh()
    on_a = {g.name for g in mlab.hv("hv-a").guests.all()}
    assert {"lab-g1", "lab-g3", "lab-gcache"} <= on_a

    plan = drain.drain_plan(mlab.hv("hv-a"))

    moves = {m.guest.name: m for m in plan.moves}
    assert moves["lab-g1"].mode == "live" and moves["lab-g1"].target.name == "hv-b"
    assert moves["lab-gcache"].mode == "offline" and moves["lab-gcache"].target.name == "hv-b"
    assert moves["lab-g1"].prediction.converges and moves["lab-g1"].prediction.total_s > 0
    blocked = {b.guest.name: " ".join(b.reasons) for b in plan.blocked}
    assert "br-a-only" in blocked["lab-g3"]
    assert plan.verdict().startswith("no, because lab-g3")
    # a plan changes nothing: no job, and libvirt still runs the guests on hv-a
    assert not MigrationJob.objects.exists()
    assert lab.running_on("lab-g1") == ["hv-a"] and lab.running_on("lab-g3") == ["hv-a"]
    drain.drain_plan_shown(hypervisor=mlab.hv("hv-a"), plan=plan, actor=mlab.operator)
    assert AuditEvent.objects.filter(action="maintenance.plan_shown", hypervisor="hv-a").exists()
