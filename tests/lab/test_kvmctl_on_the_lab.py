"""`kvmctl migrate lab-g1 --to auto --wait` on the real lab: exit 0 and the guest on the other host
according to libvirt; a refused move exits 1 with the pre-flight's reason. kvmctl talks HTTP to
pytest-django's live server; the job runs on this process's runner thread, as the other lab tests."""

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest
from knox.models import AuthToken

from kvmctl.cli import main

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.once]


def test_kvmctl_moves_a_lab_guest_to_auto_and_waits(mlab, lab, live_server):
    mlab.ensure_on("lab-g1", "hv-a")
    _, token = AuthToken.objects.create(user=mlab.operator)

    def kvmctl(*argv):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--url", live_server.url, "--token", token, *argv])
        return code, out.getvalue(), err.getvalue()

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
