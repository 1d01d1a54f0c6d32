"""getAllDomainStats records as plain values: devices summed, balloon rss preferred, gaps stay None."""

from hosts.drivers.libvirt.load import guest_counters

RUNNING, PAUSED = 1, 3  # libvirt virDomainState values


def test_a_full_record_sums_disks_and_interfaces_and_prefers_rss():
    stats = {
        "state.state": RUNNING,
        "cpu.time": 7_000_000_000,
        "vcpu.current": 2,
        "balloon.current": 1048576,
        "balloon.rss": 524288,
        "block.count": 2,
        "block.0.rd.bytes": 10,
        "block.0.wr.bytes": 1,
        "block.1.rd.bytes": 5,
        "block.1.wr.bytes": 2,
        "net.count": 1,
        "net.0.rx.bytes": 300,
        "net.0.tx.bytes": 400,
    }
    g = guest_counters("u-1", stats)
    assert (g.state, g.cpu_time_ns, g.vcpus, g.memory_kib) == ("running", 7_000_000_000, 2, 524288)
    assert (g.block_rd_bytes, g.block_wr_bytes, g.net_rx_bytes, g.net_tx_bytes) == (15, 3, 300, 400)


def test_a_state_only_record_as_the_test_driver_gives_leaves_the_rest_unknown():
    g = guest_counters("u-2", {"state.state": PAUSED, "state.reason": 0, "balloon.current": 2048})
    assert (g.state, g.memory_kib, g.cpu_time_ns, g.vcpus, g.net_rx_bytes) == ("paused", 2048, None, None, None)
