"""`kvmctl migrate lab-g1 --to auto --wait` on the real lab: exit 0 and the guest on the other host
according to libvirt; a refused move exits 1 with the pre-flight's reason. kvmctl talks HTTP to
pytest-django's live server; the job runs on this process's runner thread, as the other lab tests.
`kvmctl drain hv-a --dry-run` and `maintenance enter hv-a` on the lab: the plan, and no move while a guest
cannot leave."""

import io
import json

import pytest

from hosts.models import Hypervisor
from migrations_app.models import MigrationJob, Operation
from tests.kvmctl_support import kvmctl_as

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.once]


def test_kvmctl_moves_a_lab_guest_to_auto_and_waits(mlab, lab, live_server):
    mlab.ensure_on("lab-g1", "hv-a")
    kvmctl = kvmctl_as(mlab.operator, live_server.url)

    code, out, err = kvmctl("migrate", "lab-g1", "--to", "auto", "--wait")
    assert code == 0, err
    assert "lab-g1 hv-a -> hv-b: succeeded" in out
    assert lab.running_on("lab-g1") == ["hv-b"]  # libvirt's word
    # the move is in the audit trail, read back through the API by `kvmctl audit`
    job_id = int(out.split("#", 1)[1].split()[0])
    code, out, err = kvmctl("audit", "--migration", str(job_id), "--since", "1h", "--json")
    assert code == 0, err
    actions = [row["action"] for row in json.loads(out)]
    assert "migration.requested" in actions and "migration.succeeded" in actions

    # lab-g3 has a NIC on a bridge only hv-a has: refused, with the reason, nothing moved
    mlab.ensure_on("lab-g3", "hv-a")
    code, out, err = kvmctl("migrate", "lab-g3", "--to", "hv-b")
    assert code == 1 and out == ""
    assert "pre-flight refused the move" in err and "br-a-only" in err
    assert lab.running_on("lab-g3") == ["hv-a"]


def _row(table: str, guest: str) -> list[str]:
    return next(line.split() for line in table.splitlines() if line.split()[1:2] == [guest])


def test_kvmctl_shows_hv_as_drain_plan_and_enters_maintenance_only_when_every_guest_can_move(
    mlab, lab, live_server, monkeypatch
):
    """lab-g3 is on br-a-only, a bridge hv-b lacks: the plan says so, a declined confirmation changes
    nothing, and a confirmed one without --force is refused naming lab-g3. No guest moves."""
    mlab.ensure_on("lab-g1", "hv-a")
    mlab.ensure_on("lab-g3", "hv-a")
    mlab.refresh()
    kvmctl = kvmctl_as(mlab.operator, live_server.url)

    code, out, err = kvmctl("drain", "hv-a", "--dry-run")
    assert code == 0, err
    assert out.startswith("hv-a: no, because lab-g3") and "cannot move lab-g3:" in out and "br-a-only" in out
    assert _row(out, "lab-g1")[2:4] == ["hv-b", "live"]  # its row of the table: #, guest, to, mode

    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out, err = kvmctl("maintenance", "enter", "hv-a")
    assert code == 1 and _row(err, "lab-g1")[2:4] == ["hv-b", "live"] and "not confirmed" in err
    code, _, err = kvmctl("maintenance", "enter", "hv-a", "--yes", "--json")
    assert code == 1 and "cannot leave hv-a" in json.loads(err)["detail"] and "lab-g3" in json.loads(err)["detail"]

    assert Hypervisor.objects.get(name="hv-a").state != "maintenance"
    assert not Operation.objects.exists() and not MigrationJob.objects.exists()
    assert lab.running_on("lab-g1") == ["hv-a"] and lab.running_on("lab-g3") == ["hv-a"]  # libvirt's word
