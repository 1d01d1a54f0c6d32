"""The balancer round on libvirt test-driver hosts with synthetic measured load in the database: a host hot
for the hold duration gets a proposal that says "imbalance from X to Y"; nothing before the hold, nothing
toward a host in maintenance, never a guest moved back within its cooldown; Apply makes a guest migration
with its audit rows, Dismiss is audited; automatic mode runs the round's moves as one Operation under the
system actor "balancer". (The worker is replaced by a list of enqueued job ids.)"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from hosts.models import Guest, GuestLoadSample, HostLoadSample, Hypervisor
from hosts.services import inventory, placement
from migrations_app import services
from migrations_app.models import (
    BalancerPolicy,
    BalancerProposal,
    GuestAffinity,
    GuestNeverMove,
    MigrationJob,
    Operation,
)
from migrations_app.orchestrator import facts
from migrations_app.services import balancer_actions
from migrations_app.services.balancer import balancer_round
from tests.factories import make_user
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db(transaction=True)  # jobs and operations advance on commit


def load(host, guests, now, *, cpu, seconds, guest_cores=None, memory_used=2048, start=0):
    """Raw 10 s rows for `host` (CPU `cpu` %) from `seconds` ago to now; its guests' rows over the last minute."""
    rows = [
        HostLoadSample(
            hypervisor=host,
            at=now - timedelta(seconds=s),
            resolution_s=10,
            cpu_pct=cpu,
            memory_used_mib=memory_used,
            memory_total_mib=16384,
        )
        for s in range(start, seconds, 10)
    ]
    HostLoadSample.objects.bulk_create(rows)
    GuestLoadSample.objects.bulk_create(
        GuestLoadSample(guest=g, at=now - timedelta(seconds=s), resolution_s=10, cpu_cores=c, cpu_pct_of_vcpus=50.0)
        for g, c in zip(guests, guest_cores or [], strict=False)
        for s in range(0, 60, 10)
    )


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """bal-a runs four busy guests (8 cores, 90 % CPU); bal-b and bal-c are quiet. Recommend mode, hold 60 s."""
    enqueued: list[int] = []
    monkeypatch.setattr(services.admission, "_enqueue", enqueued.append)
    # libvirt's test driver reports no free memory; every other pre-flight check runs as it would
    real_host_info = facts.driver.host_info
    monkeypatch.setattr(
        facts.driver, "host_info", lambda uri, **kw: replace(real_host_info(uri, **kw), memory_free_mib=12288)
    )
    names = {"bal-a": ["hot1", "hot2", "hot3", "hot4"], "bal-b": ["cool1"], "bal-c": []}
    hosts = {}
    for host, guests in names.items():
        uri = write_node(tmp_path / f"{host}.xml", [NodeDomain(n, vcpus=2, memory_mib=512) for n in guests], cpus=8)
        hosts[host] = Hypervisor.objects.create(name=host, uri=uri)
    inventory.refresh_all()
    Hypervisor.objects.update(memory_free_mib=12288)
    BalancerPolicy.objects.update_or_create(
        pk=1,
        defaults=dict(mode="recommend", hold_s=60, cooldown_s=1800, margin_pct=5.0, max_moves_per_round=1),
    )
    now = timezone.now()
    guests = {g.name: g for g in Guest.objects.all()}
    hot = [guests[n] for n in names["bal-a"]]
    return {
        "now": now,
        "hosts": {k: Hypervisor.objects.get(pk=v.pk) for k, v in hosts.items()},
        "guests": guests,
        "hot": hot,
        "enqueued": enqueued,
        "operator": make_user("bal-op", "operator", password=None),
    }


def heat(c, *, seconds=120, b_cpu=20.0, c_cpu=10.0):
    """bal-a at 90 % for `seconds`; hot1 uses 2.4 cores (30 % of bal-a), the others 1.8 each."""
    now, h = c["now"], c["hosts"]
    load(h["bal-a"], c["hot"], now, cpu=90.0, seconds=seconds, guest_cores=[2.4, 1.8, 1.8, 1.8])
    if seconds < 120:
        load(h["bal-a"], [], now, cpu=40.0, seconds=120, start=seconds)
    load(h["bal-b"], [c["guests"]["cool1"]], now, cpu=b_cpu, seconds=120, guest_cores=[0.5])
    load(h["bal-c"], [], now, cpu=c_cpu, seconds=120)


def test_a_host_hot_for_the_hold_gets_a_proposal_that_says_how_the_imbalance_changes(cluster):
    heat(cluster)
    rnd = balancer_round(now=cluster["now"])
    assert rnd.proposals == 1, rnd.notes
    p = BalancerProposal.objects.get()
    assert (p.source.name, p.target.name, p.state) == ("bal-a", "bal-c", "proposed")
    assert p.guest_name == "hot1"  # the biggest step toward even: 30 points off the hottest host
    # hosts at 90, 20, 10 % -> 60, 20, 40 %: hot1's 2.4 cores are 30 points of bal-a's 8 (docs/balancing.md)
    assert (p.imbalance_before, p.imbalance_after) == (35.59, 16.33)
    assert p.headline.startswith(f"move hot1 from bal-a to bal-c: imbalance from {p.imbalance_before:.1f} to")
    assert "bal-a has been above 80 % CPU for 100 s" in p.why and "moves in ≈" in p.why
    assert rnd.hot == ["bal-a"] and rnd.proposals == 1


def test_nothing_is_proposed_before_the_hold(cluster):
    BalancerPolicy.objects.update(hold_s=120)
    heat(cluster, seconds=60)  # above the mark for the last minute of a two-minute hold
    rnd = balancer_round(now=cluster["now"])
    assert not BalancerProposal.objects.exists()
    assert "bal-a above the mark for less than the hold time" in rnd.notes


def test_nothing_moves_toward_a_host_in_maintenance(cluster):
    heat(cluster)
    placement.set_maintenance(cluster["hosts"]["bal-c"].pk, True)
    balancer_round(now=cluster["now"])
    assert list(BalancerProposal.objects.values_list("target__name", flat=True)) == ["bal-b"]


def test_a_move_is_proposed_only_if_it_narrows_the_gap_by_more_than_the_margin(cluster):
    heat(cluster)
    BalancerPolicy.objects.update(margin_pct=60.0)  # hot1 off bal-a narrows the bal-a/bal-c gap by 60 points
    rnd = balancer_round(now=cluster["now"])
    assert not BalancerProposal.objects.exists()
    assert "no move narrows a gap between two hosts by more than 60 points" in rnd.notes
    BalancerPolicy.objects.update(margin_pct=59.0)
    balancer_round(now=cluster["now"])
    assert BalancerProposal.objects.get().guest_name == "hot1"


def test_a_guest_the_balancer_moved_is_not_moved_back_within_its_cooldown(cluster):
    heat(cluster)
    hot1, a, b = cluster["guests"]["hot1"], cluster["hosts"]["bal-a"], cluster["hosts"]["bal-b"]
    earlier = balancer_round(now=cluster["now"] - timedelta(hours=2))  # a round that moved hot1 to bal-a
    moved = BalancerProposal.objects.create(
        round=earlier, guest=hot1, guest_name="hot1", source=b, target=a, state="applied", imbalance_before=30,
        imbalance_after=20, why="earlier", created_at=cluster["now"] - timedelta(minutes=10),
        updated_at=cluster["now"], decided_at=cluster["now"] - timedelta(minutes=10),
    )  # fmt: skip
    balancer_round(now=cluster["now"])
    proposed = BalancerProposal.objects.get(state="proposed")
    assert proposed.guest_name != "hot1"  # the best single step, but it came here 10 min ago (cooldown 30 min)
    BalancerProposal.objects.filter(pk=moved.pk).update(decided_at=cluster["now"] - timedelta(minutes=31))
    balancer_round(now=cluster["now"])
    assert BalancerProposal.objects.get(state="proposed").guest_name == "hot1"


def test_a_proposal_no_longer_made_expires_at_the_next_round(cluster):
    heat(cluster)
    balancer_round(now=cluster["now"])
    first = BalancerProposal.objects.get()
    balancer_round(now=cluster["now"])  # made again: the same row, refreshed
    assert list(BalancerProposal.objects.values_list("pk", "state")) == [(first.pk, "proposed")]
    HostLoadSample.objects.filter(hypervisor=cluster["hosts"]["bal-a"]).update(cpu_pct=50.0)
    balancer_round(now=cluster["now"])
    first.refresh_from_db()
    assert first.state == "expired"


def test_apply_starts_a_guest_migration_with_its_audit_rows(cluster):
    heat(cluster)
    balancer_round(now=cluster["now"])
    proposal = BalancerProposal.objects.get()
    job = balancer_actions.proposal_apply(proposal=proposal, actor=cluster["operator"], source_ip="127.0.0.5")
    assert (job.guest_name, job.source.name, job.target.name, job.kind) == ("hot1", "bal-a", "bal-c", "live")
    assert job.requested_by == cluster["operator"] and job.state in ("pending", "queued")
    proposal.refresh_from_db()
    assert (proposal.state, proposal.job_id, proposal.decided_by) == ("applied", job.pk, cluster["operator"])
    row = AuditEvent.objects.get(action="balancer.proposal_applied")
    assert (row.actor_username, row.migration_id, row.outcome) == ("bal-op", job.pk, "ok")
    assert row.message.startswith("move hot1 from bal-a to bal-c: imbalance from")
    assert AuditEvent.objects.filter(action="migration.requested", migration_id=job.pk, outcome="ok").exists()
    with pytest.raises(services.MigrationError, match="is applied: there is nothing to apply"):
        balancer_actions.proposal_apply(proposal=proposal, actor=cluster["operator"])


def test_dismiss_is_audited_and_the_pair_is_not_proposed_again_within_the_cooldown(cluster):
    heat(cluster)
    balancer_round(now=cluster["now"])
    proposal = BalancerProposal.objects.get()
    balancer_actions.proposal_dismiss(proposal=proposal, actor=cluster["operator"], source_ip="127.0.0.5")
    proposal.refresh_from_db()
    assert proposal.state == "dismissed" and proposal.decided_by == cluster["operator"]
    row = AuditEvent.objects.get(action="balancer.proposal_dismissed", outcome="ok")
    assert row.actor_username == "bal-op" and row.guest == "hot1" and row.target_hypervisor == "bal-c"
    balancer_round(now=cluster["now"] + timedelta(seconds=1))
    again = BalancerProposal.objects.get(state="proposed")
    assert (again.guest_name, again.target.name) != ("hot1", "bal-c")
    assert not MigrationJob.objects.exists()


def test_never_move_and_keep_together_guests_are_left_alone(cluster):
    heat(cluster)
    GuestNeverMove.objects.create(guest=cluster["guests"]["hot1"])
    GuestAffinity.objects.create(kind="together").guests.set([cluster["guests"]["hot2"], cluster["guests"]["hot3"]])
    balancer_round(now=cluster["now"])
    assert BalancerProposal.objects.get().guest_name == "hot4"


def test_automatic_mode_runs_the_rounds_moves_as_one_operation_under_the_actor_balancer(cluster):
    heat(cluster)
    BalancerPolicy.objects.update(mode="automatic", max_moves_per_round=2)
    rnd = balancer_round(now=cluster["now"])
    op = Operation.objects.get()
    assert (op.kind, op.requested_by.username, rnd.operation_id) == ("balance", "balancer", op.pk)
    assert op.requested_by.has_perm("accounts.run_migrations") and not op.requested_by.has_usable_password()
    assert [m["guest"] for m in op.plan["moves"]] == ["hot1", "hot2"]
    assert set(BalancerProposal.objects.values_list("state", "operation_id")) == {("applied", op.pk)}
    jobs = list(op.jobs.all())
    assert jobs and all(j.requested_by.username == "balancer" for j in jobs)
    started = AuditEvent.objects.get(action="balancer.operation_started")
    assert started.actor_username == "balancer" and started.message.startswith("imbalance from")
    assert AuditEvent.objects.filter(action="migration.requested", actor_username="balancer").count() == len(jobs)
    page = Client()
    page.force_login(cluster["operator"])
    html = page.get(reverse("operation-detail", args=[op.pk])).content.decode()
    assert "Balancing: 2 moves, imbalance from 35.6 to" in html and "move hot1 from bal-a to bal-c" in html
    # the next round waits while this operation runs
    later = balancer_round(now=cluster["now"] + timedelta(minutes=1))
    assert Operation.objects.count() == 1 and f"balance operation #{op.pk} is still running" in later.notes[0]


def test_host_load_from_guests_sums_the_guests_measured_cpu_on_each_host(cluster):
    """Hosts sharing one kernel (the lab) all measure the machine's CPU: 50 % each here. From the guests' rows
    bal-a is at 100 % (four guests of 2 cores on 8), bal-b at 5 % (0.4 cores), bal-c at 0."""
    now, h, g = cluster["now"], cluster["hosts"], cluster["guests"]
    for host in h.values():
        load(host, [], now, cpu=50.0, seconds=120)
    GuestLoadSample.objects.bulk_create(
        GuestLoadSample(guest=guest, at=now - timedelta(seconds=s), resolution_s=10, cpu_cores=cores)
        for guest, cores in [*((x, 2.0) for x in cluster["hot"]), (g["cool1"], 0.4)]
        for s in range(0, 120, 10)
    )
    rnd = balancer_round(now=now)
    assert rnd.proposals == 0 and "no host above the marks" in rnd.notes  # libvirt's node counters: all even
    BalancerPolicy.objects.update(host_load_from="guests")
    rnd = balancer_round(now=now + timedelta(seconds=1))
    assert rnd.hot == ["bal-a"], rnd.notes
    p = BalancerProposal.objects.get(state="proposed")
    # 100, 5, 0 % -> 75, 5, 25 %: hot1's 2 cores are 25 points of bal-a's 8
    assert (p.guest_name, p.source.name, p.target.name) == ("hot1", "bal-a", "bal-c")
    assert (p.imbalance_before, p.imbalance_after) == (46.01, 29.44)
    assert "bal-a has been above 80 % CPU for 90 s" in p.why


@pytest.mark.parametrize("load_from", ["host", "guests"])
def test_the_rounds_queries_do_not_grow_with_the_guests(cluster, load_from):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    BalancerPolicy.objects.update(host_load_from=load_from)
    heat(cluster)
    balancer_round(now=cluster["now"])  # the first round also creates its lease row
    BalancerProposal.objects.all().delete()
    with CaptureQueriesContext(connection) as few:
        balancer_round(now=cluster["now"])
    BalancerProposal.objects.all().delete()
    more = [
        Guest.objects.create(uuid=uuid.uuid4(), name=f"extra{i}", hypervisor=cluster["hosts"]["bal-b"], power="running")
        for i in range(40)
    ]
    load(cluster["hosts"]["bal-b"], more, cluster["now"], cpu=20.0, seconds=0, guest_cores=[0.1] * 40)
    with CaptureQueriesContext(connection) as many:
        balancer_round(now=cluster["now"])
    assert BalancerProposal.objects.get().guest_name == "hot1"
    assert len(many) == len(few), [q["sql"][:80] for q in many.captured_queries]


def test_a_round_runs_once_cluster_wide_while_another_worker_holds_its_lease(cluster):
    from hosts.services.watcher import release_lease, take_lease
    from migrations_app.models import BalancerRound
    from migrations_app.services.balancer import LEASE_NAME

    heat(cluster)
    assert take_lease(LEASE_NAME, "other-host:1:abcd", timedelta(minutes=5))
    assert balancer_round(now=cluster["now"]) is None
    assert not BalancerRound.objects.exists() and not BalancerProposal.objects.exists()
    release_lease(LEASE_NAME, "other-host:1:abcd")
    assert balancer_round(now=cluster["now"]) is not None and BalancerProposal.objects.count() == 1
