"""Is a live move converging? Decided from libvirt's progress samples alone (pure: no DB, no libvirt).

QEMU sends guest memory in passes. At the end of each pass it adds the pages the guest dirtied during
it, so `data_remaining` jumps up at every pass boundary even in a move that converges normally. The
earlier check ("remaining is 5 % above the lowest it has been") fired on that jump and called a
healthy move stuck. What says a move does not converge is the remaining data each pass *starts* with:
a converging move starts every pass with less than the one before (the pass is shorter, so fewer pages
get dirtied during it); a stalled one starts pass after pass with as much as before, because the guest
dirties memory at least as fast as it is sent.

So a move is stalled when, over the last STALLED_PASSES pass changes, no pass started with clearly less
than the one before, and the latest dirty rate is at least the throughput. Both are needed: the first
alone trips on the tiny, noisy last passes of a fast move; the second alone on one bursty sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# A pass that starts with at least 95 % of the previous pass's remaining data did not shrink it.
NOT_SHRINKING = 0.95
# "Dirty rate >= throughput", measured. When the guest rewrites a working set smaller than a pass
# (the usual stall: a busy buffer), every pass resends that set and QEMU's dirty rate (pages dirtied
# during the pass / its length) comes out equal to the throughput, a hair under or over it (the lab:
# 15.8-15.9 MiB/s dirty under a 16 MiB/s cap). 90 % keeps that case; a converging move is far below.
DIRTY_AT_LEAST = 0.9
# How many pass changes in a row must show no shrink ("across passes": one could be a burst).
STALLED_PASSES = 2


@dataclass(frozen=True)
class Sample:
    """What the decision needs of one libvirt jobStats sample."""

    iteration: int  # memory pass, 1 = the first full copy
    remaining: int  # bytes
    throughput_bps: int
    dirty_rate_bps: int


def stalled(pass_starts: Sequence[int], dirty_rate_bps: int, throughput_bps: int) -> bool:
    """The verdict: `pass_starts` are the remaining bytes each pass after the first began with, in order."""
    if throughput_bps <= 0 or dirty_rate_bps < DIRTY_AT_LEAST * throughput_bps:
        return False
    if len(pass_starts) < STALLED_PASSES + 1:
        return False
    recent = pass_starts[-(STALLED_PASSES + 1) :]
    return all(later >= NOT_SHRINKING * earlier for earlier, later in zip(recent, recent[1:], strict=False))


@dataclass
class Convergence:
    """Folds samples one at a time (the progress reporter keeps one per move); `stalled` is the verdict
    after the latest sample. Keeps one number per memory pass, not the samples."""

    pass_starts: list[int] = field(default_factory=list)
    iteration: int = 0
    stalled: bool = False

    def add(self, s: Sample) -> bool:
        if s.iteration >= 2:
            if s.iteration > self.iteration:
                # the first sample of a pass; a pass shorter than the poll interval is simply not seen
                self.pass_starts.append(s.remaining)
            elif self.pass_starts:
                # remaining only falls within a pass: its highest reading is the nearest to its start
                self.pass_starts[-1] = max(self.pass_starts[-1], s.remaining)
        self.iteration = max(self.iteration, s.iteration)
        self.stalled = stalled(self.pass_starts, s.dirty_rate_bps, s.throughput_bps)
        return self.stalled


def verdicts(samples: Iterable[Sample]) -> list[bool]:
    """The verdict after each sample of a series (for tests and the benchmark)."""
    c = Convergence()
    return [c.add(s) for s in samples]
