"""Whether a host is healthy, suspect or failed: a pure judgement on two signals (docs/ha.md, section 3).

Signal 1: libvirt answers the inventory's refresh. Signal 2: the host's own lease in the sanlock lockspace
on shared storage keeps being renewed (its timestamp moves). sanlock renews it every 2 x io_timeout from
the host itself, over the storage path its guests' disks use, so a host that renews is running and can
write its guests' disks whatever libvirt says.

- healthy -> suspect: libvirt stops answering.
- suspect -> healthy: libvirt answers again.
- suspect -> failed: for the whole grace period libvirt has not answered AND the lease has not moved. A
  lease that moves keeps the host suspect (its guests may still run: a split brain in the making), and
  so does a lease nobody can read (no second signal means no agreement).
- failed stays failed, whatever the signals, until an operator clears it (its guests may have been
  started elsewhere; its stale definitions must not start again).
No database and no I/O here: hosts.services.ha_detection gathers the signals and stores the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

HEALTHY, SUSPECT, FAILED = "healthy", "suspect", "failed"


@dataclass(frozen=True)
class HostHealth:
    health: str
    since: datetime | None = None
    note: str = ""
    stamp: int | None = None  # the lockspace lease's timestamp last read
    progress_at: datetime | None = None  # when that timestamp last moved (or was first read)


def judge(prev: HostHealth, *, reachable: bool, stamp: int | None, now: datetime, grace_s: float) -> HostHealth:
    """The host's health after one round: `reachable` (libvirt answered), `stamp` (the lease timestamp
    read now; None when unreadable or no lockspace is configured)."""
    moved = stamp is not None and stamp != prev.stamp
    seen = replace(prev, stamp=stamp if stamp is not None else prev.stamp)
    if moved or (stamp is not None and prev.progress_at is None):
        seen = replace(seen, progress_at=now)
    if prev.health == FAILED:
        note = prev.note if not reachable else "libvirt answers again; stays failed until an operator clears it"
        return replace(seen, note=note)
    if reachable:
        if prev.health == SUSPECT:
            return replace(seen, health=HEALTHY, since=now, note="libvirt answers again")
        return seen
    if prev.health == HEALTHY:
        return replace(seen, health=SUSPECT, since=now, note="libvirt does not answer", progress_at=now)
    # Suspect: has the grace period passed with both signals agreeing?
    waited = (now - prev.since).total_seconds() if prev.since else 0.0
    if stamp is None:
        return replace(
            seen, note="libvirt does not answer; its lockspace lease cannot be read, so it is not declared failed"
        )
    quiet = (now - seen.progress_at).total_seconds() if seen.progress_at else 0.0
    if quiet < grace_s:
        if seen.progress_at and prev.since and seen.progress_at > prev.since:
            return replace(
                seen, note=f"libvirt does not answer, but its lease still renews ({quiet:.0f} s ago): the host runs"
            )
        return replace(seen, note=f"libvirt does not answer; lease quiet for {quiet:.0f} of {grace_s:.0f} s")
    if waited < grace_s:
        return replace(seen, note=f"libvirt does not answer for {waited:.0f} of {grace_s:.0f} s")
    return replace(
        seen,
        health=FAILED,
        since=now,
        note=f"no libvirt answer and no lease renewal for {min(waited, quiet):.0f} s (grace {grace_s:.0f} s)",
    )
