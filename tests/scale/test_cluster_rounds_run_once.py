"""Two worker nodes, one inventory watcher and one reconciler at a time; kill the one holding a lease and the
other takes it over.

Each worker logs every lease it held with its times (`kvmcluster.leases`: "lease <name> held by <label>
from <t0> to <t1>", the times read after the lease was taken and before it was given up). If both workers
ran the watcher (its chunks chain themselves: each worker's start enqueues one per process) or the
reconciler (every process runs a pass at its start), holds by different workers would overlap.
"""

from __future__ import annotations

import time

import pytest

from tests.scale.two_workers import NAMES, overlapping

pytestmark = [pytest.mark.lab]

WATCHER, RECONCILER = "inventory-watcher", "reconciler"


def test_the_rounds_run_once_cluster_wide_and_a_killed_holder_is_replaced(all_workers):
    nodes = all_workers
    # Both workers' start-up passes, and a few watcher chunks (10 s each).
    nodes.wait(
        "the start-up passes and two watcher chunks logged",
        lambda: (
            {h[0] for h in nodes.lease_holds()} >= {RECONCILER}
            and len([h for h in nodes.lease_holds() if h[0] == WATCHER]) >= 2
        ),
        timeout=90,
    )
    holds = nodes.lease_holds()
    assert {h[0] for h in holds} >= {WATCHER, RECONCILER}, holds
    assert overlapping(holds) == [], "two workers held the same lease at the same time"

    holder = nodes.wait("the watcher's lease is held", lambda: nodes.lease_holders().get(WATCHER), timeout=60)
    victim = holder.split("/")[0]
    survivor = next(n for n in NAMES if n != victim)
    nodes.kill_worker(victim)
    taken = nodes.wait(
        f"{survivor} took the watcher's lease after {victim} was killed",
        lambda: (nodes.lease_holders().get(WATCHER) or "").startswith(f"{survivor}/"),
        timeout=150,
    )
    assert taken
    print(f"watcher lease: {victim} killed, {survivor} held it {time.time() - nodes.killed_at[victim]:.1f} s later")
    # The survivor's reconciler still runs its passes alone (the killed worker's never resume).
    nodes.wait(
        "the survivor ran a reconciler pass after the kill",
        lambda: any(
            h[0] == RECONCILER and h[1].startswith(f"{survivor}/") and h[2] > nodes.killed_at[victim]
            for h in nodes.lease_holds()
        ),
        timeout=90,
    )
    assert overlapping(nodes.lease_holds()) == []
