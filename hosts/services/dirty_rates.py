"""Measure how fast running guests dirty their memory, with libvirt's own calculation.

A round (a django-q2 schedule, every minute) looks at every running guest on an online host that no
guest migration owns and whose last measurement is older than MEASURE_EVERY_S: it starts a measurement
of PERIOD_S for each, waits the period out once for all of them, then reads each result and stores it on
the guest with the time it was read. QEMU dates a measurement only by its host's monotonic clock (the
driver's `started_s`), which says nothing about when it was on our clock, so a result is read in the round
that started it: one read in a later round could not be told from an old one, and stamping it "now" would
make an old figure look fresh. A guest still measuring from elsewhere (QEMU runs one calculation per guest
at a time) is skipped. Only page sampling is ever asked for (the driver takes no mode). A host or guest
that does not answer is skipped: the next round tries again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError
from hosts.models import Guest, Hypervisor

log = logging.getLogger(__name__)

MEASURE_EVERY_S = 300  # a guest's workload changes slowly; a measurement costs QEMU a little sampling
PERIOD_S = 2  # what the lab measured with (docs/planning.md)
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
        try:
            driver.start_dirty_rate_calc(guest.hypervisor.uri, str(guest.uuid), PERIOD_S)
        except DriverError as err:  # unreachable, gone, or one already running there
            log.info("dirty rate of %s: %s", guest.name, err.message)
            counts["skipped"] += 1
            continue
        started.append(guest)
        counts["started"] += 1
    if started:
        time.sleep(READ_AFTER_S)
    for guest in started:
        counts["stored" if _store(guest) else "skipped"] += 1
    return counts


def _store(guest: Guest) -> bool:
    """Read the measurement this round started and keep it with the time it was read."""
    try:
        last = driver.dirty_rate(guest.hypervisor.uri, str(guest.uuid))
    except DriverError as err:
        log.info("dirty rate of %s: %s", guest.name, err.message)
        return False
    if last.status != "measured" or last.mib_per_s is None:
        return False  # still measuring (a slow host): the next round starts another
    Guest.objects.filter(pk=guest.pk).update(dirty_rate_mibps=last.mib_per_s, dirty_rate_at=timezone.now())
    return True
