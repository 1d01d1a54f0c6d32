"""Per-host libvirt calls of the inventory watcher's round, each on a thread of its own, waited for a while.

libvirt bounds only the connect (KVMCLUSTER_LIBVIRT_TIMEOUT), not the calls: a guest start waiting ~80 s
inside sanlock's lease acquire held the domain's lock in that host's libvirtd, and listing its domains
waited as long; the whole round waited with it, its lease expired, and no host was refreshed or judged
(docs/ha.md, "Evidence"). Here a host that has not answered by the round's wait costs only its own part:
the round goes on without it. Invariants:
- At most one call per host in flight per process: a host still busy with an earlier call gets no new
  one (it is skipped), so a host that never answers holds one thread, not one per round.
- A late call is not waited for; what it does itself when it returns still happens (a refresh then
  records what libvirt said at that moment; no newer call of that host can have started meanwhile).
  Only its return value is dropped.
- A call in flight longer than STALLED_S means the host's libvirt is not answering: failure detection
  judges it so (`stalled`).
- Inside a transaction (tests) other threads could not see the rows: calls run inline, unbounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a round waits for one host. Above the connect timeout (5 s by default), so a host that is down
# is found so (and judged) in the round that asked it; well under the watcher's lease (20 s), so a round
# with a stalled host still renews it even if two of its steps each meet a newly stalled host.
WAIT_S = 8.0
# How long a call may hang before its host counts as not answering. A sound host's call can wait 30 s:
# libvirt's QEMU driver waits that long for a domain's job (a move in or out of it) before it gives up,
# and the prediction bench's moves aborted at their 30 s timeout made a refresh of the target wait past
# 8 s (its host was then judged suspect and refused the next move). Longer than that, with a margin.
STALLED_S = 45.0

_lock = threading.Lock()
_in_flight: dict[str, float] = {}  # host URI -> when its call started (time.monotonic())


def busy() -> set[str]:
    """Hosts with a call still in flight."""
    with _lock:
        return set(_in_flight)


def stalled() -> set[str]:
    """Hosts whose call has been in flight longer than STALLED_S.

    Failure detection counts them as not answering: a libvirtd that accepts connections but never replies
    would otherwise keep the state of its last refresh, "online", for ever."""
    now = time.monotonic()
    with _lock:
        return {uri for uri, since in _in_flight.items() if now - since >= STALLED_S}


def run(calls: dict[str, Callable[[], T]], wait_s: float | None = None) -> dict[str, T]:
    """Call each host's function on its own thread; return the values of those done within `wait_s`.

    Hosts missing from the answer were skipped (busy) or are late; a function should not raise (one that
    does is logged and missing too)."""
    if connection.in_atomic_block:
        return {uri: call() for uri, call in calls.items()}
    wait_s = WAIT_S if wait_s is None else wait_s
    done: dict[str, T] = {}
    threads: dict[str, threading.Thread] = {}
    for uri, call in calls.items():
        with _lock:
            if uri in _in_flight:
                log.debug("%s: still busy with a call of %.0f s ago; skipped", uri, time.monotonic() - _in_flight[uri])
                continue
            _in_flight[uri] = time.monotonic()
        threads[uri] = threading.Thread(
            target=_call, args=(uri, call, done, wait_s), name=f"host-call {uri}", daemon=True
        )
        threads[uri].start()
    until = time.monotonic() + wait_s
    for thread in threads.values():
        thread.join(max(0.0, until - time.monotonic()))
    with _lock:  # a call finishing from now on is late: its value lands in a dict nobody reads
        answered = {uri: done[uri] for uri in threads if uri in done}
        for uri in threads.keys() - answered.keys():
            if uri in _in_flight:
                log.warning("%s: libvirt has not answered in %.0f s; this round goes on without it", uri, wait_s)
        done.clear()
    return answered


def _call(uri: str, call: Callable[[], T], done: dict[str, T], wait_s: float) -> None:
    started = time.monotonic()
    answered = False
    try:
        value = call()
        answered = True
    except Exception:
        log.exception("%s: call failed", uri)
    finally:
        connection.close()  # this thread's own DB connection; don't leak it
        with _lock:  # one step with the answer, so the round sees the call either in flight or answered
            _in_flight.pop(uri, None)
            if answered:
                done[uri] = value
    if time.monotonic() - started > wait_s:
        log.info("%s: libvirt answered after %.0f s (too late for its round)", uri, time.monotonic() - started)
