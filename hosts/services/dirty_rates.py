"""Measure how fast running guests dirty their memory, with libvirt's own calculation.

A round (a django-q2 schedule, every minute) looks at every running guest on an online host that no
guest migration owns and whose last measurement is older than MEASURE_EVERY_S: it starts a measurement
of PERIOD_S for each, waits the period out once for all of them, reads each result, and repeats that
READINGS times; it stores the median reading on the guest with the time it was read. QEMU dates a
measurement only by its host's monotonic clock (the driver's `started_s`), which says nothing about when
it was on our clock, so a result is read in the round that started it: one read in a later round could
not be told from an old one, and stamping it "now" would make an old figure look fresh. A guest still
measuring from elsewhere (QEMU runs one calculation per guest at a time) is skipped. Only page sampling
is ever asked for (the driver takes no mode). A host or guest that does not answer is skipped: the next
round tries again.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
import time

from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError
from hosts.models import Guest, Hypervisor

log = logging.getLogger(__name__)

MEASURE_EVERY_S = 300  # a guest's workload changes slowly; a measurement costs QEMU a little sampling
# 2 s, not the 1 s libvirt also allows: a 1 s window holds all, part or none of a guest's write burst, so
# one guest read 0 to 36 MiB/s over 1 s, and the bench classified worse with it (docs/planning.md)
PERIOD_S = 2
READINGS = 3  # back to back; the median is kept (_median_of_readings)
READ_AFTER_S = PERIOD_S + 0.5  # QEMU finishes its calculation just after the period


def measure_round(now: dt.datetime | None = None) -> dict[str, int]:
    """One round over every running guest that is due; returns how many were stored, started and skipped."""
    now = now or timezone.now()
    counts = {"stored": 0, "started": 0, "skipped": 0}
    guests = Guest.objects.filter(
        power=Guest.Power.RUNNING, migrating=False, hypervisor__state=Hypervisor.State.ONLINE
    ).select_related("hypervisor")
    started: list[Guest] = []
    for guest in guests:
        if guest.dirty_rate_at and (now - guest.dirty_rate_at).total_seconds() < MEASURE_EVERY_S:
            counts["skipped"] += 1
            continue
        if not _start(guest):
            counts["skipped"] += 1
            continue
        started.append(guest)
        counts["started"] += 1
    median = _median_of_readings(started)
    for guest in started:
        if guest.pk in median:
            Guest.objects.filter(pk=guest.pk).update(dirty_rate_mibps=median[guest.pk], dirty_rate_at=timezone.now())
    counts["stored"] = len(median)
    counts["skipped"] += len(started) - len(median)
    return counts


def _median_of_readings(measuring: list[Guest]) -> dict[int, float]:
    """READINGS back-to-back measurements of the guests already measuring; the median reading of each.

    One reading is coarse: QEMU hashes 512 pages per GiB, so each sampled page stands for 2 MiB of memory
    whatever the guest's size, and a reading of R MiB/s over PERIOD_S counts R × PERIOD_S / 2 changed pages
    (8 for 8 MiB/s, ± about 3); the lab read 13, 10, 10 and 14 MiB/s in a row for one guest and 17 to 30
    for another (docs/planning.md). The median of three keeps one outlying
    reading, either way, from deciding whether a move is predicted to converge."""
    readings: dict[int, list[float]] = {}
    for reading in range(READINGS):
        if not measuring:
            break
        time.sleep(READ_AFTER_S)
        again: list[Guest] = []
        for guest in measuring:
            rate = _read(guest)
            if rate is None:
                continue  # still measuring (a slow host) or gone: keep what it read so far
            readings.setdefault(guest.pk, []).append(rate)
            if reading + 1 < READINGS and _start(guest):
                again.append(guest)
        measuring = again
    return {pk: statistics.median(rates) for pk, rates in readings.items()}


def _start(guest: Guest) -> bool:
    try:
        driver.start_dirty_rate_calc(guest.hypervisor.uri, str(guest.uuid), PERIOD_S)
    except DriverError as err:  # unreachable, gone, or one already running there
        log.info("dirty rate of %s: %s", guest.name, err.message)
        return False
    return True


def _read(guest: Guest) -> float | None:
    """The measurement this round started, once QEMU has it."""
    try:
        last = driver.dirty_rate(guest.hypervisor.uri, str(guest.uuid))
    except DriverError as err:
        log.info("dirty rate of %s: %s", guest.name, err.message)
        return None
    if last.status != "measured" or last.mib_per_s is None:
        return None
    return last.mib_per_s
