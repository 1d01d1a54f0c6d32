"""decide() looks only at the least busy fitting target of each host size; on random clusters it must
choose exactly what trying every (guest, target) pair chooses (the reference below is that brute force)."""

from __future__ import annotations

import random

import pytest

from migrations_app.planning import balance
from migrations_app.planning.balance import BalancePolicy, GuestLoad, HostLoad, decide


def brute_force(hosts, guests, policy):
    """The same decision trying every target for every guest (decide()'s first version)."""
    open_hosts = {h.host_id: h for h in hosts if not h.in_maintenance}
    cpu = {h.host_id: h.cpu_pct for h in open_hosts.values()}
    mem = {h.host_id: h.memory_used_mib for h in open_hosts.values()}
    hot = [h for h in open_hosts.values() if balance._above_mark(h, policy) and h.hot_for_s >= policy.hold_s]
    together = set().union(*policy.keep_together) if policy.keep_together else set()
    apart_of: dict = {}
    for group in policy.keep_apart:
        for guest_id in group:
            apart_of.setdefault(guest_id, []).append(group)
    placement = {g.guest_id: g.host_id for g in guests}
    movable = [g for g in guests if g.host_id in open_hosts and not g.never_auto and g.guest_id not in together
               and (g.moved_by_balancer_s_ago is None or g.moved_by_balancer_s_ago >= policy.cooldown_s)]  # fmt: skip
    n = len(cpu)
    total, squares = sum(cpu.values()), sum(v * v for v in cpu.values())
    chosen, moved, hot_ids = [], set(), {h.host_id for h in hot}
    for _ in range(policy.max_moves):
        current = balance._deviation(total, squares, n)
        best = None
        for g in movable:
            if g.guest_id in moved or placement[g.guest_id] not in hot_ids:
                continue
            source = open_hosts[placement[g.guest_id]]
            s_load = cpu[source.host_id]
            s_new = s_load - 100.0 * g.cpu_cores / source.cores
            for t in open_hosts.values():
                if t.host_id == source.host_id or not balance._fits(g, t, cpu, mem, policy):
                    continue
                if (
                    balance._breaks_apart(g, t.host_id, placement, apart_of)
                    or (g.guest_id, t.host_id) in policy.refused
                ):
                    continue
                t_load, t_new = cpu[t.host_id], cpu[t.host_id] + 100.0 * g.cpu_cores / t.cores
                after = balance._deviation(
                    total - s_load - t_load + s_new + t_new, squares - s_load**2 - t_load**2 + s_new**2 + t_new**2, n
                )
                if after >= current or abs(s_load - t_load) - abs(s_new - t_new) <= policy.margin_pct:
                    continue
                key = (round(after, 6), g.predicted_s, g.name, t.name)
                if best is None or key < best[0]:
                    best = (key, g, t)
        if best is None:
            break
        _, g, t = best
        source = open_hosts[placement[g.guest_id]]
        chosen.append((g.name, source.name, t.name))
        s_old, t_old = cpu[source.host_id], cpu[t.host_id]
        cpu[source.host_id] = s_old - 100.0 * g.cpu_cores / source.cores
        cpu[t.host_id] = t_old + 100.0 * g.cpu_cores / t.cores
        total += cpu[source.host_id] + cpu[t.host_id] - s_old - t_old
        squares += cpu[source.host_id] ** 2 + cpu[t.host_id] ** 2 - s_old**2 - t_old**2
        mem[source.host_id] -= g.memory_mib
        mem[t.host_id] += g.memory_mib
        placement[g.guest_id] = t.host_id
        moved.add(g.guest_id)
    return chosen


@pytest.mark.parametrize("seed", range(40))
def test_decide_chooses_what_trying_every_target_chooses(seed):
    rng = random.Random(seed)
    n_hosts = rng.randint(2, 30)
    hosts = [
        HostLoad(
            i, f"hv-{i:02}", rng.choice([8, 16, 32]), rng.uniform(5, 99), 65536, rng.randint(10000, 62000),
            hot_for_s=rng.choice([0, 600]), in_maintenance=rng.random() < 0.1,
        )
        for i in range(n_hosts)
    ]  # fmt: skip
    guests = [
        GuestLoad(g, f"g{g:04}", rng.randrange(n_hosts), rng.uniform(0.05, 4.0), rng.choice([512, 2048, 8192]),
                  rng.uniform(1, 20), never_auto=rng.random() < 0.05)
        for g in range(rng.randint(1, 400))
    ]  # fmt: skip
    ids = [g.guest_id for g in guests]
    policy = BalancePolicy(
        margin_pct=rng.choice([0.0, 2.0, 5.0, 20.0]),
        max_moves=rng.randint(1, 6),
        keep_apart=tuple(frozenset(rng.sample(ids, 2)) for _ in range(3)) if len(ids) > 2 else (),
        refused=frozenset((rng.choice(ids), rng.randrange(n_hosts)) for _ in range(20)),
    )
    got = [(p.guest.name, p.source.name, p.target.name) for p in decide(hosts, guests, policy).proposals]
    assert got == brute_force(hosts, guests, policy)


def test_a_refused_pair_is_never_proposed_and_the_next_best_target_is():
    hosts = [
        HostLoad(1, "hv-a", 8, 90.0, 16384, 2048, hot_for_s=600),
        HostLoad(2, "hv-b", 8, 30.0, 16384, 2048),
        HostLoad(3, "hv-c", 8, 10.0, 16384, 2048),
    ]
    guests = [GuestLoad(7, "hot", 1, 2.4, 512)]
    assert [p.target.name for p in decide(hosts, guests, BalancePolicy(max_moves=1)).proposals] == ["hv-c"]
    refused = BalancePolicy(max_moves=1, refused=frozenset({(7, 3)}))
    assert [p.target.name for p in decide(hosts, guests, refused).proposals] == ["hv-b"]
