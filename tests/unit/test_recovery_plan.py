"""A failed host's HA guests: priority order, best target by free memory, within capacity, shared storage."""

from migrations_app.planning.recovery import RecoveryGuest, RecoveryHost, recovery_plan

NFS = frozenset({"nfs1"})


def test_higher_priority_first_each_on_the_host_with_most_memory_left():
    guests = [
        RecoveryGuest(1, "low", 0, 4096, NFS),
        RecoveryGuest(2, "high", 10, 4096, NFS),
        RecoveryGuest(3, "mid", 5, 4096, NFS),
    ]
    hosts = [RecoveryHost(10, "hv-b", 8000, NFS), RecoveryHost(11, "hv-c", 6000, NFS)]
    plan = recovery_plan(guests, hosts)
    assert [(s.name, s.target) for s in plan] == [("high", "hv-b"), ("mid", "hv-c"), ("low", "")]
    assert plan[2].reason == "no healthy host has the memory left"  # 3904 and 1904 MiB left: neither fits


def test_a_guest_whose_storage_no_healthy_host_mounts_is_not_planned():
    plan = recovery_plan([RecoveryGuest(1, "g", 0, 256, frozenset({"san9"}))], [RecoveryHost(10, "hv-b", 9000, NFS)])
    assert plan[0].target_id is None and "storage" in plan[0].reason
