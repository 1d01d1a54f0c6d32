"""Load arithmetic: percentages and rates from two raw samples of cumulative counters. Pure (no DB, no libvirt).

Counters are cumulative since some start (boot, guest start). A counter that went down was reset
(host reboot, guest restarted or moved): that interval has no rate, never a negative one.
"""

from __future__ import annotations

from dataclasses import dataclass

from hosts.drivers.types import GuestCounters, LoadSample


def delta(before: int | None, after: int | None) -> int | None:
    """after - before, or None when either is unknown or the counter went back (a reset)."""
    if before is None or after is None or after < before:
        return None
    return after - before


def rate(before: int | None, after: int | None, seconds: float) -> float | None:
    """Per-second rate of a cumulative counter over `seconds`; None on a reset or no elapsed time."""
    d = delta(before, after)
    if d is None or seconds <= 0:
        return None
    return d / seconds


def _busy_total(s: LoadSample) -> tuple[int, int] | None:
    parts = (s.cpu_user_ns, s.cpu_kernel_ns, s.cpu_idle_ns, s.cpu_iowait_ns)
    if any(p is None for p in parts):
        return None
    user, kernel, idle, iowait = parts  # type: ignore[misc]
    return user + kernel, user + kernel + idle + iowait


def host_cpu_pct(before: LoadSample, after: LoadSample) -> float | None:
    """Share of the host's CPU time spent busy (user + kernel) between two samples, 0..100.

    iowait counts as idle: a CPU waiting on a disk could run another guest.
    """
    a, b = _busy_total(before), _busy_total(after)
    if a is None or b is None:
        return None
    busy, total = delta(a[0], b[0]), delta(a[1], b[1])
    if busy is None or not total:
        return None
    return min(100.0, 100.0 * busy / total)


@dataclass(frozen=True)
class GuestCpu:
    pct_of_vcpus: float  # 100 = every vCPU busy all the time
    cores: float  # host cores' worth of CPU time used (1.5 = one and a half cores)


def guest_cpu(before: GuestCounters, after: GuestCounters, seconds: float) -> GuestCpu | None:
    """A guest's CPU use between two samples, of its own vCPUs and in host cores; None without a rate.

    cpu.time includes emulator threads, so a busy guest can show slightly above 100 % of its vCPUs.
    """
    used = rate(before.cpu_time_ns, after.cpu_time_ns, seconds)
    if used is None:
        return None
    cores = used / 1e9
    vcpus = after.vcpus or before.vcpus
    return GuestCpu(pct_of_vcpus=100.0 * cores / vcpus if vcpus else 0.0, cores=cores)


def guest_pct_of_host(cpu: GuestCpu, host_cpus: int) -> float:
    """The guest's CPU use as a share of the whole host, 0..100."""
    return 100.0 * cpu.cores / host_cpus if host_cpus else 0.0


def memory_used_mib(s: LoadSample) -> int:
    return max(s.memory_total_kib - s.memory_free_kib, 0) // 1024
