"""Measured load history: one sample round across the cluster, then downsampling and pruning.

Invariants kept here:
- A round asks each online host once (in parallel, waiting for each at most hosts.services.host_calls'
  wait; libvirt calls only, the rows are written after) and
  writes one 10 s HostLoadSample per host answered and one GuestLoadSample per running guest it knows,
  in a constant number of queries whatever the number of guests.
- Rates come from this round's counters against the previous round's, kept in the "load" cache per host
  (Redis in production, files in the data directory in the embedded profile: any worker process can take
  the next round); without a previous sample, or after a
  counter reset, a row has no CPU figure rather than a wrong one.
- Each round's new points are pushed after commit, one message per host (hosts.events.load_recorded),
  to the pages charting that host or its guests; the push is best effort, the rows are the truth.
- Each coarser tier's rows are averages of the finer tier's complete intervals, rolled up once (the
  latest coarse row is the watermark); every tier's rows older than its keep are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.core.cache import caches
from django.db import transaction
from django.db.models import Avg, Max, Min, QuerySet
from django.utils import timezone

from hosts import events, load
from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError, LoadSample
from hosts.load_tiers import RAW, TIERS, Tier, bucket_start
from hosts.models import Guest, GuestLoadSample, HostLoadSample, Hypervisor
from hosts.services import host_calls

log = logging.getLogger(__name__)

# A baseline older than this is not worth a rate (a stopped watcher): start over.
BASELINE_TTL_S = 300
# Intervals rolled up per tier per call, so a long outage catches up in steps, never one huge query run.
MAX_BUCKETS_PER_CALL = 30


@dataclass(frozen=True)
class RoundResult:
    hosts: int
    guests: int
    missing: tuple[str, ...] = ()  # what some host's hypervisor could not report


def _key(hypervisor_id: int) -> str:
    return f"load-baseline:{hypervisor_id}"


def _sample(uri: str) -> LoadSample | DriverError:
    try:
        return driver.load_sample(uri)
    except DriverError as err:
        return err


def _take_samples(uris: list[str]) -> list[LoadSample | DriverError]:
    """A host that does not answer within the round's wait (or is still busy with an earlier call) gives
    no sample this round, as if unreachable: its slow libvirt must not hold up the others' rows."""
    taken = host_calls.run({u: partial(_sample, u) for u in uris})
    return [taken[u] if u in taken else DriverError(f"no answer from {u} within this round", uri=u) for u in uris]


def record_round(now: datetime | None = None) -> RoundResult:
    """Sample every online host and write this round's 10 s rows."""
    now = now or timezone.now()
    hosts = list(Hypervisor.objects.filter(state=Hypervisor.State.ONLINE).values_list("pk", "uri", "name"))
    samples = _take_samples([uri for _, uri, _ in hosts])
    previous = caches["load"].get_many([_key(pk) for pk, _, _ in hosts])
    taken: dict[int, LoadSample] = {}
    for (pk, _uri, name), sample in zip(hosts, samples, strict=True):
        if isinstance(sample, DriverError):
            log.info("no load sample from %s: %s", name, sample.message)  # inventory marks it offline
            continue
        taken[pk] = sample
    uuids = {g.uuid for s in taken.values() for g in s.guests if g.state == "running"}
    guest_ids = {str(u): pk for u, pk in Guest.objects.filter(uuid__in=uuids).values_list("uuid", "pk")}

    guest_hosts: dict[int, int] = {}  # guest id -> the host it ran on in this round
    host_rows: list[HostLoadSample] = []
    guest_rows: list[GuestLoadSample] = []
    missing: set[str] = set()
    for pk, sample in taken.items():
        before: LoadSample | None = previous.get(_key(pk))
        missing.update(sample.missing)
        host_rows.append(
            HostLoadSample(
                hypervisor_id=pk,
                at=now,
                resolution_s=RAW.resolution_s,
                cpu_pct=load.host_cpu_pct(before, sample) if before else None,
                memory_used_mib=load.memory_used_mib(sample),
                memory_total_mib=sample.memory_total_kib // 1024,
            )
        )
        earlier = {g.uuid: g for g in before.guests} if before else {}
        seconds = (sample.at_ns - before.at_ns) / 1e9 if before else 0.0
        for g in sample.guests:
            if g.state != "running" or g.uuid not in guest_ids:
                continue  # a guest the inventory has not recorded yet gets rows from the next round
            cpu = load.guest_cpu(earlier[g.uuid], g, seconds) if g.uuid in earlier else None
            guest_hosts[guest_ids[g.uuid]] = pk
            guest_rows.append(
                GuestLoadSample(
                    guest_id=guest_ids[g.uuid],
                    at=now,
                    resolution_s=RAW.resolution_s,
                    cpu_pct_of_vcpus=cpu.pct_of_vcpus if cpu else None,
                    cpu_cores=cpu.cores if cpu else None,
                    memory_mib=g.memory_kib // 1024 if g.memory_kib is not None else None,
                )
            )
    HostLoadSample.objects.bulk_create(host_rows)
    GuestLoadSample.objects.bulk_create(guest_rows, batch_size=500)
    caches["load"].set_many({_key(pk): s for pk, s in taken.items()}, timeout=BASELINE_TTL_S)
    hosts_points, guests_points = _points(host_rows, guest_rows, guest_hosts)
    transaction.on_commit(lambda: events.load_recorded(hosts_points, guests_points))
    return RoundResult(hosts=len(host_rows), guests=len(guest_rows), missing=tuple(sorted(missing)))


def _points(
    host_rows: list[HostLoadSample], guest_rows: list[GuestLoadSample], guest_hosts: dict[int, int]
) -> tuple[dict[int, dict], dict[int, dict[int, dict]]]:
    """The round's rows as the charts' points (the columns of hosts.load_selectors' series), by host."""
    hosts = {
        r.hypervisor_id: {"at": r.at.timestamp(), "cpu_pct": r.cpu_pct, "memory_used_mib": r.memory_used_mib,
                          "memory_total_mib": r.memory_total_mib}
        for r in host_rows
    }  # fmt: skip
    guests: dict[int, dict[int, dict]] = {}
    for r in guest_rows:
        guests.setdefault(guest_hosts[r.guest_id], {})[r.guest_id] = {
            "at": r.at.timestamp(), "cpu_pct_of_vcpus": r.cpu_pct_of_vcpus, "cpu_cores": r.cpu_cores,
            "memory_mib": r.memory_mib,
        }  # fmt: skip
    return hosts, guests


# ------------------------------------------------------------------------------ downsampling


def _roll_up(model: type[HostLoadSample] | type[GuestLoadSample], owner: str, fine: Tier, coarse: Tier,
             now: datetime) -> int:  # fmt: skip
    """Average `fine` rows into `coarse` rows for every complete coarse interval not yet rolled up.

    One query per interval plus two, whatever the number of owners (one GROUP BY per interval).
    """
    # An interval is complete once its end is a fine interval in the past (the last round may be in flight).
    end = bucket_start(now - timedelta(seconds=fine.resolution_s), coarse.resolution_s)
    done = model.objects.filter(resolution_s=coarse.resolution_s).aggregate(last=Max("at"))["last"]
    fine_rows: QuerySet = model.objects.filter(resolution_s=fine.resolution_s)
    pending = fine_rows if done is None else fine_rows.filter(at__gte=done + timedelta(seconds=coarse.resolution_s))
    # Jump to the first fine row not rolled up: intervals with no rows at all (watcher stopped) cost nothing.
    first = pending.aggregate(first=Min("at"))["first"]
    if first is None:
        return 0
    start = bucket_start(first, coarse.resolution_s)
    start = max(start, bucket_start(now - coarse.keep, coarse.resolution_s))  # older would be pruned at once
    fields = _averaged(model)
    written = 0
    width = timedelta(seconds=coarse.resolution_s)
    for _ in range(MAX_BUCKETS_PER_CALL):
        if start + width > end:
            break
        groups = (
            fine_rows.filter(at__gte=start, at__lt=start + width)
            .values(owner)
            .annotate(**{f"v_{f}": Max(f) if f == "memory_total_mib" else Avg(f) for f in fields})
        )
        rows: list[Any] = [  # one model's rows; mypy cannot tie the element type to `model`
            model(
                **{owner: g[owner], "at": start, "resolution_s": coarse.resolution_s},
                **{f: _typed(f, g[f"v_{f}"]) for f in fields},
            )  # fmt: skip
            for g in groups
        ]
        model.objects.bulk_create(rows, batch_size=500)
        written += len(rows)
        start += width
    return written


def _averaged(model: type[HostLoadSample] | type[GuestLoadSample]) -> tuple[str, ...]:
    if model is HostLoadSample:
        return ("cpu_pct", "memory_used_mib", "memory_total_mib")
    return ("cpu_pct_of_vcpus", "cpu_cores", "memory_mib")


def _typed(field: str, value: float | int | None) -> float | int | None:
    """Averages of the integer MiB columns are rounded back to whole MiB."""
    if value is None or "mib" not in field:
        return value
    return round(value)


def downsample_and_prune(now: datetime | None = None) -> dict[str, int]:
    """Roll every tier up into the next and delete each tier's rows past its keep. Returns counts."""
    now = now or timezone.now()
    counts = {"rolled_up": 0, "deleted": 0}
    for fine, coarse in zip(TIERS, TIERS[1:], strict=False):
        counts["rolled_up"] += _roll_up(HostLoadSample, "hypervisor_id", fine, coarse, now)
        counts["rolled_up"] += _roll_up(GuestLoadSample, "guest_id", fine, coarse, now)
    for tier in TIERS:
        for model in (HostLoadSample, GuestLoadSample):
            deleted, _ = model.objects.filter(resolution_s=tier.resolution_s, at__lt=now - tier.keep).delete()
            counts["deleted"] += deleted
    return counts


# --------------------------------------------------------------------------------- cadence

_ROUND_DUE = "load-round-due"
_DOWNSAMPLE_DUE = "load-downsample-due"
DOWNSAMPLE_EVERY_S = 60


def tick() -> RoundResult | None:
    """Take a round if the last one is a 10 s interval old, and downsample once a minute.

    Called on every inventory watcher round (the watcher runs once cluster-wide under its lease); the
    due markers are cache entries that expire, so the cadence carries over from one watcher chunk to
    the next. The marker lives a second less than the interval: a round asked a little early still runs.
    """
    if not caches["load"].add(_ROUND_DUE, 1, timeout=RAW.resolution_s - 1):
        return None
    result = record_round()
    if caches["load"].add(_DOWNSAMPLE_DUE, 1, timeout=DOWNSAMPLE_EVERY_S - 1):
        downsample_and_prune()
    return result


def forget_baselines(hypervisor_ids: Iterable[int]) -> None:
    """Drop the kept counters and cadence markers (tests: a fresh start without flushing a shared Redis)."""
    caches["load"].delete_many([*(_key(pk) for pk in hypervisor_ids), _ROUND_DUE, _DOWNSAMPLE_DUE])
