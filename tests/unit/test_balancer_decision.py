"""The balancer's decision on synthetic clusters: relieves a host that stayed hot, without flapping."""

import random

import pytest

from migrations_app.planning.balance import BalancePolicy, GuestLoad, HostLoad, decide, imbalance

POLICY = BalancePolicy(cpu_high_pct=80, hold_s=300, margin_pct=5, max_moves=2, cooldown_s=1800)


def host(i, name, cpu, hot_for=0.0, cores=4, total=16384, used=4096, **kw):
    return HostLoad(i, name, cores, cpu, total, used, hot_for, **kw)


def lab_like(hot_for=600.0):
    """hv-a burns two guests (each ~1.8 of its 2 cores... here 4 cores) and hv-b is idle."""
    hosts = [host(1, "hv-a", 95, hot_for), host(2, "hv-b", 5)]
    guests = [
        GuestLoad(11, "burn1", 1, 1.8, 512, predicted_s=3),
        GuestLoad(12, "burn2", 1, 1.8, 512, predicted_s=2),
        GuestLoad(13, "idle", 1, 0.1, 512, predicted_s=1),
    ]
    return hosts, guests


def test_a_host_that_stayed_hot_gets_one_burning_guest_moved_with_the_expected_change():
    hosts, guests = lab_like()
    result = decide(hosts, guests, POLICY)
    assert len(result.proposals) == 1  # a second move would not improve by more than the margin
    p = result.proposals[0]
    assert (p.source.name, p.target.name) == ("hv-a", "hv-b")
    assert p.guest.name == "burn2"  # both relieve as much; the faster move wins
    assert p.imbalance_before == pytest.approx(45.0)
    assert p.imbalance_after == pytest.approx(0.0)
    assert p.headline() == "move burn2 from hv-a to hv-b: imbalance from 45.0 to 0.0"
    assert "hv-a has been above 80 % CPU for 10 min" in p.why


def test_nothing_is_proposed_before_the_hold_duration():
    hosts, guests = lab_like(hot_for=120)
    result = decide(hosts, guests, POLICY)
    assert not result.proposals and "less than the hold time" in result.notes[0]


def test_a_balanced_cluster_stays_as_it_is():
    result = decide([host(1, "hv-a", 40), host(2, "hv-b", 45)], [GuestLoad(1, "g", 1, 1.0, 512)], POLICY)
    assert not result.proposals and result.notes == ("no host above the marks",)


def test_nothing_moves_toward_a_host_in_maintenance():
    hosts, guests = lab_like()
    hosts[1] = host(2, "hv-b", 5, in_maintenance=True)
    assert not decide(hosts, guests, POLICY).proposals


def test_a_guest_in_its_cooldown_is_not_moved_again_so_no_ping_pong():
    hosts, guests = lab_like()
    cooling = [
        GuestLoad(g.guest_id, g.name, g.host_id, g.cpu_cores, g.memory_mib, g.predicted_s, False, 60.0) for g in guests
    ]
    assert not decide(hosts, cooling, POLICY).proposals


def test_a_move_back_right_after_a_move_is_never_proposed():
    """After burn2 went to hv-b, the cluster is balanced: the next round proposes nothing, including
    moving it back, however many rounds run."""
    hosts, guests = lab_like()
    first = decide(hosts, guests, POLICY).proposals[0]
    after_hosts = [host(1, "hv-a", 50, 0), host(2, "hv-b", 50, 0)]
    after_guests = [
        g if g.guest_id != first.guest.guest_id else GuestLoad(12, "burn2", 2, 1.8, 512, 2, False, 0.0) for g in guests
    ]
    for _ in range(5):
        assert not decide(after_hosts, after_guests, POLICY).proposals


def test_never_move_automatically_and_keep_together_are_honoured():
    hosts, guests = lab_like()
    pinned = [GuestLoad(g.guest_id, g.name, g.host_id, g.cpu_cores, g.memory_mib, g.predicted_s, True) for g in guests]
    assert not decide(hosts, pinned, POLICY).proposals
    together = BalancePolicy(**{**POLICY.__dict__, "keep_together": (frozenset({11, 12}),)})
    assert not decide(hosts, guests, together).proposals


def test_guests_that_must_stay_apart_never_meet():
    hosts = [host(1, "hv-a", 95, 600), host(2, "hv-b", 5), host(3, "hv-c", 30)]
    guests = [GuestLoad(11, "db1", 1, 1.8, 512), GuestLoad(21, "db2", 2, 0.1, 512), GuestLoad(12, "web", 1, 1.7, 512)]
    apart = BalancePolicy(**{**POLICY.__dict__, "keep_apart": (frozenset({11, 21}),), "max_moves": 3})
    for p in decide(hosts, guests, apart).proposals:
        assert not (p.guest.name == "db1" and p.target.name == "hv-b")


def test_a_move_never_overfills_the_target():
    hosts = [host(1, "hv-a", 95, 600), host(2, "hv-b", 5, total=4096, used=3900)]
    result = decide(hosts, [GuestLoad(11, "burn", 1, 1.8, 512)], POLICY)
    assert not result.proposals  # hv-b would go above 90 % memory


def test_a_large_synthetic_cluster_never_exceeds_a_targets_memory_and_stops_when_balanced():
    rng = random.Random(3)
    hosts = [
        host(i, f"hv-{i:03}", rng.uniform(10, 70), cores=32, total=262144, used=rng.randint(60000, 200000))
        for i in range(100)
    ]
    for i in range(10):
        hosts[i] = host(i, f"hv-{i:03}", 95, 900, cores=32, total=262144, used=150000)
    guests = [
        GuestLoad(g, f"g{g:05}", g % 100, rng.uniform(0.1, 4.0), rng.choice([1024, 2048, 8192]), rng.uniform(1, 30))
        for g in range(5000)
    ]
    policy = BalancePolicy(max_moves=5)
    result = decide(hosts, guests, policy)
    assert result.proposals
    mem = {h.host_id: h.memory_used_mib for h in hosts}
    for p in result.proposals:
        mem[p.target.host_id] += p.guest.memory_mib
        mem[p.source.host_id] -= p.guest.memory_mib
        assert p.imbalance_after < p.imbalance_before
        gap_before = abs(p.source.cpu_pct - p.target.cpu_pct)
        assert gap_before > policy.margin_pct
    assert all(
        100 * mem[h.host_id] / h.memory_total_mib <= 90
        for h in hosts
        if h.host_id in {p.target.host_id for p in result.proposals}
    )
    assert result.proposals[-1].imbalance_after < result.imbalance
    assert len({p.guest.guest_id for p in result.proposals}) == len(result.proposals)


def test_imbalance_is_the_spread_of_host_cpu_load():
    assert imbalance([50, 50, 50]) == 0
    assert imbalance([90, 10]) == pytest.approx(40)
