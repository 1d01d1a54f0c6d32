"""kvmctl against a real server (pytest-django's live_server: HTTP on loopback) with a token issued
by `manage.py api_token`: tables, --json on every verb, the API's refusals as exit 1 with the reason."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor
from kvmctl.cli import main
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)
TEST_GUEST = "6695eb01-f6a4-8304-79aa-97f2502e193f"  # libvirt's test driver's own running guest


@pytest.fixture
def kvmctl(live_server):
    make_user("cli-op", "operator", password=None)
    out = io.StringIO()
    call_command("api_token", "create", "cli-op", "--days", "1", stdout=out, stderr=io.StringIO())
    token = out.getvalue().strip()

    def run(*argv: str) -> tuple[int, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(["--url", live_server.url, "--token", token, *argv])
        return code, stdout.getvalue(), stderr.getvalue()

    return run


@pytest.fixture
def cluster():
    a = Hypervisor.objects.create(name="cli-a", uri="test:///default", state="online")
    Hypervisor.objects.create(name="cli-b", uri="test:///default?b", state="online")
    return Guest.objects.create(uuid=TEST_GUEST, name="test", hypervisor=a, power="running")


def test_lists_as_tables_and_as_json(kvmctl, cluster):
    code, out, _ = kvmctl("guests")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["id", "name", "hypervisor_name"]
    assert "test" in out and "cli-a" in out
    code, out, _ = kvmctl("hosts", "--json")
    assert code == 0 and {h["name"] for h in json.loads(out)} == {"cli-a", "cli-b"}
    assert all(h["uri"] is None for h in json.loads(out))  # operators do not see URIs


@pytest.mark.parametrize(
    "verb",
    [
        ["hosts"],
        ["storage"],
        ["guests"],
        ["guest", "test"],
        ["targets", "test"],
        ["migrations"],
        ["drain", "cli-a", "--dry-run"],
        ["proposals"],
        ["balancer-policy"],
        ["readiness"],
    ],
)
def test_every_read_verb_takes_json(kvmctl, cluster, verb):
    code, out, err = kvmctl(*verb, "--json")
    assert code == 0, err
    json.loads(out)


def test_a_refused_move_exits_1_with_the_failing_checks(kvmctl, cluster):
    code, out, err = kvmctl("migrate", "test", "--to", "cli-b", "--compress")
    assert code == 1 and out == ""
    assert "409" in err and "pre-flight refused the move" in err
    code, _, err = kvmctl("migrate", "test", "--to", "cli-b", "--compress", "--json")
    assert code == 1 and json.loads(err)["checks"]


def test_power_off_needs_yes_and_shutdown_reports_libvirts_state(kvmctl, cluster):
    assert kvmctl("power", "test", "destroy")[0] == 1
    code, out, err = kvmctl("power", "test", "shutdown")
    assert code == 0, err
    assert out.strip() == "test: libvirt reports shutoff"
    row = AuditEvent.objects.filter(action="guest.shutdown_requested").get()
    assert row.actor_username == "cli-op"
    assert kvmctl("power", "test", "start")[1].strip() == "test: libvirt reports running"  # as others expect it


def test_a_bad_token_or_no_server_is_a_clear_error(live_server, cluster):
    stderr = io.StringIO()
    with redirect_stderr(stderr), redirect_stdout(io.StringIO()):
        assert main(["--url", live_server.url, "--token", "nope", "guests"]) == 1
        assert main(["--url", "http://127.0.0.1:9", "--token", "x", "guests"]) == 1
    assert "401" in stderr.getvalue() and "cannot reach http://127.0.0.1:9" in stderr.getvalue()


def test_tokens_are_issued_listed_and_revoked_with_audit_rows():
    make_user("cli-admin", "admin", password=None)
    out = io.StringIO()
    call_command("api_token", "create", "cli-admin", stdout=out, stderr=io.StringIO())
    listing = io.StringIO()
    call_command("api_token", "list", stdout=listing)
    prefix = listing.getvalue().split()[0]
    assert listing.getvalue().rstrip().endswith("never used")
    with pytest.raises(CommandError, match="1..3650 days"):
        call_command("api_token", "create", "cli-admin", "--days", "0", stdout=io.StringIO(), stderr=io.StringIO())
    assert out.getvalue().strip().startswith(prefix) and out.getvalue().strip() not in listing.getvalue()
    call_command("api_token", "revoke", prefix, stdout=io.StringIO())
    assert [r.action for r in AuditEvent.objects.order_by("id")][-2:] == ["api_token.created", "api_token.revoked"]


def test_audit_lists_the_trail_through_the_api_with_filters(kvmctl, cluster):
    from accounts.audit import audit_record

    op = make_user("cli-other", "operator", password=None)
    audit_record(action="migration.failed", actor=op, guest="test", outcome="failed", message="no route\x1b[2J")
    audit_record(action="guest.start_requested", actor=op, guest="db01")
    code, out, err = kvmctl("audit", "--since", "1h")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["id", "created_at", "actor_username", "action"]
    assert lines[1].split()[3] == "guest.start_requested"  # newest first
    assert "\x1b" not in out and "no route?[2J" in out  # host-made text cannot drive the terminal
    code, out, _ = kvmctl("audit", "--user", "cli-other", "--outcome", "failed", "--json")
    assert code == 0 and [(r["action"], r["guest"]) for r in json.loads(out)] == [("migration.failed", "test")]
    assert json.loads(kvmctl("audit", "--guest", "db01", "--json")[1])[0]["action"] == "guest.start_requested"
    assert kvmctl("audit", "--since", "2000-01-01", "--until", "2000-01-02", "--json")[1].strip() == "[]"
    assert len(json.loads(kvmctl("audit", "--limit", "1", "--json")[1])) == 1
    code, _, err = kvmctl("audit", "--since", "last tuesday")
    assert code == 1 and "since" in err  # the API's form names the field


def test_audit_since_takes_durations_ago():
    import datetime as dt

    from kvmctl.cli import since_time

    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    assert since_time("90m", now) == "2026-12-02T08:30:00+00:00"
    assert since_time("2d", now) == "2026-11-30T10:00:00+00:00"
    assert since_time("2026-12-01T00:00", now) == "2026-12-01T00:00"


def test_readiness_prints_every_pair_with_each_answer(kvmctl, cluster):
    """libvirt's test driver's own guest has its disk on no storage server: neither pair shares storage."""
    code, out, err = kvmctl("readiness")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["from", "to", "verdict", "storage", "bridges", "cpu", "memory", "address", "tls"]
    assert lines[1].split()[:5] == ["cli-a", "cli-b", "not", "ready", "no"] and len(lines) == 3
    matrix = json.loads(kvmctl("readiness", "--json")[1])
    storage = next(c for c in matrix["pairs"][0]["cells"] if c["key"] == "storage")
    assert storage["answer"] == "no" and storage["evidence"].startswith("they share no storage server")


def test_drain_dry_run_prints_the_plan_and_moves_nothing(kvmctl, cluster):
    """libvirt's test driver's own guest has its disk on no storage server and cache='default': the plan
    lists it as blocked with the pre-flight's words and hints."""
    code, out, err = kvmctl("drain", "cli-a", "--dry-run")
    assert code == 0, err
    assert out.startswith("cli-a: no, because test:")
    assert "cannot move test:" in out and "not on both hosts" in out and "cache='default'" in out
    code, out, _ = kvmctl("drain", "cli-a", "--dry-run", "--json")
    plan = json.loads(out)
    assert plan["source"] == "cli-a" and plan["can_empty"] is False and plan["blocked"][0]["guest"] == "test"
    code, _, err = kvmctl("drain", "cli-a")
    assert code == 1 and "--dry-run" in err
    from migrations_app.models import MigrationJob

    assert not MigrationJob.objects.exists()


def test_balancer_proposals_are_listed_and_dismissed_from_the_command_line(kvmctl, cluster):
    from django.utils import timezone

    from migrations_app.models import BalancerProposal, BalancerRound

    now = timezone.now()
    a, b = Hypervisor.objects.get(name="cli-a"), Hypervisor.objects.get(name="cli-b")
    rnd = BalancerRound.objects.create(at=now, mode="recommend", imbalance=30.0)
    p = BalancerProposal.objects.create(
        round=rnd, guest=cluster, guest_name="test", source=a, target=b, imbalance_before=30.0,
        imbalance_after=10.0, why="cli-a has been above 80 % CPU for 5 min", created_at=now, updated_at=now,
    )  # fmt: skip
    code, out, _ = kvmctl("proposals", "--host", "cli-b")
    assert code == 0 and "move test from cli-a to cli-b: imbalance from 30.0 to 10.0" in out
    code, out, _ = kvmctl("dismiss", str(p.pk), "--json")
    assert code == 0 and json.loads(out)["state"] == "dismissed"
    code, _, err = kvmctl("dismiss", str(p.pk))
    assert code == 1 and "it can no longer be dismissed" in err
    code, out, _ = kvmctl("balancer-policy", "--json")
    assert code == 0 and json.loads(out)["mode"] == "off"
