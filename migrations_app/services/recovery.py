"""Recovery: a failed host's "restart on failure" guests are started on healthy hosts (docs/ha.md, section 4).

Invariants:
- it runs only for a host whose health is FAILED (hosts.services.ha_detection), as a worker job
  (`tasks.recover_host`, enqueued when the host is declared failed) and by the system actor (audit rows
  with no user);
- a guest is started elsewhere only if the lock manager grants its lease there: libvirt refuses the start
  (LeaseHeld) while another host holds it, and then the guest is *not* started; the attempt is retried
  until HA_LEASE_WAIT_SECONDS (sanlock frees a dead host's leases only once that host is dead to it), and
  a final refusal is reported: the old host may still run the guest;
- a guest whose kept definition has no <lease> is reported and never started (nothing would fence it);
- the guest row moves only on libvirt's word (the start succeeded), through the hosts placement service;
  while it is being restarted it is marked `recovering` (a compare-and-set: one recovery per guest), which
  the topology and the guest page show, and both hosts' cards are pushed when it ends;
- a claim whose worker is gone (dead on this machine, or older than the longest a restart may take) is
  released by the reconciler (`release_abandoned`), with its audit row: the inventory then shows where
  libvirt runs the guest.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from accounts.audit import audit_record
from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError, LeaseHeld
from hosts.ha_detection import FAILED, HEALTHY
from hosts.models import Guest, Hypervisor
from hosts.services import inventory, placement
from kvmcluster.workers import is_dead_here, worker_label
from migrations_app.planning.recovery import RecoveryGuest, RecoveryHost, RecoveryStep, recovery_plan
from migrations_app.signals import ha_restart_done

log = logging.getLogger(__name__)

RETRY_S = 5.0
# A restart may take the lease wait and then one more start that blocks inside sanlock (up to its dead-host
# time, ~200 s at the default io timeout): a claim older than the wait plus this was abandoned.
ABANDONED_MARGIN_S = 600
LEASE_REFUSED = (
    "the lock manager refused its lease on {target}: another host holds it, so the old host may still run "
    "this guest; it was not started"
)


def _storage(guest: Guest) -> frozenset[str]:
    return frozenset(d.storage_server.name for d in guest.disks.all() if d.storage_server and d.source)


# What a guest was doing when its host was last seen for it to be restarted: an operator who shut a guest off
# (or left it paused) before the host died did not ask for it to run, flag or not.
RESTARTED_IF = (Guest.Power.RUNNING, Guest.Power.BLOCKED)


def plan_for(
    hv: Hypervisor,
) -> tuple[list[RecoveryStep], dict[int, Guest], dict[int, Hypervisor], dict[str, str]]:
    """The plan, its guests and target hosts by id, and the flagged guests left as last seen (name -> power)."""
    flagged = Guest.objects.filter(hypervisor=hv, ha_restart=True).prefetch_related("disks__storage_server")
    guests = {g.pk: g for g in flagged if g.power in RESTARTED_IF}
    left = {g.name: g.power for g in flagged if g.power not in RESTARTED_IF}
    hosts = {
        h.pk: h
        for h in Hypervisor.objects.filter(state=Hypervisor.State.ONLINE, health=HEALTHY)
        .exclude(pk=hv.pk)
        .prefetch_related("storage_servers")
    }
    steps = recovery_plan(
        [RecoveryGuest(g.pk, g.name, g.ha_priority, g.memory_mib, _storage(g)) for g in guests.values()],
        [
            RecoveryHost(h.pk, h.name, h.memory_free_mib, frozenset(s.name for s in h.storage_servers.all()))
            for h in hosts.values()
        ],
    )
    return steps, guests, hosts, left


def recover_host(hypervisor_id: int, *, lease_wait_s: float | None = None) -> dict[str, str]:
    """Restart the failed host's HA guests elsewhere; returns guest name -> what happened."""
    hv = Hypervisor.objects.get(pk=hypervisor_id)
    if hv.health != FAILED:
        return {}
    wait_s = settings.HA_LEASE_WAIT_SECONDS if lease_wait_s is None else lease_wait_s
    steps, guests, hosts, left = plan_for(hv)
    audit_record(
        action="host.recovery_started",
        hypervisor=hv.name,
        params={
            "plan": [[s.name, s.target or None, s.reason] for s in steps],
            "lease_wait_s": wait_s,
            "left_as_last_seen": left,
        },
        message=f"{len(steps)} guest(s) to restart elsewhere"
        + (f"; {len(left)} not running when the host was last seen, left so" if left else ""),
    )
    outcomes = {}
    for step in steps:
        guest = guests[step.guest_id]
        target = hosts.get(step.target_id) if step.target_id else None
        outcomes[guest.name] = _restart(hv, guest, target, step.reason, wait_s)
    return outcomes


def _report(audit: dict[str, Any], outcome: str, message: str, **extra: Any) -> None:
    """The guest's audit row and the notification signal, in one transaction."""
    with transaction.atomic():
        audit_record(action="guest.ha_restart", outcome=outcome, message=message, **audit, **extra)
        ha_restart_done.send_robust(
            sender="migrations_app",
            guest=audit["guest"],
            source=audit["hypervisor"],
            target=audit.get("target_hypervisor", ""),
            started=outcome == "ok",
            message=message,
        )


def _restart(hv: Hypervisor, guest: Guest, target: Hypervisor | None, reason: str, wait_s: float) -> str:
    audit: dict[str, Any] = dict(hypervisor=hv.name, guest=guest.name, guest_uuid=str(guest.uuid))
    if target is None:
        _report(audit, "refused", reason)
        return f"not started: {reason}"
    audit["target_hypervisor"] = target.name
    if "<lease>" not in guest.definition_xml:
        why = "its kept definition has no <lease>: nothing would fence it, so it is not started"
        _report(audit, "refused", why)
        return f"not started: {why}"
    holder = worker_label()
    with transaction.atomic():
        if not placement.claim_recovery(guest.pk, holder):
            return "not started: another recovery is restarting it"
        inventory.announce_guest(guest.hypervisor_id, guest.pk)
    started = time.monotonic()
    retrying = Retrying(  # the lease is refused until sanlock counts the old host dead: ask again
        retry=retry_if_exception_type(LeaseHeld),
        stop=stop_after_delay(wait_s),
        wait=wait_fixed(RETRY_S),
        reraise=True,
    )
    started_ok = False
    try:
        retrying(driver.define_and_start, target.uri, guest.definition_xml)
        started_ok = True
    except LeaseHeld as err:
        why = LEASE_REFUSED.format(target=target.name) + f" (libvirt: {err.message})"
        _report(audit, "refused", why)
        return f"not started: {why}"
    except DriverError as err:
        _report(audit, "failed", err.message)
        return f"failed: {err.message}"
    finally:
        if not started_ok:  # whatever went wrong, the guest stops showing as recovering
            with transaction.atomic():
                placement.release_recovery(guest.pk, holder)
                inventory.announce_guest(guest.hypervisor_id, guest.pk)
    refusals = retrying.statistics["attempt_number"] - 1
    took = time.monotonic() - started
    with transaction.atomic():  # where it runs and the end of "recovering" reach the page together
        placement.release_recovery(guest.pk, holder)
        placement.record_location(guest.pk, power=Guest.Power.RUNNING, hypervisor=target)
        _report(
            audit,
            "ok",
            f"started on {target.name} after {took:.1f} s ({refusals} lease refusal(s) before)",
            params={"seconds": round(took, 1), "lease_refusals": refusals},
        )
        inventory.announce_guest(target.pk, guest.pk, hv.pk)  # the failed host's card loses its chip
    log.warning("guest %s restarted on %s (host %s failed)", guest.name, target.name, hv.name)
    return f"started on {target.name}"


def release_abandoned(now: datetime | None = None) -> list[str]:
    """Release the claims of recoveries whose worker is gone (killed mid-restart), so the guest stops showing
    as recovering and the inventory may place it again; one audit row each. Run by the reconciler's pass."""
    now = now or timezone.now()
    longest = settings.HA_LEASE_WAIT_SECONDS + ABANDONED_MARGIN_S
    released = []
    rows = Guest.objects.filter(recovering=True).select_related("hypervisor")
    for guest in rows:
        since = guest.recovering_since
        dead = bool(guest.recovering_by) and is_dead_here(guest.recovering_by)
        if not (dead or since is None or (now - since).total_seconds() > longest):
            continue
        with transaction.atomic():
            if not placement.release_recovery(guest.pk, guest.recovering_by):
                continue  # its restart ended meanwhile
            why = (
                f"the worker restarting it ({guest.recovering_by or 'unknown'}) stopped before it finished; "
                "the inventory shows where libvirt runs it"
            )
            audit = dict(hypervisor=guest.hypervisor.name, guest=guest.name, guest_uuid=str(guest.uuid))
            _report(audit, "failed", why)
            inventory.announce_guest(guest.hypervisor_id, guest.pk)
        released.append(guest.name)
    return released


def on_health_changed(sender: object, hypervisor_id: int, old: str, new: str, **kwargs: Any) -> None:
    """hosts' hypervisor_health_changed: a host declared failed gets its recovery job once committed."""
    if new == FAILED:
        transaction.on_commit(lambda: _enqueue(hypervisor_id), robust=True)


def _enqueue(hypervisor_id: int) -> None:
    from django_q.tasks import async_task

    async_task("migrations_app.tasks.recover_host", hypervisor_id, task_name=f"recover-host-{hypervisor_id}")
