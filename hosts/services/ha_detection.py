"""Failure detection: each round, every host's health from its two signals (docs/ha.md, section 3).

Runs in the inventory watcher's round (one holder cluster-wide, hosts.services.watcher), right after the
refresh that tells whether libvirt answered. Invariant: `Hypervisor.health` changes only here (and by an
operator's clear, `hypervisor_health_clear`), each change with its audit row (actor: the system) in the
same transaction; a host in maintenance is left alone (an operator took it down on purpose).
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.roles import Perm
from accounts.types import Actor
from hosts.drivers import libvirt as driver
from hosts.drivers import sanlock
from hosts.drivers.types import DriverError
from hosts.ha_detection import FAILED, HEALTHY, HostHealth, judge
from hosts.models import Guest, Hypervisor
from hosts.services import host_calls
from hosts.signals import health_changed

log = logging.getLogger(__name__)


def _reachable(hv: Hypervisor, stalled: set[str]) -> bool:
    """libvirt answered the last refresh and no call to it has hung since (hosts.services.host_calls)."""
    return hv.state == Hypervisor.State.ONLINE and hv.uri not in stalled


def _stored(hv: Hypervisor) -> HostHealth:
    return HostHealth(hv.health, hv.health_since, hv.health_note, hv.lease_stamp, hv.lease_progress_at)


def detect_failures(now: datetime | None = None) -> list[tuple[str, str, str]]:
    """One round over every host contacted at least once and not in maintenance.

    Returns (host, old, new) for each health change."""
    now = now or timezone.now()
    changes = []
    stalled = host_calls.stalled()
    for hv in Hypervisor.objects.exclude(state__in=[Hypervisor.State.MAINTENANCE, Hypervisor.State.UNKNOWN]):
        reachable = _reachable(hv, stalled)
        # The second signal is read only when it matters: while libvirt does not answer.
        stamp = None
        if not reachable and settings.HA_LOCKSPACE and hv.ha_host_id:
            stamp = sanlock.lease_stamp(settings.HA_LOCKSPACE, hv.ha_host_id)
        after = judge(_stored(hv), reachable=reachable, stamp=stamp, now=now, grace_s=settings.HA_GRACE_SECONDS)
        if after != _stored(hv) and _store(hv, after):
            if after.health != hv.health:
                changes.append((hv.name, hv.health, after.health))
    return changes


def _store(hv: Hypervisor, after: HostHealth) -> bool:
    """Compare-and-set on the health this round read; False when someone (an operator's clear) got there first."""
    with transaction.atomic():
        updated = Hypervisor.objects.filter(pk=hv.pk, health=hv.health, health_since=hv.health_since).update(
            health=after.health,
            health_since=after.since,
            health_note=after.note[:255],
            lease_stamp=after.stamp,
            lease_progress_at=after.progress_at,
        )
        if updated and after.health != hv.health:
            log.warning("host %s: %s -> %s (%s)", hv.name, hv.health, after.health, after.note)
            audit_record(
                action=f"host.{after.health}",
                actor=None,
                hypervisor=hv.name,
                params={"was": hv.health, "grace_s": settings.HA_GRACE_SECONDS, "lease_stamp": after.stamp},
                message=after.note,
            )
            # The card first: on commit the callbacks run in this order, and the recovery that the
            # signal enqueues pushes "being recovered" itself; pushed after it, this card (rendered
            # before the recovery's claim) would say plain "failed" for the whole restart.
            _announce(hv.pk)
            health_changed(hv.pk, hv.health, after.health)
    return bool(updated)


def hypervisor_health_clear(*, hypervisor: Hypervisor, actor: Actor, source_ip: str = "") -> Hypervisor:
    """An operator says a failed (or suspect) host is sound again: back to healthy, and into placement."""
    if actor is None or not actor.is_active or not actor.has_perm(Perm.POWER_GUESTS):
        raise PermissionDenied("your role may not clear a host's failure")
    stale = _undefine_stale(hypervisor)
    with transaction.atomic():
        hv = Hypervisor.objects.select_for_update(no_key=True).get(pk=hypervisor.pk)  # see inventory.apply_host_facts
        was = hv.health
        hv.health, hv.health_since, hv.health_note = HEALTHY, timezone.now(), f"cleared by {actor.get_username()}"
        hv.save(update_fields=["health", "health_since", "health_note"])
        audit_record(
            action="host.health_cleared",
            actor=actor,
            source_ip=source_ip,
            hypervisor=hv.name,
            params={"was": was, "stale_definitions_removed": stale},
        )
        if was != HEALTHY:
            health_changed(hv.pk, was, HEALTHY)
        _announce(hv.pk)
    return hv


def _undefine_stale(hv: Hypervisor) -> list[str]:
    """Remove the definitions this host still has of guests that now run elsewhere (restarted there while
    it was failed): such a copy must never be started again. Returns their names; [] if it cannot be asked."""
    try:
        domains = driver.list_domains(hv.uri)
    except DriverError as err:
        log.warning("clearing %s: cannot list its domains to remove stale definitions: %s", hv.name, err.message)
        return []
    elsewhere = set(
        Guest.objects.filter(uuid__in=[d.uuid for d in domains], power=Guest.Power.RUNNING)
        .exclude(hypervisor=hv)
        .values_list("uuid", flat=True)
    )
    removed = []
    for d in domains:
        if d.state == "shutoff" and d.persistent and UUID(d.uuid) in elsewhere:
            try:
                driver.undefine(hv.uri, d.uuid)
                removed.append(d.name)
            except DriverError as err:
                log.warning("could not remove the stale definition of %s from %s: %s", d.name, hv.name, err.message)
    return removed


def _announce(hypervisor_id: int) -> None:
    from hosts import events  # renders templates; not at import time

    transaction.on_commit(lambda: events.topology_changed(hypervisor_ids=[hypervisor_id], guest_ids=[]), robust=True)


__all__ = ["FAILED", "detect_failures", "hypervisor_health_clear"]
