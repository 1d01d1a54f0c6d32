"""Redundancy settings of a guest: "restart on failure" and its priority (docs/ha.md).

Invariant: a guest has `ha_restart` set only if, when it was set, the guest held a lock-manager lease and
had every disk on shared storage (hosts.ha_checks); turning the flag off, or changing only the priority
of a guest without it, is always allowed. Every change is one transaction with its audit row.

The kept definition (`Guest.definition_xml`, what a recovery restarts the guest from) follows the guest's
edits: each full inventory round re-reads it from the guest's host when that host answers and is healthy
(`refresh_kept_definitions`), never from a suspect or failed one, and writes it only when it changed.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts.audit import audit_record
from accounts.roles import Perm
from accounts.types import Actor
from hosts.drivers import libvirt as driver
from hosts.drivers.types import DomainNotFound, DriverError
from hosts.ha_checks import HaCheck, HaDisk, ha_checks, refusals
from hosts.ha_detection import HEALTHY
from hosts.models import Guest, Hypervisor
from hosts.services import host_calls

log = logging.getLogger(__name__)

PRIORITY_MIN, PRIORITY_MAX = -1000, 1000


class HaRefused(Exception):
    """The flag was not set; `reasons` say why (the failing pre-flight checks)."""

    def __init__(self, reasons: list[str], checks: list[HaCheck] | None = None):
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.checks = checks or []


def guest_ha_checks(guest: Guest) -> list[HaCheck]:
    """The pre-flight for the flag, from what the inventory last saw of the guest."""
    disks = [
        HaDisk(
            target=d.target,
            source=d.source,
            storage=d.storage_server.name if d.storage_server else "",
            shared=bool(d.storage_server and d.storage_server.is_shared),
        )
        for d in guest.disks.select_related("storage_server")
    ]
    return ha_checks(lease=guest.lease, disks=disks)


def guest_ha_set(*, guest: Guest, restart: bool, priority: int, actor: Actor, source_ip: str = "") -> Guest:
    """Set whether `guest` restarts on a healthy host when its host fails, and its priority (higher first).

    Refuses (HaRefused) to turn the flag on for a guest that fails the pre-flight; PermissionDenied for an
    actor without Perm.POWER_GUESTS (restarting guests is powering them).
    """
    if actor is None or not actor.is_active or not actor.has_perm(Perm.POWER_GUESTS):
        raise PermissionDenied("your role may not change how guests restart")
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise HaRefused([f"priority must lie between {PRIORITY_MIN} and {PRIORITY_MAX}"])
    definition = ""
    if restart:
        # Kept for the day its host does not answer: a restart elsewhere defines it from this copy.
        try:
            definition = driver.domain_xml(guest.hypervisor.uri, str(guest.uuid), inactive=True)
        except DriverError as err:
            raise HaRefused([f"cannot read its definition from {guest.hypervisor.name}: {err.message}"]) from err
    with transaction.atomic():
        locked = Guest.objects.select_for_update().select_related("hypervisor").get(pk=guest.pk)
        audit: dict[str, Any] = dict(
            action="guest.ha_set",
            actor=actor,
            source_ip=source_ip,
            guest=locked.name,
            guest_uuid=str(locked.uuid),
            hypervisor=locked.hypervisor.name,
            params={"restart": restart, "priority": priority, "was": [locked.ha_restart, locked.ha_priority]},
        )
        checks = guest_ha_checks(locked) if restart else []
        reasons = refusals(checks)
        if reasons:
            audit_record(**audit, outcome="refused", message="; ".join(reasons))
        else:
            locked.ha_restart, locked.ha_priority = restart, priority
            locked.definition_xml = definition or locked.definition_xml
            locked.save(update_fields=["ha_restart", "ha_priority", "definition_xml"])
            audit_record(**audit)
    if reasons:
        raise HaRefused(reasons, [c for c in checks if not c.ok])
    return locked


def refresh_kept_definitions() -> list[str]:
    """Re-read the definition of every "restart on failure" guest from its host, and keep it where it changed.

    Only from a host that answered the round's refresh (online) and is healthy: a suspect host may be half
    gone, and a failed one is exactly the host whose copy must not replace ours. A moving guest is skipped
    (mid-move it is defined on two hosts; its move ends with the row pointing at the one that has it). The
    definition is kept as libvirt gives it, even without a <lease>: the recovery then refuses to start it
    (nothing would fence it) instead of starting an old copy that no longer says what the guest is.
    One libvirt call per flagged guest, a host's calls on one bounded thread (hosts.services.host_calls: a
    host that does not answer in time is left for a later round); a write only when the XML differs (a
    compare-and-set on the copy read, the flag and the host, so a concurrent change of the flag or a move
    wins). Returns the guests whose copy changed.
    """
    guests = Guest.objects.filter(
        ha_restart=True,
        migrating=False,
        hypervisor__state=Hypervisor.State.ONLINE,
        hypervisor__health=HEALTHY,
    ).exclude(power=Guest.Power.MISSING)
    by_host: dict[str, list[tuple]] = {}
    for row in guests.values_list("pk", "name", "uuid", "hypervisor_id", "hypervisor__uri", "definition_xml"):
        by_host.setdefault(row[4], []).append(row)
    # per host on the watcher's bounded calls: a host whose libvirtd holds a starting guest costs its own part
    read = host_calls.run({uri: partial(_read_definitions, rows) for uri, rows in by_host.items()})
    changed = []
    for uri, fresh_copies in read.items():
        for (guest_id, name, _uuid, host_id, _uri, kept), fresh in zip(by_host[uri], fresh_copies, strict=True):
            if fresh is not None and _keep(guest_id, name, host_id, kept, fresh):
                changed.append(name)
    return changed


def _read_definitions(rows: list[tuple]) -> list[str | None]:
    """The inactive definitions of one host's guests (`rows` as refresh_kept_definitions lists them);
    None for a guest that could not be read."""
    fresh: list[str | None] = []
    for _guest_id, name, uuid, _host_id, uri, _kept in rows:
        try:
            fresh.append(driver.domain_xml(uri, str(uuid), inactive=True))
        except DomainNotFound:
            fresh.append(None)  # gone from that host; the inventory marks it missing
        except DriverError as err:
            log.info("cannot re-read the definition of %s: %s", name, err.message)
            fresh.append(None)
    return fresh


def _keep(guest_id: int, name: str, host_id: int, kept: str, fresh: str) -> bool:
    """Write a freshly read copy that differs from the kept one; True if written."""
    if fresh == kept:
        return False
    updated = Guest.objects.filter(
        pk=guest_id, ha_restart=True, migrating=False, hypervisor_id=host_id, definition_xml=kept
    ).update(definition_xml=fresh)
    if updated:
        if "<lease>" not in fresh:
            log.warning("guest %s: its definition now has no <lease>; HA will refuse to restart it", name)
        else:
            log.info("guest %s: kept definition refreshed from its host", name)
    return bool(updated)
