"""The drain plan for a host, decided on synthetic clusters: placement, blockers, order, limits, verdict."""

import random

from migrations_app.planning.drain import DrainPolicy, GuestFacts, TargetFacts, plan_drain
from migrations_app.planning.targets import Candidate, rank_targets


def running(i, name, mib=1024, used=None, dirty=0.0, **kw):
    return GuestFacts(i, name, "running", mib, used if used is not None else mib / 4, dirty, **kw)


def test_the_labs_hv_a_two_live_moves_and_one_offline_with_predictions():
    guests = [
        running(1, "lab-g1", 256, 150, dirty=8),
        running(2, "lab-g2", 256, 16),
        GuestFacts(3, "lab-g3", "shutoff", 256, 0),
    ]
    plan = plan_drain("hv-a", guests, [TargetFacts(2, "hv-b", memory_free_mib=4096, link_mibps=112)])
    modes = {m.guest.name: m.mode for m in plan.moves}
    assert modes == {"lab-g1": "live", "lab-g2": "live", "lab-g3": "offline"}
    assert all(m.prediction.converges and m.target.name == "hv-b" for m in plan.moves)
    assert plan.can_empty and plan.verdict().startswith("yes, after about 1 minute")
    # shortest predicted first: the offline move, then the idle guest, then the busy one
    assert [m.guest.name for m in plan.moves] == ["lab-g3", "lab-g2", "lab-g1"]


def test_a_running_guest_whose_disk_cannot_move_live_is_blocked_with_its_fix():
    guest = running(1, "db01", live_blockers=("disk vda has cache=writeback: shut it down to move it offline",))
    plan = plan_drain("hv-a", [guest], [TargetFacts(2, "hv-b", 65536)])
    assert not plan.moves and plan.blocked[0].reasons[0].startswith("disk vda has cache=writeback")
    assert plan.verdict().startswith("no, because db01: disk vda has cache=writeback")


def test_the_same_disk_does_not_stop_an_offline_move_of_a_shut_off_guest():
    guest = GuestFacts(1, "db01", "shutoff", 1024, 0, live_blockers=("disk vda has cache=writeback",))
    assert plan_drain("hv-a", [guest], [TargetFacts(2, "hv-b", 65536)]).moves[0].mode == "offline"


def test_two_guests_never_count_the_same_free_memory():
    """hv-b has room for one 3 GiB guest, not two: the second is blocked, not overbooked."""
    guests = [running(1, "big1", 3072), running(2, "big2", 3072)]
    plan = plan_drain("hv-a", guests, [TargetFacts(2, "hv-b", memory_free_mib=4096)])
    assert [m.guest.name for m in plan.moves] == ["big1"]
    assert plan.blocked[0].guest.name == "big2"
    assert "no target has 3072 MiB free" in plan.blocked[0].reasons[0]


def test_memory_of_moves_already_in_flight_counts():
    plan = plan_drain("hv-a", [running(1, "g", 2048)], [TargetFacts(2, "hv-b", 4096, committed_mib=3000)])
    assert plan.blocked and not plan.moves


def test_a_host_in_maintenance_takes_nothing():
    targets = [TargetFacts(2, "hv-b", 65536, in_maintenance=True), TargetFacts(3, "hv-c", 8192)]
    plan = plan_drain("hv-a", [running(i, f"g{i}", 1024) for i in range(4)], targets)
    assert {m.target.name for m in plan.moves} == {"hv-c"}
    only_maintenance = plan_drain("hv-a", [running(1, "g1")], targets[:1])
    assert only_maintenance.blocked[0].reasons == ("no other host is open: every one is in maintenance",)


def test_a_guest_predicted_not_to_converge_is_blocked_with_the_hint():
    plan = plan_drain("hv-a", [running(1, "hot", 1024, 800, dirty=40)], [TargetFacts(2, "hv-b", 8192, link_mibps=16)])
    assert not plan.moves
    assert "will not converge" in plan.blocked[0].reasons[0] and "auto-converge" in plan.blocked[0].reasons[0]
    allowed = plan_drain(
        "hv-a",
        [running(1, "hot", 1024, 800, dirty=40)],
        [TargetFacts(2, "hv-b", 8192, link_mibps=16)],
        DrainPolicy(allow_postcopy=True),
    )
    assert allowed.moves[0].prediction.via == "post-copy"


def test_pre_flight_refusals_of_one_pair_send_the_guest_elsewhere():
    targets = [TargetFacts(2, "hv-b", 65536), TargetFacts(3, "hv-c", 4096)]
    plan = plan_drain("hv-a", [running(1, "web")], targets, refusals={(1, 2): "bridge br1 missing"})
    assert plan.moves[0].target.name == "hv-c"
    plan = plan_drain("hv-a", [running(1, "web")], targets, refusals={(1, 2): "bridge br1 missing", (1, 3): "cpu"})
    assert plan.blocked[0].reasons == ("hv-b: bridge br1 missing", "hv-c: cpu")


def test_paused_guests_follow_the_policy():
    paused = GuestFacts(1, "p", "paused", 512, 100)
    targets = [TargetFacts(2, "hv-b", 8192)]
    assert plan_drain("hv-a", [paused], targets).moves[0].mode == "live"
    assert plan_drain("hv-a", [paused], targets, DrainPolicy(paused="offline")).moves[0].mode == "offline"
    skipped = plan_drain("hv-a", [paused], targets, DrainPolicy(paused="skip"))
    assert not skipped.moves and not skipped.can_empty and "paused" in skipped.verdict()


def test_moves_run_in_parallel_within_the_per_host_limit():
    guests = [running(i, f"g{i:02}", 512, 256) for i in range(10)]
    targets = [TargetFacts(2, "hv-b", 65536, link_mibps=100), TargetFacts(3, "hv-c", 65536, link_mibps=100)]
    serial = plan_drain("hv-a", guests, targets, DrainPolicy(per_host_limit=1))
    parallel = plan_drain("hv-a", guests, targets, DrainPolicy(per_host_limit=2))
    assert serial.max_parallel == 1 and parallel.max_parallel == 2
    assert parallel.total_s < serial.total_s * 0.6
    assert [m.position for m in parallel.moves] == list(range(1, 11))
    starts = [m.start_s for m in parallel.moves]
    assert starts == sorted(starts)  # the plan's order is the order of starting


def test_an_empty_host_can_go_down_now():
    plan = plan_drain("hv-a", [], [TargetFacts(2, "hv-b", 1024)])
    assert plan.can_empty and plan.verdict() == "yes: no guest is on it" and plan.total_s == 0


def test_a_thousand_guests_on_a_synthetic_cluster_never_overbook_any_target():
    rng = random.Random(7)
    guests = [
        running(i, f"g{i:04}", rng.choice([512, 1024, 2048, 4096]), dirty=rng.uniform(0, 30)) for i in range(1000)
    ]
    targets = [TargetFacts(100 + h, f"hv-{h:02}", rng.randint(10_000, 200_000), link_mibps=112) for h in range(20)]
    plan = plan_drain("hv-src", guests, targets, DrainPolicy(per_host_limit=3))
    used: dict[int, int] = {}
    for m in plan.moves:
        used[m.target.host_id] = used.get(m.target.host_id, 0) + m.guest.memory_mib
    assert all(used[t.host_id] <= t.memory_free_mib for t in targets if t.host_id in used)
    assert len(plan.moves) + len(plan.blocked) == 1000
    assert plan.max_parallel <= 3
    assert {b.guest.guest_id for b in plan.blocked}.isdisjoint({m.guest.guest_id for m in plan.moves})


def test_ranking_says_why_the_best_target_is_best():
    ranked = rank_targets(
        [
            Candidate(2, "hv-b", "ready", 60_000, cpu_load=0.10, incoming=0, predicted_s=3.0),
            Candidate(3, "hv-c", "ready", 20_000, cpu_load=0.80, incoming=2, predicted_s=5.0),
            Candidate(4, "hv-d", "blocked", 90_000),
        ],
        guest_mib=2048,
    )
    assert [r.name for r in ranked] == ["hv-b", "hv-c", "hv-d"]
    assert ranked[0].label() == (
        "hv-b — most free memory (56.6 GiB after the move), least busy CPU (10 %), idle link, fastest move (≈ 3.0 s)"
    )
    assert ranked[2].blocked == "the pre-flight blocks it"


def test_ranking_puts_a_host_short_of_memory_last_with_the_shortfall():
    ranked = rank_targets([Candidate(2, "hv-b", "ready", 1000), Candidate(3, "hv-c", "ready", 4000)], guest_mib=2000)
    assert ranked[0].name == "hv-c" and ranked[1].blocked == "1000 MiB short of memory"
