"""Inventory: make Hypervisor/Guest rows say what libvirt says.

Invariants kept here:
- A guest's `hypervisor` changes only on evidence from libvirt: the domain is active on the new host,
  or it is defined there while its recorded host no longer has it.
- A guest whose `migrating` flag is set is left alone (a guest migration owns it; mid-move it is
  legitimately on two hosts). Nor does listing ever query a domain's job, so a running migration
  never blocks a refresh.
- An unreachable host is marked OFFLINE with libvirt's message; it never stops the other hosts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.types import Actor
from hosts.drivers import libvirt as driver
from hosts.drivers.types import DiskInfo, DomainInfo, DriverError, HostInfo, NicInfo
from hosts.models import Guest, GuestDisk, GuestNic, Hypervisor, InventoryRefreshStats, StorageServer
from hosts.services import host_calls
from hosts.signals import state_changed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshResult:
    hypervisor: str
    online: bool
    guests: int = 0
    error: str = ""


# ----------------------------------------------------------------------------- storage lookup


def storage_for_disk(disk: DiskInfo, servers: Iterable[StorageServer]) -> StorageServer | None:
    """The storage server a disk lives on: an NFS network disk on a server's export, or a file
    under the path where hypervisors mount a server's export."""
    for server in servers:
        if disk.source_protocol:
            if (
                disk.source_protocol == server.protocol
                and disk.source_host == server.address
                and server.holds_path(disk.source)
            ):
                return server
        elif disk.source and server.holds_path(disk.source):
            return server
    return None


# --------------------------------------------------------------------------------- applying


def _disk_rows(guest: Guest, disks: tuple[DiskInfo, ...], servers: list[StorageServer]) -> list[GuestDisk]:
    return [
        GuestDisk(
            guest=guest,
            target=d.target,
            device=d.device,
            source_type=d.source_type,
            source=d.source,
            source_protocol=d.source_protocol,
            source_host=d.source_host,
            format=d.format,
            cache=d.cache,
            storage_server=storage_for_disk(d, servers),
        )
        for d in disks
    ]


def _disk_key(d: GuestDisk | DiskInfo) -> tuple[str, ...]:
    return (d.target, d.device, d.source_type, d.source, d.source_protocol, d.source_host, d.format, d.cache)


def _nic_key(n: GuestNic | NicInfo) -> tuple[str, ...]:
    return (n.mac, n.kind, n.bridge, n.network, n.model)


def _sync_devices(guest: Guest, dom: DomainInfo, servers: list[StorageServer], created: bool) -> None:
    """Rewrite a guest's disks/NICs only when libvirt's description changed (refresh runs every few s)."""
    old_disks = [] if created else list(guest.disks.all())
    if sorted(map(_disk_key, old_disks)) != sorted(map(_disk_key, dom.disks)) or any(
        d.storage_server_id is None for d in old_disks
    ):
        GuestDisk.objects.filter(guest=guest).delete()
        GuestDisk.objects.bulk_create(_disk_rows(guest, dom.disks, servers))
    old_nics = [] if created else list(guest.nics.all())
    if sorted(map(_nic_key, old_nics)) != sorted(map(_nic_key, dom.nics)):
        GuestNic.objects.filter(guest=guest).delete()
        GuestNic.objects.bulk_create(
            GuestNic(guest=guest, mac=n.mac, kind=n.kind, bridge=n.bridge, network=n.network, model=n.model)
            for n in dom.nics
        )


def _guest_facts(guest: Guest) -> tuple:
    return (
        guest.name,
        guest.power,
        guest.persistent,
        guest.vcpus,
        guest.memory_mib,
        guest.hypervisor_id,
        guest.lease,
    )


def _owner_may_change(guest: Guest, dom: DomainInfo, gone_from_owner: frozenset[str]) -> bool:
    """Evidence that the guest now lives on the host being refreshed."""
    if guest.migrating or dom.migrating:
        return False
    if dom.state in ("running", "paused", "blocked", "pmsuspended"):
        return True
    # Defined (shut off) here: ours only once its recorded host no longer has it.
    return guest.power == Guest.Power.MISSING or dom.uuid in gone_from_owner


def _gone_from_owner(hypervisor: Hypervisor, domains: list[DomainInfo]) -> set[str]:
    """UUIDs of inactive domains here that are recorded on another host which, asked now, lacks them.

    Hosts refresh in parallel, so after an offline move this host may be refreshed before the old
    one has marked the guest missing; asking the old host directly settles it in one round. Done
    outside the write transaction (it is a libvirt call to another host); an unreachable owner is
    no evidence, so the guest stays where it is.
    """
    inactive = [d.uuid for d in domains if d.state in ("shutoff", "crashed") and not d.migrating]
    if not inactive:
        return set()
    elsewhere = (
        Guest.objects.filter(uuid__in=inactive, migrating=False)
        .exclude(hypervisor=hypervisor)
        .exclude(power=Guest.Power.MISSING)
        .values_list("uuid", "hypervisor__uri")
    )
    gone = set()
    for uuid, owner_uri in elsewhere:
        try:
            if driver.find_domain(owner_uri, str(uuid)) is None:
                gone.add(str(uuid))
        except DriverError:
            continue
    return gone


@transaction.atomic
def apply_host_facts(
    hypervisor: Hypervisor, info: HostInfo, domains: list[DomainInfo], gone_from_owner: frozenset[str] = frozenset()
) -> list[int]:
    """Write one host's facts and guests. Returns the ids of guests whose row changed.

    `gone_from_owner`: inactive domains here whose recorded host was just seen not to have them.
    """
    now = timezone.now()
    servers = list(StorageServer.objects.all())
    # NO KEY: refreshes of one host still queue behind each other, but a row that merely points at the host
    # (a migration request's job, a guest) is not blocked. A plain FOR UPDATE blocks the foreign-key check
    # of such an insert; the request held its guest row while the refresh waited for it: a deadlock
    # (PostgreSQL, tests/scale/test_a_restart_mid_migration.py, a 500 on the Migrate form).
    hv = Hypervisor.objects.select_for_update(no_key=True).get(pk=hypervisor.pk)
    host_before = _host_picture(hv)
    if hv.state != Hypervisor.State.MAINTENANCE:
        hv.state = Hypervisor.State.ONLINE
    hv.last_error = ""
    hv.last_seen_at = now
    hv.host_uuid = info.host_uuid
    hv.hostname = info.hostname
    hv.cpu_model = info.cpu_model
    hv.cpus = info.cpus
    hv.memory_total_mib = info.memory_total_mib
    hv.memory_free_mib = info.memory_free_mib
    hv.bridges = list(info.bridges)
    hv.vcpus_allocated = sum(d.vcpus for d in domains if d.state in ("running", "paused", "blocked"))
    hv.save()
    state_changed(hv.pk, host_before[0], hv.state)

    changed: list[int] = []
    known = {str(g.uuid): g for g in Guest.objects.filter(uuid__in=[d.uuid for d in domains])}
    for dom in domains:
        found = known.get(dom.uuid)
        created = found is None
        if found is None:
            guest = Guest(uuid=dom.uuid, hypervisor=hv)
        elif found.hypervisor_id != hv.pk:
            if not _owner_may_change(found, dom, gone_from_owner):
                continue  # another host owns it until libvirt shows otherwise
            log.info("guest %s moved %s -> %s (libvirt reports it here)", dom.name, found.hypervisor_id, hv.name)
            guest = found
            guest.hypervisor = hv
        elif found.migrating:
            continue
        else:
            guest = found
        before = None if created else _guest_facts(guest)
        guest.name, guest.power, guest.persistent = dom.name, dom.state, dom.persistent
        guest.vcpus, guest.memory_mib, guest.last_seen_at = dom.vcpus, dom.memory_mib, now
        guest.lease = dom.leases[0] if dom.leases else ""
        guest.save()
        if before != _guest_facts(guest):
            changed.append(guest.pk)
        _sync_devices(guest, dom, servers, created)

    seen = {d.uuid for d in domains}
    gone = (
        Guest.objects.filter(hypervisor=hv, migrating=False).exclude(power=Guest.Power.MISSING).exclude(uuid__in=seen)
    )
    gone_ids = list(gone.values_list("pk", flat=True))
    Guest.objects.filter(pk__in=gone_ids).update(power=Guest.Power.MISSING)
    changed.extend(gone_ids)
    if changed or _host_picture(hv) != host_before:
        _announce(hv.pk, changed)  # every few seconds per host: push only what a viewer would see change
    return changed


def _host_picture(hv: Hypervisor) -> tuple:
    """What the topology shows of a host; memory in whole percent, as the bar draws it."""
    return (
        hv.state,
        hv.last_error,
        hv.cpus,
        hv.vcpus_allocated,
        hv.memory_total_mib,
        hv.memory_used_percent,
        tuple(hv.bridges),
    )


@transaction.atomic
def mark_unreachable(hypervisor: Hypervisor, error: DriverError) -> None:
    before = Hypervisor.objects.filter(pk=hypervisor.pk).values_list("state", "last_error").first()
    updated = Hypervisor.objects.filter(pk=hypervisor.pk).exclude(state=Hypervisor.State.MAINTENANCE)
    updated.update(state=Hypervisor.State.OFFLINE, last_error=error.message)
    Hypervisor.objects.filter(pk=hypervisor.pk, state=Hypervisor.State.MAINTENANCE).update(last_error=error.message)
    after = Hypervisor.objects.filter(pk=hypervisor.pk).values_list("state", "last_error").first()
    if after != before:
        _announce(hypervisor.pk, [])
        state_changed(hypervisor.pk, before and before[0], after and after[0])


def announce_guest(hypervisor_id: int, guest_id: int, *also: int) -> None:
    """Push one guest's row, its host and the hosts `also` (the one it left) to the topology once committed
    (a recovery marks it recovering, then moves it)."""
    _announce(hypervisor_id, [guest_id], also)


def _announce(hypervisor_id: int, guest_ids: list[int], also: Iterable[int] = ()) -> None:
    """Push the changed parts of the topology to browsers once the rows are committed."""
    from hosts import events  # events renders templates; keep it out of import time

    hosts = [hypervisor_id, *also]
    # robust: a failed push (channel layer down) must never undo or break a refresh.
    transaction.on_commit(lambda: events.topology_changed(hypervisor_ids=hosts, guest_ids=guest_ids), robust=True)


# --------------------------------------------------------------------------------- refreshing


def refresh_hypervisor(hypervisor: Hypervisor) -> RefreshResult:
    """Ask one host for its facts and guests and record them. Never raises for libvirt trouble."""
    started = time.monotonic()
    try:
        info = driver.host_info(hypervisor.uri)
        domains = driver.list_domains(hypervisor.uri)
    except DriverError as err:
        log.warning("refresh of %s failed: %s", hypervisor.name, err.message)
        mark_unreachable(hypervisor, err)
        _record_refresh(hypervisor.pk, started, failed=True)
        return RefreshResult(hypervisor.name, online=False, error=err.message)
    apply_host_facts(hypervisor, info, domains, frozenset(_gone_from_owner(hypervisor, domains)))
    _record_refresh(hypervisor.pk, started, failed=False)
    return RefreshResult(hypervisor.name, online=True, guests=len(domains))


def _record_refresh(hypervisor_id: int, started: float, failed: bool) -> None:
    """Count the refresh and its time for /metrics (one UPDATE; the row is created on the first)."""
    ms = int((time.monotonic() - started) * 1000)
    bump = {
        "refreshes": F("refreshes") + 1,
        "failures": F("failures") + int(failed),
        "duration_ms_total": F("duration_ms_total") + ms,
        "last_duration_ms": ms,
        "last_refresh_at": timezone.now(),
    }
    stats = InventoryRefreshStats.objects.filter(hypervisor_id=hypervisor_id)
    if stats.update(**bump):
        return
    try:
        _, created = InventoryRefreshStats.objects.get_or_create(
            hypervisor_id=hypervisor_id,
            defaults={"refreshes": 1, "failures": int(failed), "duration_ms_total": ms, "last_duration_ms": ms,
                      "last_refresh_at": timezone.now()},
        )  # fmt: skip
    except IntegrityError:  # the hypervisor was deleted while it was being refreshed
        return
    if not created:  # another refresh of this host created it first
        stats.update(**bump)


def refresh_all(hypervisor_ids: Iterable[int] | None = None) -> list[RefreshResult]:
    """Refresh hosts in parallel, each waited for at most `host_calls.WAIT_S`: a slow, dead or stalled host
    costs its own part, not everyone's, and a host still busy with an earlier call is not asked again
    (its late refresh still records what libvirt said when it returns; hosts.services.host_calls)."""
    hypervisors = list(
        Hypervisor.objects.all() if hypervisor_ids is None else Hypervisor.objects.filter(pk__in=hypervisor_ids)
    )
    answered = host_calls.run({hv.uri: partial(refresh_hypervisor, hv) for hv in hypervisors})
    return [answered.get(hv.uri) or _not_answered(hv) for hv in hypervisors]


def _not_answered(hv: Hypervisor) -> RefreshResult:
    return RefreshResult(
        hypervisor=hv.name,
        online=False,
        error=f"libvirt has not answered within {host_calls.WAIT_S:.0f} s; not waited for (its row is unchanged)",
    )


def request_refresh(*, hypervisor: Hypervisor | None = None, actor: Actor = None, source_ip: str = "") -> None:
    """An operator asked for fresh facts: audit it and enqueue the refresh job once committed."""
    from django_q.tasks import async_task

    from accounts.audit import audit_record

    ids = [hypervisor.pk] if hypervisor else None
    with transaction.atomic():
        audit_record(
            action="inventory.refresh_requested",
            actor=actor,
            source_ip=source_ip,
            hypervisor=hypervisor.name if hypervisor else "",
            params={"scope": hypervisor.name if hypervisor else "all"},
        )
        transaction.on_commit(lambda: async_task("hosts.tasks.refresh_inventory", ids, task_name="inventory-refresh"))
