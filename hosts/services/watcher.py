"""The inventory watcher: one worker task at a time keeps every host's picture fresh.

django-q2 schedules fire at 30-60 s granularity, but operators expect a host's state within seconds.
So the watcher runs in short chunks: it takes the `WorkerLease` (exactly one runs cluster-wide),
refreshes every host every few seconds and a host at once when libvirt reports a lifecycle event on
a connection it holds open, then releases the lease and enqueues its successor. Every 10 s it also takes
the measured-load round (hosts.services.load_history). Short chunks let a
worker shut down gracefully within seconds; a schedule every minute restarts the chain if a worker
died mid-chunk (its lease expires).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, close_old_connections
from django.db.models import Q
from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError
from hosts.models import Guest, Hypervisor, WorkerLease
from hosts.services import ha, ha_detection, host_calls, load_history
from hosts.services.inventory import refresh_hypervisor
from kvmcluster.workers import is_dead_here, worker_label

log = logging.getLogger(__name__)
lease_log = logging.getLogger("kvmcluster.leases")

LEASE_NAME = "inventory-watcher"
LEASE_TTL = timedelta(seconds=20)
EVENT_DEBOUNCE_S = 0.2


def take_lease(name: str, holder: str, ttl: timedelta = LEASE_TTL) -> bool:
    """Compare-and-set: take the lease if it is free, expired or already ours."""
    now = timezone.now()
    try:
        WorkerLease.objects.get_or_create(name=name, defaults={"holder": "", "expires_at": now})
    except IntegrityError:
        pass  # created by a concurrent taker; the update below decides
    mine_or_free = Q(expires_at__lte=now) | Q(holder=holder)
    stale = _dead_local_holder(name)
    if stale:
        mine_or_free |= Q(holder=stale)
    return WorkerLease.objects.filter(mine_or_free, name=name).update(holder=holder, expires_at=now + ttl) == 1


def _dead_local_holder(name: str) -> str:
    """The lease's holder if it is a process of this machine that no longer exists, else "".

    A worker that was stopped mid-chunk never released its lease; without this its successor waited
    out the TTL, and then for the minute schedule (the topology lagged ~27 s after a restart). A holder
    on another machine is waited out: its lease expires after the TTL (kvmcluster.workers).
    """
    holder = WorkerLease.objects.filter(name=name).values_list("holder", flat=True).first() or ""
    return holder if holder and is_dead_here(holder) else ""


def release_lease(name: str, holder: str, since: float | None = None) -> None:
    """Give the lease up; `since` (time.time() when it was taken) logs how long `holder` held it, one line
    per hold on the `kvmcluster.leases` logger: which worker node ran which round, and when."""
    WorkerLease.objects.filter(name=name, holder=holder).update(holder="", expires_at=timezone.now())
    if since is not None:
        lease_log.info("lease %s held by %s from %.3f to %.3f", name, holder, since, time.time())


class _Events:
    """Lifecycle events from libvirt's thread, handed to the watcher loop: (host URI, domain UUID)."""

    def __init__(self) -> None:
        self.wakeup = threading.Event()
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()

    def __call__(self, uri: str, domain_uuid: str, _event: str) -> None:
        with self._lock:
            self._seen.add((uri, str(domain_uuid).lower()))
        self.wakeup.set()

    def take(self) -> set[tuple[str, str]]:
        with self._lock:
            seen, self._seen = self._seen, set()
        self.wakeup.clear()
        return seen


# A guest migration's own lifecycle events (the guest starting on the target, pausing and stopping on
# the source) are the move's business: when it settles it records, from libvirt, where the guest is
# and pushes the topology. Refreshing both hosts on each of those events, and every few seconds while
# the move ran, rendered the topology on the very cores both QEMUs needed for the move (bench/
# migration.py, docs/benchmarks.md). So a host with a move in flight is refreshed once the move ends,
# or at the latest MOVE_DEFER_MAX_S after its last refresh; other hosts, and an event of another guest
# on the same host, are not held back.
MOVE_DEFER_MAX_S = 30.0
MOVE_RECHECK_S = 1.0


class _Moves:
    """Which hosts have a guest migration in flight: the host of every guest whose `migrating` flag is
    set (its source), and any host that reported a lifecycle event of such a guest (its target)."""

    def __init__(self) -> None:
        self._event_hosts: dict[str, set[str]] = {}  # uri -> UUIDs of moving guests it reported
        self.moving: set[str] = set()
        self._sources: set[str] = set()

    def look(self) -> None:
        rows = Guest.objects.filter(migrating=True).values_list("uuid", "hypervisor__uri")
        self.moving = {str(u).lower() for u, _ in rows}
        self._sources = {uri for _, uri in rows}
        for uri in list(self._event_hosts):
            self._event_hosts[uri] &= self.moving
            if not self._event_hosts[uri]:
                del self._event_hosts[uri]

    def saw(self, uri: str, domain_uuid: str) -> bool:
        """Note an event; True if it is a moving guest's (the move's own)."""
        if domain_uuid not in self.moving:
            return False
        self._event_hosts.setdefault(uri, set()).add(domain_uuid)
        return True

    def busy(self, uri: str) -> bool:
        return uri in self._sources or uri in self._event_hosts


def run_watcher(duration_s: float, interval_s: float | None = None) -> int:
    """Refresh all hosts every `interval_s` (and on events) for `duration_s`. Returns refresh rounds."""
    interval_s = interval_s or settings.INVENTORY_REFRESH_SECONDS
    holder = worker_label()
    if not take_lease(LEASE_NAME, holder):
        log.debug("inventory watcher already running elsewhere")
        return 0
    since = time.time()
    events = _Events()
    moves = _Moves()
    subscriptions: dict[str, driver.Subscription] = {}
    deadline = time.monotonic() + duration_s
    rounds = 0
    last_refresh: dict[str, float] = {}  # uri -> when this watcher last refreshed it
    waiting: set[str] = set()  # hosts whose refresh waits for their move to end

    def refresh(uris: set[str] | frozenset[str], now: float, asked: frozenset[str] = frozenset()) -> None:
        """Refresh `uris`, except hosts with a move in flight that were refreshed lately (they wait);
        `asked`: hosts that reported an event of some other guest, refreshed whatever else runs there."""
        held = {
            u for u in uris - asked if moves.busy(u) and now - last_refresh.get(u, -MOVE_DEFER_MAX_S) < MOVE_DEFER_MAX_S
        }
        go = uris - held
        waiting.difference_update(go)
        waiting.update(held)
        if go:
            # one host's slow libvirt costs its own refresh, not the round (hosts.services.host_calls)
            host_calls.run({hv.uri: partial(refresh_hypervisor, hv) for hv in Hypervisor.objects.filter(uri__in=go)})
            for u in go:
                last_refresh[u] = now

    try:
        next_full = 0.0
        while time.monotonic() < deadline:
            close_old_connections()
            now = time.monotonic()
            moves.look()
            if now >= next_full:
                refresh(set(Hypervisor.objects.values_list("uri", flat=True)), now)
                _sample_load()
                _detect_failures()
                _refresh_kept_definitions()
                next_full = now + interval_s
            else:
                seen = events.take()
                if seen:
                    time.sleep(EVENT_DEBOUNCE_S)  # a migration or boot fires several events in a row
                    seen |= events.take()
                # a moving guest's own events mark its hosts busy: they are refreshed once the move ends
                owned = {(uri, dom) for uri, dom in seen if moves.saw(uri, dom)}
                waiting.update(uri for uri, _ in owned)
                uris = frozenset(uri for uri, _ in seen - owned)
                refresh(uris | {u for u in waiting if not moves.busy(u)}, now, asked=uris)
            rounds += 1
            _subscribe(subscriptions, events)
            if not take_lease(LEASE_NAME, holder):
                log.warning("inventory watcher lost its lease; stopping")
                break
            wake_at = min(next_full, deadline, time.monotonic() + MOVE_RECHECK_S if waiting else deadline)
            events.wakeup.wait(max(0.0, wake_at - time.monotonic()))
    finally:
        for sub in subscriptions.values():
            sub.cancel()
        release_lease(LEASE_NAME, holder, since)
    return rounds


def _sample_load() -> None:
    """Measured load rides on the watcher: it already runs once cluster-wide every few seconds."""
    try:
        load_history.tick()
    except Exception:  # a failed history write must never stop the inventory the topology depends on
        log.exception("load sampling round failed")


def _detect_failures() -> None:
    """Failure detection rides on the full refresh round: it judges what that refresh just saw (docs/ha.md)."""
    try:
        ha_detection.detect_failures()
    except Exception:  # like load sampling: never stop the inventory the topology depends on
        log.exception("failure detection round failed")


def _refresh_kept_definitions() -> None:
    """After the judgement, so a host found suspect this round is not read from (docs/ha.md, section 4)."""
    try:
        ha.refresh_kept_definitions()
    except Exception:  # like the others: never stop the inventory the topology depends on
        log.exception("refreshing the kept HA definitions failed")


def _subscribe(subscriptions: dict[str, driver.Subscription], events: _Events) -> None:
    """Listen for lifecycle events on every online host not yet listened to."""
    online = set(Hypervisor.objects.filter(state=Hypervisor.State.ONLINE).values_list("uri", flat=True))
    for uri in list(subscriptions):
        if uri not in online:
            subscriptions.pop(uri).cancel()
    for uri in online - set(subscriptions):
        try:
            subscriptions[uri] = driver.watch_lifecycle(uri, events)
        except DriverError as err:
            log.info("no lifecycle events from %s: %s", uri, err.message)
