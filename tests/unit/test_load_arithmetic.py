"""Load arithmetic from two samples: percentages, rates, and counter resets (never a negative rate)."""

import pytest

from hosts import load
from hosts.drivers.types import GuestCounters, LoadSample


def host(user, kernel, idle, iowait=0, at_s=0, total_kib=8 << 20, free_kib=2 << 20):
    return LoadSample("test:///x", at_s * 10**9, 4, user, kernel, idle, iowait, total_kib, free_kib)


def test_host_cpu_is_busy_time_over_all_time_between_samples():
    before, after = host(100, 100, 800, at_s=0), host(400, 200, 1300, 100, at_s=10)
    # busy 300 + 100 = 400 of 400 + 500 + 100 = 1000
    assert load.host_cpu_pct(before, after) == pytest.approx(40.0)


def test_host_cpu_unknown_without_time_passing_or_on_a_reset_or_missing_stats():
    s = host(100, 100, 800)
    assert load.host_cpu_pct(s, s) is None
    assert load.host_cpu_pct(host(900, 900, 900), host(10, 10, 10)) is None  # host rebooted
    assert load.host_cpu_pct(host(None, None, None), s) is None


def test_guest_cpu_of_its_vcpus_and_of_the_host():
    before = GuestCounters("u", "running", vcpus=2, cpu_time_ns=5 * 10**9)
    after = GuestCounters("u", "running", vcpus=2, cpu_time_ns=20 * 10**9)
    cpu = load.guest_cpu(before, after, seconds=10)
    assert cpu.cores == pytest.approx(1.5)
    assert cpu.pct_of_vcpus == pytest.approx(75.0)
    assert load.guest_pct_of_host(cpu, host_cpus=8) == pytest.approx(18.75)


def test_guest_restarted_has_no_rate_rather_than_a_negative_one():
    before = GuestCounters("u", "running", vcpus=1, cpu_time_ns=50 * 10**9)
    after = GuestCounters("u", "running", vcpus=1, cpu_time_ns=10**9)
    assert load.guest_cpu(before, after, seconds=10) is None
    assert load.guest_cpu(before, GuestCounters("u", "running", vcpus=1), seconds=10) is None


@pytest.mark.parametrize(
    ("before", "after", "seconds", "expected"),
    [(100, 1100, 10, 100.0), (1100, 100, 10, None), (None, 5, 10, None), (5, 5, 0, None), (0, 0, 5, 0.0)],
)
def test_rate_from_counters(before, after, seconds, expected):
    assert load.rate(before, after, seconds) == expected


def test_memory_used_is_total_minus_reclaimable():
    assert load.memory_used_mib(host(0, 0, 0, total_kib=8 << 20, free_kib=3 << 20)) == 5 * 1024
