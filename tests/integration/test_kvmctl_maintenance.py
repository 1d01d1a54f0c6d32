"""kvmctl's maintenance verbs against a live test server: `maintenance enter` shows the plan and asks,
`operation show --watch` follows the drain to its end, pause / resume / cancel, `maintenance exit --return`
brings the guests back; bad input exits non-zero with the reason. Hosts are libvirt test-driver nodes;
the worker is replaced by the test ending each enqueued move as the worker would."""

from __future__ import annotations

import io
import json

import pytest

from hosts.models import Guest, Hypervisor, StorageServer
from hosts.services import placement
from kvmctl import output
from migrations_app import services
from migrations_app.models import MigrationJob, Operation
from tests.factories import make_user
from tests.kvmctl_support import kvmctl_as

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")  # children advance on commit


@pytest.fixture
def kvmctl(live_server):
    return kvmctl_as(make_user("mk-op", "operator", password=None), live_server.url)


@pytest.fixture
def hosts(tmp_path, settings, monkeypatch):
    """mk-a holds three shut-off guests on shared storage; mk-b can take them (offline moves)."""
    from hosts.services import inventory
    from tests.libvirt_nodes import NodeDomain, write_node

    settings.MIGRATION_MAX_OUTGOING = settings.MIGRATION_MAX_INCOMING = 1
    monkeypatch.setattr(services.admission, "_enqueue", lambda job_id: None)  # no worker: the test ends moves
    nfs = StorageServer.objects.create(
        name="mk-nfs", address="127.0.0.1", export_path="/srv", mount_path="/var/lib/libvirt/images"
    )
    doms = [
        NodeDomain(n, running=False, memory_mib=256, disk_path=f"/var/lib/libvirt/images/{n}.qcow2")
        for n in ("g1", "g2", "g3")
    ]
    for name, uri in (("mk-a", write_node(tmp_path / "a.xml", doms)), ("mk-b", write_node(tmp_path / "b.xml", []))):
        Hypervisor.objects.create(name=name, uri=uri).storage_servers.set([nfs])
    inventory.refresh_all()
    Hypervisor.objects.filter(name="mk-b").update(memory_free_mib=8192)  # the test driver reports none
    return Hypervisor.objects.get(name="mk-a")


def _end_next_move() -> None:
    """What the worker would do with the oldest waiting move: run it, the guest lands on its target."""
    job = MigrationJob.objects.filter(state__in=["pending", "queued"]).order_by("id").first()
    services.transition(job.pk, "running")
    placement.record_location(job.guest_id, power="shutoff", hypervisor=job.target)
    services.transition(job.pk, "succeeded", where_guest_is="target")


def test_enter_shows_the_plan_and_moves_nothing_unless_confirmed(kvmctl, hosts, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out, err = kvmctl("maintenance", "enter", "mk-a")
    assert code == 1 and out == ""
    assert err.startswith("mk-a: yes") and "g1" in err and "offline" in err  # the plan, before the question
    assert "Enter maintenance on mk-a" in err and "not confirmed: nothing was changed" in err
    hosts.refresh_from_db()
    assert hosts.state != "maintenance" and not Operation.objects.exists()

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, err = kvmctl("maintenance", "enter", "mk-a")
    assert code == 0, err
    op = Operation.objects.get()
    assert out.startswith(f"operation #{op.pk} drain of mk-a: running")
    assert "0/3 done, 1 running, 2 waiting" in out and f"kvmctl operation show {op.pk} --watch" in out
    hosts.refresh_from_db()
    assert hosts.state == "maintenance" and op.jobs.count() == 1  # one outgoing slot: one move at a time


def test_watch_follows_the_operation_until_the_host_is_empty(kvmctl, hosts, monkeypatch):
    code, out, err = kvmctl("maintenance", "enter", "mk-a", "--yes", "--json")
    assert code == 0, err
    op_id = json.loads(out)["id"]
    polls = []
    # each pause between two polls, the worker finishes a move (and the operation starts the next)
    monkeypatch.setattr(output, "sleep", lambda s: (polls.append(s), _end_next_move()))
    code, out, err = kvmctl("operation", "show", str(op_id), "--watch")
    assert code == 0, err
    assert len(polls) == 3 and out.startswith(f"operation #{op_id} drain of mk-a: done")
    assert "3/3 done" in out and out.count("succeeded") == 3
    assert not Guest.objects.filter(hypervisor=hosts).exists()


def test_pause_resume_and_cancel_from_the_command_line(kvmctl, hosts):
    op_id = json.loads(kvmctl("maintenance", "enter", "mk-a", "--yes", "--json")[1])["id"]
    code, out, _ = kvmctl("operation", "pause", str(op_id))
    assert code == 0 and f"operation #{op_id} drain of mk-a: paused" in out
    code, _, err = kvmctl("operation", "pause", str(op_id))
    assert code == 1 and "409" in err and "cannot be paused" in err
    code, out, _ = kvmctl("operation", "resume", str(op_id), "--json")
    assert code == 0 and json.loads(out)["state"] == "running"
    code, _, err = kvmctl("operation", "cancel", str(op_id))
    assert code == 1 and "add --yes" in err and Operation.objects.get().state == "running"
    code, out, err = kvmctl("operation", "cancel", str(op_id), "--yes", "--json")
    assert code == 0, err
    assert json.loads(out)["state"] == "cancelled"  # the waiting move was cancelled, nothing ran
    code, out, err = kvmctl("operation", "show", str(op_id), "--watch")
    assert code == 1 and out == "" and f"operation #{op_id} cancelled" in err


def test_exit_lists_the_guests_away_and_return_brings_them_back(kvmctl, hosts):
    kvmctl("maintenance", "enter", "mk-a", "--yes")
    for _ in range(3):
        _end_next_move()
    code, out, err = kvmctl("maintenance", "exit", "mk-a")
    assert code == 0, err
    assert out.startswith("mk-a: online") and out.count("is on mk-b (moved by operation") == 3
    assert "bring them back: kvmctl maintenance return mk-a" in out
    code, out, err = kvmctl("maintenance", "return", "mk-a", "--json")
    assert code == 0, err
    back = json.loads(out)
    assert back["kind"] == "return" and [m["source"] for m in back["plan"]["moves"]] == ["mk-b"] * 3
    # the fake worker moved the guests in the inventory only: libvirt's test node still has them on mk-a,
    # and the return's pre-flight says so; kvmctl shows the operation's reasons as the dashboard gave them
    code, out, _ = kvmctl("operation", "show", str(back["id"]))
    assert out.startswith(f"operation #{back['id']} return of mk-a: incomplete") and "left:" in out
    assert "mk-a already has a domain with name g1" in out


def test_exit_with_return_in_one_verb(kvmctl, hosts):
    kvmctl("maintenance", "enter", "mk-a", "--yes")
    for _ in range(3):
        _end_next_move()
    code, out, err = kvmctl("maintenance", "exit", "mk-a", "--return", "--json")
    assert code == 0, err
    both = json.loads(out)
    assert both["exit"]["state"] == "online" and both["operation"]["kind"] == "return"
    assert Operation.objects.filter(kind="return").count() == 1


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["maintenance", "enter", "no-such-host", "--yes"], "no hypervisor named 'no-such-host'"),
        (["operation", "show", "999999"], "404"),
        (["operation", "resume", "999999"], "404"),
        (["maintenance", "exit", "mk-a"], "mk-a is not in maintenance"),
        (["maintenance", "exit", "mk-a", "--return"], "mk-a is not in maintenance"),
        (["maintenance", "return", "mk-a"], "no guest of the last drain of mk-a is left to bring back"),
        (["drain", "mk-a"], "--dry-run"),
    ],
)
def test_bad_input_exits_1_with_the_reason(kvmctl, hosts, argv, says):
    code, out, err = kvmctl(*argv)
    assert code == 1 and out == "" and says in err
    code, _, err = kvmctl(*argv, "--json")
    assert code == 1 and says in json.loads(err)["detail"] + str(json.loads(err)["status"])


def test_a_guest_that_cannot_move_refuses_the_drain_unless_forced(kvmctl, hosts):
    Hypervisor.objects.filter(name="mk-b").update(state="maintenance")  # nowhere to go
    code, _, err = kvmctl("maintenance", "enter", "mk-a", "--yes")
    assert code == 1 and "409" in err and "3 guest(s) cannot leave mk-a" in err
    code, out, err = kvmctl("maintenance", "enter", "mk-a", "--yes", "--force", "--stop-on-failure", "--json")
    assert code == 0, err
    op = json.loads(out)
    assert op["state"] == "incomplete" and op["stop_on_first_failure"] and len(op["reasons"]) == 3


def test_an_exit_whose_return_is_refused_says_the_host_is_out_of_maintenance(kvmctl, hosts):
    Hypervisor.objects.filter(name="mk-b").update(state="maintenance")
    kvmctl("maintenance", "enter", "mk-a", "--yes", "--force")  # nothing moves: nothing to bring back
    code, out, err = kvmctl("maintenance", "exit", "mk-a", "--return")
    assert code == 1 and out == ""
    assert "mk-a left maintenance, but no guest comes back: no guest of the last drain" in err
    hosts.refresh_from_db()
    assert hosts.state == "online"


@pytest.mark.parametrize("argv", [["operation", "show", "seven"], ["maintenance", "enter"], ["operation", "stop", "1"]])
def test_malformed_arguments_are_usage_errors(argv):
    from kvmctl.cli import main

    with pytest.raises(SystemExit) as ended:
        main(["--token", "x", *argv])
    assert ended.value.code == 2
