"""Gathers the pre-flight facts: DB rows plus what libvirt says right now (the thin, impure part)."""

from __future__ import annotations

import logging
import math
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db.models import Count, Q, Sum

from hosts.drivers import libvirt as driver
from hosts.drivers.types import DomainInfo, DriverError
from hosts.models import Guest, Hypervisor
from migrations_app.choices import SLOT_STATES, State
from migrations_app.orchestrator import preflight as pf

log = logging.getLogger(__name__)


def _storage(h: Hypervisor) -> tuple[pf.StorageSnap, ...]:
    return tuple(
        pf.StorageSnap(s.name, s.protocol, s.address, s.export_path, s.mount_path) for s in h.storage_servers.all()
    )


def _slots(h: Hypervisor, exclude_job: int | None) -> tuple[int, int, int]:
    from migrations_app.models import MigrationJob

    qs = MigrationJob.objects.filter(state__in=[s.value for s in SLOT_STATES])
    reserve = MigrationJob.objects.filter(state__in=[s.value for s in SLOT_STATES | {State.QUEUED}], target=h)
    if exclude_job:
        qs = qs.exclude(pk=exclude_job)
        reserve = reserve.exclude(pk=exclude_job)
    counts = qs.aggregate(out=Count("pk", filter=Q(source=h)), inc=Count("pk", filter=Q(target=h)))
    reserved = reserve.aggregate(m=Sum("memory_mib"))["m"] or 0
    return counts["out"], counts["inc"], reserved


# At a job's start the target's bridges may come from this process's last look at them on the same
# connection: a bridge is host configuration, not something a move changes, and the request's full
# pre-flight asked for them moments earlier. (Asking again is a call per interface on the host: 40-80 ms
# of the re-run on the loaded lab.) The source's bridges are no check's business.
START_BRIDGES_MAX_AGE_S = 300.0


def _live_host(uri: str, with_domains: bool, at_start: bool = False):
    """libvirt's part of a host snapshot (no DB access, so it can run in a thread). `at_start`: only
    what can have changed since the request (free memory, which domains the host has, that it
    answers) is asked; see gather()."""
    try:
        age = (START_BRIDGES_MAX_AGE_S if with_domains else math.inf) if at_start else 0.0
        info = driver.host_info(uri, bridges_max_age_s=age)
        if not with_domains:
            pairs: list[tuple[str, str]] = []
        elif at_start:
            pairs = driver.domain_names(uri)
        else:
            pairs = [(d.name, d.uuid) for d in driver.list_domains(uri)]
    except DriverError as err:
        return err
    return info, tuple(name for name, _ in pairs), tuple(uuid for _, uuid in pairs)


def host_snap(h: Hypervisor, exclude_job: int | None = None, with_domains: bool = False, live=None) -> pf.HostSnap:
    """`live`: libvirt's part (`_live_host`), or a Future of it: the database is read while libvirt answers."""
    out, inc, reserved = _slots(h, exclude_job)
    base = dict(
        pk=h.pk,
        name=h.name,
        state=h.state,
        storage=_storage(h),
        outgoing_active=out,
        incoming_active=inc,
        reserved_incoming_mib=reserved,
        migration_tls=h.migration_tls,
        health=h.health,
    )
    if live is None:
        live = _live_host(h.uri, with_domains)
    elif isinstance(live, Future):
        live = live.result()
    if isinstance(live, DriverError):
        return pf.HostSnap(
            reachable=False,
            error=live.message,
            host_uuid=h.host_uuid,
            memory_free_mib=h.memory_free_mib,
            bridges=tuple(h.bridges or ()),
            **base,
        )
    info, names, uuids = live
    return pf.HostSnap(
        reachable=True,
        host_uuid=info.host_uuid,
        memory_free_mib=info.memory_free_mib,
        # libvirt's interface driver may not see bridges (no netcf); fall back on the recorded list
        bridges=tuple(sorted(set(info.bridges) | set(h.bridges or ()))),
        domain_names=names,
        domain_uuids=uuids,
        hypervisor_type=info.hypervisor_type,
        hypervisor_version=info.hypervisor_version,
        **base,
    )


def guest_snap(guest: Guest, live: DomainInfo | None) -> pf.GuestSnap:
    if live is not None:
        disks = tuple(
            pf.DiskSnap(d.target, d.device, d.source_type, d.source, d.source_protocol, d.source_host, d.cache)
            for d in live.disks
        )
        nics = tuple(pf.NicSnap(n.mac, n.kind, n.bridge, n.network) for n in live.nics)
        return pf.GuestSnap(live.name, str(live.uuid), live.state, live.memory_mib or guest.memory_mib, disks, nics)
    disks = tuple(
        pf.DiskSnap(d.target, d.device, d.source_type, d.source, d.source_protocol, d.source_host, d.cache)
        for d in guest.disks.all()
    )
    nics = tuple(pf.NicSnap(n.mac, n.kind, n.bridge, n.network) for n in guest.nics.all())
    return pf.GuestSnap(guest.name, str(guest.uuid), guest.power, guest.memory_mib, disks, nics)


def _cpu(guest: Guest, source: Hypervisor, target: Hypervisor, remembered: bool = False) -> tuple[str, str]:
    """libvirt's verdict on the guest's own CPU on the target (not the hosts' CPUs: a guest with a
    baseline model moves between unlike hosts, one with a newer model may not move between like ones)."""
    try:
        cpu = driver.guest_cpu(source.uri, str(guest.uuid))
        if cpu.mode == "":
            return "default", "the guest has no CPU model: QEMU's default model, which every host provides"
        if cpu.mode == "host-model" and "<model" not in cpu.xml:
            return "default", "host-model: libvirt picks the target's own model when the guest starts there"
        if cpu.mode in ("host-passthrough", "maximum"):
            # The guest sees the source host's CPU itself: the target must offer all of it.
            result = driver.compare_cpu(target.uri, driver.host_cpu_xml(source.uri))
            return result, f"{cpu.mode}: {source.name}'s CPU on {target.name}"
        verdict = driver.compare_guest_cpu(target.uri, cpu, remembered=remembered)
        return verdict.result, verdict.message or f"the guest's CPU model on {target.name}"
    except DriverError as err:
        return "", err.message


def _compression(guest: Guest, source: Hypervisor) -> tuple[int | None, str]:
    """The source QEMU's XBZRLE cache for the running guest, or libvirt's reason it has none."""
    try:
        return driver.compression_cache(source.uri, str(guest.uuid)), ""
    except DriverError as err:
        return None, err.message


def find_domain(uri: str, uuid: str) -> DomainInfo | None:
    """libvirt's view of the guest on `uri`, or None where it has no such domain or does not answer."""
    try:
        return driver.get_domain(uri, uuid)
    except DriverError:
        return None


def gather(
    guest: Guest,
    source: Hypervisor,
    target: Hypervisor,
    kind: str,
    options: dict,
    exclude_job: int | None = None,
    source_snap: pf.HostSnap | None = None,
    live: DomainInfo | None | bool = False,
    at_start: bool = False,
    target_snap: pf.HostSnap | None = None,
) -> pf.Facts:
    """Facts for one (guest, target); `source_snap`/`live` let the form reuse them across targets, and
    `target_snap` (taken `with_domains`) lets a drain plan reuse a target's across its guests.

    The libvirt questions (both hosts, the guest, the CPU comparison) go out in parallel: the
    pre-flight sits on the request path and again at job start, so its latency is the operator's.

    `at_start` (the re-run when the job starts, moments after the request's full one): libvirt is asked
    again only what can have changed since: the guest's state and devices, free memory and the
    domains on the target, and that both hosts answer. What cannot change while a connection lasts
    comes from the driver's connection cache: host UUIDs and versions (always), the target's verdict
    on this guest CPU definition, and the target's bridges as this process saw them lately. Every
    check still runs on the result."""
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="preflight") as pool:
        f_live = pool.submit(find_domain, source.uri, str(guest.uuid)) if live is False else None
        f_src = pool.submit(_live_host, source.uri, False, at_start) if source_snap is None else None
        f_dst = pool.submit(_live_host, target.uri, True, at_start) if target_snap is None else None
        f_cpu = pool.submit(_cpu, guest, source, target, at_start)
        f_comp = pool.submit(_compression, guest, source) if pf.wants_compression(kind, options) else None
        # the database's part of each host (moves in flight, storage) is read while libvirt answers
        src = source_snap or host_snap(source, exclude_job, live=f_src)
        dst = target_snap or host_snap(target, exclude_job, with_domains=True, live=f_dst)
        if f_live is not None:
            live = f_live.result()
        cpu_result, cpu_message = f_cpu.result()
        compression_cache, compression_error = f_comp.result() if f_comp else (None, "")
    if not (src.reachable and dst.reachable):
        cpu_result, cpu_message = "", "a host is down"
    return pf.Facts(
        guest=guest_snap(guest, live if isinstance(live, DomainInfo) else None),
        source=src,
        target=dst,
        kind=kind,
        options=options,
        cpu_result=cpu_result,
        cpu_message=cpu_message,
        compression_cache=compression_cache,
        compression_error=compression_error,
        max_outgoing=settings.MIGRATION_MAX_OUTGOING,
        max_incoming=settings.MIGRATION_MAX_INCOMING,
    )


def checklist(guest, target, kind, options, exclude_job=None) -> list[dict]:
    facts = gather(guest, guest.hypervisor, target, kind, options, exclude_job)
    return [item.as_dict() for item in pf.run_checks(facts)]


def readiness(guest: Guest, kind: str, options: dict) -> list[dict]:
    """Every other hypervisor with its verdict and checklist, for the Migrate form."""
    source = guest.hypervisor
    try:
        live: DomainInfo | None = driver.get_domain(source.uri, str(guest.uuid))
    except DriverError:
        live = None
    src = host_snap(source)
    rows = []
    for target in Hypervisor.objects.exclude(pk=source.pk).prefetch_related("storage_servers"):
        facts = gather(guest, source, target, kind, options, source_snap=src, live=live)
        items = [i.as_dict() for i in pf.run_checks(facts)]
        rows.append(
            {
                "target": target,
                "verdict": pf.verdict(items),
                "items": items,
                "problems": [i for i in items if i["status"] != pf.PASS],
                # what ranking the targets needs ("Auto"): moves in flight toward the target
                "reserved_mib": facts.target.reserved_incoming_mib,
                "incoming": facts.target.incoming_active,
            }
        )
    return rows


def needs_unsafe(guest: pf.GuestSnap) -> bool:
    """libvirt calls any file disk 'unsafe' unless it knows the fs is shared (docs/lab.md P2); the
    shared-storage check has already proved it is, so a live move of a guest with file disks sets UNSAFE."""
    return any(d.source and d.source_type in ("file", "block", "volume") for d in guest.disks)


def _host_cpu_xml(uri: str) -> tuple[str, str]:
    try:
        return driver.host_cpu_xml(uri), ""
    except DriverError as err:
        return "", err.message


def host_snaps(hosts: list[Hypervisor], with_domains: bool = False) -> dict[int, pf.HostSnap]:
    """Each host's snapshot, asked once per host and in parallel (a drain plan judges every guest
    against the same targets)."""
    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(hosts)), thread_name_prefix="host-snaps") as pool:
        lives = [pool.submit(_live_host, h.uri, with_domains) for h in hosts]
        return {
            h.pk: host_snap(h, with_domains=with_domains, live=live.result())
            for h, live in zip(hosts, lives, strict=True)
        }


def host_facts(hosts: list[Hypervisor]) -> dict[int, tuple[pf.HostSnap, tuple[str, str]]]:
    """Each host's snapshot and its host CPU (xml, or libvirt's reason it has none), asked once per host
    and in parallel (the readiness matrix compares every pair from these)."""
    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, 2 * len(hosts)), thread_name_prefix="host-facts") as pool:
        lives = [pool.submit(_live_host, h.uri, False) for h in hosts]
        cpus = [pool.submit(_host_cpu_xml, h.uri) for h in hosts]
        return {
            h.pk: (host_snap(h, live=live.result()), cpu.result())
            for h, live, cpu in zip(hosts, lives, cpus, strict=True)
        }


def compare_host_cpus(pairs: list[tuple[Hypervisor, Hypervisor, str]]) -> list[tuple[str, str]]:
    """libvirt's verdict on each source's host CPU (its xml given) at each target, in parallel: what a
    host-passthrough guest needs; guests with a baseline model are judged on their own when they move."""

    def one(target: Hypervisor, xml: str) -> tuple[str, str]:
        try:
            return driver.compare_cpu(target.uri, xml), ""
        except DriverError as err:
            return "", err.message

    # Hosts of one model give one CPU xml: each target is asked once per distinct CPU, not once per source.
    asks = {(t.pk, xml): t for _, t, xml in pairs if xml}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(asks))), thread_name_prefix="cpu-compare") as pool:
        answers = dict(zip(asks, pool.map(lambda key: one(asks[key], key[1]), asks), strict=True))
    out = []
    for source, target, xml in pairs:
        if not xml:
            out.append(("", f"{source.name} gave no host CPU"))
            continue
        result, error = answers[(target.pk, xml)]
        out.append((result, error or f"{source.name}'s host CPU on {target.name}"))
    return out
