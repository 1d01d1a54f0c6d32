"""Whether a live move converges, decided from synthetic libvirt sample series (no DB, no libvirt).

The series are shaped like the lab's: pass 1 copies all memory; at each later pass `remaining` jumps to
what the guest dirtied meanwhile and then falls while it is sent.
"""

from migrations_app.convergence import Convergence, Sample, stalled, verdicts

MIB = 1 << 20


def pass_samples(iteration: int, start_mib: float, *, sent_mibps: float, dirty_mibps: float, n: int = 3):
    """`n` samples of one pass that begins with `start_mib` left and sends a third of it per sample."""
    return [
        Sample(iteration, int(start_mib * MIB * (1 - k / n)), int(sent_mibps * MIB), int(dirty_mibps * MIB))
        for k in range(n)
    ]


def converging() -> list[Sample]:
    """64 MiB sent at 16 MiB/s while the guest dirties 4 MiB/s: every pass starts with a quarter of the last."""
    series = pass_samples(1, 64, sent_mibps=16, dirty_mibps=0, n=8)  # dirty rate reads 0 in pass 1
    start = 16.0
    for it in range(2, 6):
        series += pass_samples(it, start, sent_mibps=16, dirty_mibps=4)
        start /= 4
    return series


def stalling(dirty_mibps: float = 4.0, sent_mibps: float = 4.0) -> list[Sample]:
    """An 8 MiB buffer rewritten faster than a pass can send it: each pass starts with all of it again."""
    series = pass_samples(1, 40, sent_mibps=sent_mibps, dirty_mibps=0, n=8)
    for it in range(2, 7):
        series += pass_samples(it, 8, sent_mibps=sent_mibps, dirty_mibps=dirty_mibps)
    return series


def test_a_converging_move_is_never_called_stalled_although_remaining_jumps_at_each_pass():
    series = converging()
    # the jump the old check ("remaining 5 % above its lowest") took for a stall
    assert series[8].remaining > 1.05 * min(s.remaining for s in series[:8])
    assert not any(verdicts(series))


def test_remaining_that_stops_shrinking_while_dirtying_as_fast_as_sending_is_a_stall():
    v = verdicts(stalling())
    assert v[-1]
    # not before passes 2, 3 and 4 have each begun with as much as the one before (two pass changes)
    first = v.index(True)
    assert stalling()[first].iteration == 4


def test_the_measured_dirty_rate_a_hair_under_the_throughput_still_counts():
    # the lab measured 15.8-15.9 MiB/s dirty under a 16 MiB/s cap for a guest rewriting far more
    assert verdicts(stalling(dirty_mibps=15.8, sent_mibps=16))[-1]


def test_passes_that_do_not_shrink_while_the_dirty_rate_is_well_below_throughput_are_not_a_stall():
    # tiny last passes of a fast move: noisy sizes, nothing to warn about
    assert not any(verdicts(stalling(dirty_mibps=2, sent_mibps=100)))


def test_one_pass_that_does_not_shrink_is_not_enough():
    series = pass_samples(1, 40, sent_mibps=4, dirty_mibps=0)
    series += pass_samples(2, 8, sent_mibps=4, dirty_mibps=4) + pass_samples(3, 8, sent_mibps=4, dirty_mibps=4)
    assert not any(verdicts(series))


def test_the_warning_clears_as_soon_as_a_pass_starts_clearly_smaller():
    """The operator raised the bandwidth: the next pass starts with half as much, and the move converges."""
    series = stalling()
    series += pass_samples(7, 4, sent_mibps=64, dirty_mibps=4)
    v = verdicts(series)
    assert v[len(stalling()) - 1] and not v[-1]


def test_a_lower_dirty_rate_clears_it_without_waiting_for_a_pass():
    c = Convergence()
    for s in stalling():
        c.add(s)
    assert c.stalled
    assert not c.add(Sample(6, 2 * MIB, 64 * MIB, 4 * MIB))  # bandwidth raised to 64 MiB/s mid-pass


def test_a_pass_the_poller_missed_does_not_matter():
    series = pass_samples(1, 40, sent_mibps=4, dirty_mibps=0)
    for it in (2, 4, 5):  # pass 3 was shorter than the poll interval
        series += pass_samples(it, 8, sent_mibps=4, dirty_mibps=4)
    assert verdicts(series)[-1]


def test_each_pass_is_measured_at_its_highest_reading():
    c = Convergence()
    c.add(Sample(2, 6 * MIB, 4 * MIB, 4 * MIB))  # first sample a little after the pass began
    c.add(Sample(2, 8 * MIB, 4 * MIB, 4 * MIB))
    c.add(Sample(2, 3 * MIB, 4 * MIB, 4 * MIB))
    assert c.pass_starts == [8 * MIB]


def test_no_throughput_or_no_passes_is_no_verdict():
    assert not stalled([8 * MIB, 8 * MIB, 8 * MIB], dirty_rate_bps=4 * MIB, throughput_bps=0)
    assert not stalled([], dirty_rate_bps=4 * MIB, throughput_bps=4 * MIB)
    assert stalled([8 * MIB, 8 * MIB, 8 * MIB], dirty_rate_bps=4 * MIB, throughput_bps=4 * MIB)
