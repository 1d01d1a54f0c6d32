"""Measure how fast running guests dirty their memory, with libvirt's own calculation, a few at a time.

A round (a django-q2 schedule, every minute) looks at every running guest on an online host that no
guest migration owns: a finished measurement is stored on the guest with its time; a guest whose last
measurement is older than MEASURE_EVERY_S gets a new one started, unless one is still running (QEMU
runs one calculation per guest at a time). Only page sampling is ever asked for (the driver takes no
mode). A host or guest that does not answer is skipped: the next round tries again.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError
from hosts.models import Guest, Hypervisor

log = logging.getLogger(__name__)

MEASURE_EVERY_S = 300  # a guest's workload changes slowly; a measurement costs QEMU a little sampling
PERIOD_S = 2  # what the lab measured with (docs/planning.md)


def measure_round(now: dt.datetime | None = None) -> dict[str, int]:
    """One round over every running guest; returns how many were stored, started and skipped."""
    now = now or timezone.now()
    counts = {"stored": 0, "started": 0, "skipped": 0}
    guests = Guest.objects.filter(
        power=Guest.Power.RUNNING, migrating=False, hypervisor__state=Hypervisor.State.ONLINE
    ).select_related("hypervisor")
    for guest in guests:
        try:
            for what in _measure(guest, now) or ["skipped"]:
                counts[what] += 1
        except DriverError as err:
            log.info("dirty rate of %s: %s", guest.name, err.message)
            counts["skipped"] += 1
    return counts


def _measure(guest: Guest, now: dt.datetime) -> list[str]:
    """Store a finished measurement, start the next when due; says which it did."""
    uri, uuid = guest.hypervisor.uri, str(guest.uuid)
    last = driver.dirty_rate(uri, uuid)
    done = []
    if last.status == "measured" and last.mib_per_s is not None and last.measured_at != guest.dirty_rate_at:
        Guest.objects.filter(pk=guest.pk).update(dirty_rate_mibps=last.mib_per_s, dirty_rate_at=last.measured_at)
        guest.dirty_rate_at = last.measured_at
        done.append("stored")
    due = not guest.dirty_rate_at or (now - guest.dirty_rate_at).total_seconds() >= MEASURE_EVERY_S
    if last.status != "measuring" and due:
        driver.start_dirty_rate_calc(uri, uuid, PERIOD_S)
        done.append("started")
    return done
