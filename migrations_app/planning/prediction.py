"""Will a move converge, and how long will it take? Predicted before anything moves (pure: plain numbers in).

A live move copies guest memory in passes. The first pass sends the memory in use; every later pass sends
what the guest dirtied during the pass before it. A pass is short when the one before was short, so the
remaining data shrinks pass after pass when the guest dirties memory more slowly than the link sends it,
and QEMU stops the guest for the switch-over once the rest fits in the allowed downtime. When the guest
dirties as fast as the link sends, the passes never shrink: only auto-converge (QEMU throttles the
guest's vCPUs harder each pass) or post-copy (the guest runs on the target and pulls the pages it still
lacks) end the move.

The model simulates exactly that, pass by pass, with three facts about QEMU's behaviour:
- what one pass can leave dirty is bounded by the working set the guest rewrites (at most its memory);
- auto-converge starts throttling once a pass leaves at least half of what it sent dirty again, at 20 %
  and 10 % more each pass up to 99 % (QEMU's cpu-throttle-initial / -increment / max defaults);
- post-copy switches after the first full pass; what is left is then pulled at link speed while the guest
  runs, and the guest pauses only for the switch itself.
Its constants are calibrated on real moves of the lab (bench/prediction.py, docs/planning.md): what a move
costs beside the memory, and how libvirt's page-sampling dirty rate relates to what a move then sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# QEMU's default max downtime when the operator leaves it unset.
DEFAULT_MAX_DOWNTIME_MS = 300
# Beside the memory: connecting, starting the target QEMU, the TLS handshake, the final handshake and
# verification. An idle guest sending 105 MiB at 8 MiB/s took 14.2 s on the lab: 13.1 s of memory and 1.1 s
# beside (bench/prediction.py, docs/planning.md).
SETUP_S = 1.0
# libvirt's page sampling reads a guest's dirty rate low against what QEMU counts during the move that
# follows (7 against 7.9, 5 against 7.3 MiB/s on the lab); the model scales a sampled rate by this.
SAMPLED_UNDER_READ = 1.3
# What the switch-over itself costs beyond sending the last dirty pages (device state, resuming).
SWITCHOVER_MS = 25.0
# libvirt's page sampling checks 512 pages per GiB of guest memory, so each sampled page stands for 2 MiB
# whatever the guest's size: a reading of R MiB/s over P s counted R x P / 2 changed pages, give or take
# their square root (docs/benchmarks.md, "A 1 s sampling period?"). A guest dirtying 8 MiB/s is judged on
# about 8 pages over 2 s, so its reading is good to about +/- 35 %.
SAMPLED_PAGE_MIB = 2.0
# QEMU's auto-converge defaults (migrate-set-parameters cpu-throttle-initial / -increment, and its max).
THROTTLE_INITIAL = 0.20
THROTTLE_STEP = 0.10
THROTTLE_MAX = 0.99
# QEMU starts throttling when a pass leaves this share of what it sent dirty again.
THROTTLE_TRIGGER = 0.5
# A move still copying after this many passes is called non-converging (QEMU itself would go on forever).
MAX_PASSES = 30
# The link speed assumed when none is known yet (no past move between the pair and no cap): about what a
# 1 GbE migration link carries. The Migrate form says when this default is the one in use.
DEFAULT_LINK_MIBPS = 112.0


@dataclass(frozen=True)
class MoveInputs:
    """What a live move's prediction needs, in MiB and MiB/s."""

    memory_mib: float  # guest memory in use: the first pass sends this
    dirty_mibps: float  # how fast the guest dirties memory (0 for an idle guest)
    link_mibps: float  # what the link between the two hosts carries, or the operator's cap
    max_downtime_ms: int = DEFAULT_MAX_DOWNTIME_MS
    auto_converge: bool = False
    allow_postcopy: bool = False
    working_set_mib: float | None = None  # what the guest rewrites; None = its whole memory
    # The dirty rate is libvirt's page sampling over this many seconds (0: another source). Sampling counts
    # each page that changed within its period once, so it also bounds the working set: the lab's guest
    # rewriting the same 24 MiB every 1.5 s read 14-15 MiB/s over 2 s, and a pass never left more than
    # those 24 MiB. (It also makes a guest that rewrites its set several times a period read low, which
    # SAMPLED_UNDER_READ covers; a 1 s period does not read closer, docs/planning.md.)
    sampled_over_s: float = 0.0
    completion_timeout_s: int = 0  # the move is aborted after this long (0: never)


@dataclass(frozen=True)
class Prediction:
    """The verdict shown before a move and stored with its job: `via` is how it ends ("as is",
    "auto-converge", "post-copy") or "" when it will not converge; `reason` says why in one line."""

    converges: bool
    via: str
    passes: int
    total_s: float
    downtime_ms: float
    reason: str
    # Non-empty when the verdict would flip within what a sampled dirty-rate reading can tell: the move is
    # a toss-up (docs/planning.md), and this says at which rate it flips.
    uncertain: str = ""

    def summary(self) -> str:
        return self._verdict() + (f"; uncertain: {self.uncertain}" if self.uncertain else "")

    def _verdict(self) -> str:
        if not self.converges:
            return f"will not converge: {self.reason}"
        if self.via == "offline":
            return f"≈ {self.total_s:.1f} s, offline: no memory to copy"
        how = "" if self.via == "as is" else f" with {self.via}"
        return f"≈ {self.total_s:.1f} s, {self.passes} pass{'es' if self.passes != 1 else ''}, converges{how}"


def predict_live(m: MoveInputs) -> Prediction:
    """Simulate the passes of a live move. Tries the move as is, then with the options the operator
    allowed (auto-converge, post-copy), and returns the first way that converges, or why none does."""
    if m.link_mibps <= 0:
        return Prediction(False, "", 0, 0.0, 0.0, "no link speed known")
    p = _verdict(m)
    return replace(p, uncertain=_uncertainty(m, p)) if m.sampled_over_s > 0 else p


def _verdict(m: MoveInputs) -> Prediction:
    return _within_timeout(m, _first_way(m))


def reading_range(rate_mibps: float, over_s: float) -> tuple[float, float]:
    """What a page-sampling reading of `rate_mibps` over `over_s` seconds can mean: +/- the square root of
    the pages it counted; a reading of no page at all may still hide one."""
    page_rate = SAMPLED_PAGE_MIB / over_s  # one sampled page in the period, as MiB/s
    pages = rate_mibps / page_rate
    spread = math.sqrt(pages) * page_rate if pages >= 1 else page_rate
    return max(0.0, rate_mibps - spread), rate_mibps + spread


def _uncertainty(m: MoveInputs, p: Prediction) -> str:
    """Why the verdict is a toss-up, or "": the move is predicted again at both ends of what the reading can
    mean, and a verdict that differs at either end is not one the reading can decide."""
    low, high = reading_range(m.dirty_mibps, m.sampled_over_s)
    for other in (high, low) if p.converges else (low, high):
        if _verdict(replace(m, dirty_mibps=other)).converges != p.converges:
            flips = "would converge"
            if p.converges:
                flips = "would not converge" + ("" if m.auto_converge else "; allow auto-converge to be sure")
            return (
                f"the sampled dirty rate of {m.dirty_mibps:.1f} MiB/s may be {low:.1f}–{high:.1f} "
                f"(from the few pages it counted), and at {other:.1f} MiB/s the move {flips}"
            )
    return ""


def _first_way(m: MoveInputs) -> Prediction:
    plain = _precopy(m, throttle=False)
    if plain.converges or not (m.auto_converge or m.allow_postcopy):
        return plain
    if m.auto_converge:
        throttled = _precopy(m, throttle=True)
        if throttled.converges:
            return throttled
    if m.allow_postcopy:
        return _postcopy(m)
    return Prediction(False, "", plain.passes, plain.total_s, 0.0, plain.reason + "; even auto-converge does not")


def _within_timeout(m: MoveInputs, p: Prediction) -> Prediction:
    """A move that would converge only after its completion timeout is aborted first: it does not end."""
    if not (p.converges and m.completion_timeout_s and p.total_s > m.completion_timeout_s):
        return p
    reason = f"it needs ≈ {p.total_s:.0f} s, more than the {m.completion_timeout_s} s completion timeout"
    return Prediction(False, "", p.passes, p.total_s, 0.0, reason)


def _dirtying(m: MoveInputs) -> tuple[float, float]:
    """(MiB/s, working set MiB) the passes see: a sampled rate scaled up, and bounded to what the sampling
    saw change within its period (see MoveInputs.sampled_over_s)."""
    rate = m.dirty_mibps
    working_set = min(m.working_set_mib if m.working_set_mib is not None else m.memory_mib, m.memory_mib)
    if m.sampled_over_s > 0:
        rate *= SAMPLED_UNDER_READ
        working_set = min(working_set, rate * m.sampled_over_s)
    return rate, working_set


def predict_offline(
    memory_mib: float, disk_copy_mib: float = 0.0, link_mibps: float = DEFAULT_LINK_MIBPS
) -> Prediction:
    """An offline move sends no memory: the definition (and any disk not on shared storage) moves, and the
    guest is down from its shutdown to its start on the target, which this does not count."""
    seconds = SETUP_S + (disk_copy_mib / link_mibps if link_mibps > 0 else 0.0)
    return Prediction(True, "offline", 0, seconds, 0.0, "the guest is shut off: only its definition moves")


def _precopy(m: MoveInputs, *, throttle: bool) -> Prediction:
    link = m.link_mibps
    budget_mib = link * m.max_downtime_ms / 1000.0  # what fits in the allowed pause
    rate, working_set = _dirtying(m)
    to_send = m.memory_mib
    elapsed = 0.0
    throttled = 0.0
    for passes in range(1, MAX_PASSES + 1):
        seconds = to_send / link
        elapsed += seconds
        dirty_rate = rate * (1.0 - throttled)
        left = min(dirty_rate * seconds, working_set)
        if left <= budget_mib:
            downtime = left / link * 1000.0 + SWITCHOVER_MS
            via = "auto-converge" if throttled else "as is"
            reason = f"the guest dirties {m.dirty_mibps:.3g} MiB/s, the link sends {link:g} MiB/s"
            return Prediction(True, via, passes, SETUP_S + elapsed + left / link, downtime, reason)
        if throttle and left >= THROTTLE_TRIGGER * to_send:
            throttled = THROTTLE_INITIAL if not throttled else min(THROTTLE_MAX, throttled + THROTTLE_STEP)
        to_send = left
    reason = (
        f"dirty rate {m.dirty_mibps:.3g} MiB/s against {link:g} MiB/s: {to_send:.0f} MiB stays dirty each pass, "
        f"more than the {m.max_downtime_ms} ms pause can send"
    )
    return Prediction(False, "", MAX_PASSES, SETUP_S + elapsed, 0.0, reason)


def _postcopy(m: MoveInputs) -> Prediction:
    """One full pass, then the switch: the guest runs on the target and the pages it dirtied during the
    first pass are pulled after it, at link speed."""
    first = m.memory_mib / m.link_mibps
    rate, working_set = _dirtying(m)
    pulled = min(rate * first, working_set)
    reason = "post-copy ends any move: after one pass the guest runs on the target"
    return Prediction(True, "post-copy", 1, SETUP_S + first + pulled / m.link_mibps, SWITCHOVER_MS, reason)


@dataclass(frozen=True)
class Sourced:
    """A figure a prediction used, and where it came from, said the way the form shows it."""

    value: float
    source: str
    sampled_over_s: float = 0.0  # a dirty rate from libvirt's page sampling over this period (MoveInputs)


# Past moves between the same two hosts that the link speed is learned from (the most recent ones).
LINK_SAMPLES = 5
# A dirty-rate measurement older than this is stale: the guest's workload may have changed.
DIRTY_RATE_MAX_AGE_S = 15 * 60


def link_speed(recent_throughputs_mibps: list[float], cap_mibps: int = 0) -> Sourced:
    """The operator's cap when one is set (a move never goes faster); else the median throughput of the
    last moves between the pair; else the stated default."""
    if cap_mibps > 0:
        return Sourced(float(cap_mibps), f"the {cap_mibps} MiB/s cap")
    recent = sorted(t for t in recent_throughputs_mibps[:LINK_SAMPLES] if t > 0)
    if recent:
        mid = len(recent) // 2
        median = recent[mid] if len(recent) % 2 else (recent[mid - 1] + recent[mid]) / 2
        return Sourced(median, f"median of the last {len(recent)} move(s) between these hosts")
    return Sourced(DEFAULT_LINK_MIBPS, f"no move between these hosts yet: assumed {DEFAULT_LINK_MIBPS:g} MiB/s (1 GbE)")


def memory_sent(configured_mib: float, past_sent_mib: list[float]) -> Sourced:
    """What a live move's first pass sends. QEMU sends a page holding only zeros as a few bytes, so a guest
    that has touched little of its memory sends far less than its size (the lab's 256 MiB guests holding
    32 MiB sent about 50 MiB, docs/planning.md). Every move sends the memory in use at least once, so the
    least that one of the guest's last moves sent is the figure, never more than its configured memory;
    with no move of the guest seen yet, its configured memory (the most a first pass can send)."""
    past = [m for m in past_sent_mib[:LINK_SAMPLES] if m > 0]
    if past:
        return Sourced(min(min(past), configured_mib), f"the least its last {len(past)} move(s) sent")
    return Sourced(configured_mib, "its configured size: no move of it seen yet")


def dirty_rate(
    measured_mibps: float | None,
    measured_age_s: float | None,
    last_move_mibps: float | None,
    sampled_over_s: float = 2.0,
) -> Sourced | None:
    """libvirt's own measurement (page sampling) while fresh; else what the guest's last move saw; else
    nothing (the form then says the prediction lacks it)."""
    if measured_mibps is not None and measured_age_s is not None and measured_age_s <= DIRTY_RATE_MAX_AGE_S:
        return Sourced(measured_mibps, f"measured by libvirt {measured_age_s / 60:.0f} min ago", sampled_over_s)
    if last_move_mibps is not None:
        return Sourced(last_move_mibps, "seen during the guest's last move")
    return None
