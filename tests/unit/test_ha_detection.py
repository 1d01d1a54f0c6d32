"""A host's health from two signals (hosts/ha_detection.py): suspect at once, failed only when libvirt and
the lockspace lease agree for the whole grace period, and failed stays failed."""

from datetime import UTC, datetime, timedelta

from hosts.ha_detection import FAILED, HEALTHY, SUSPECT, HostHealth, judge

T0 = datetime(2026, 12, 3, tzinfo=UTC)
GRACE = 60


def rounds(start: HostHealth, signals: list[tuple[float, bool, int | None]]) -> list[HostHealth]:
    """(seconds after T0, libvirt answered, lease stamp) per round; every health along the way."""
    seen, health = [], start
    for at, reachable, stamp in signals:
        health = judge(health, reachable=reachable, stamp=stamp, now=T0 + timedelta(seconds=at), grace_s=GRACE)
        seen.append(health)
    return seen


def test_a_host_whose_libvirt_stops_answering_is_suspect_at_once():
    after = rounds(HostHealth(HEALTHY), [(0, False, 100)])[-1]
    assert after.health == SUSPECT and after.since == T0


def test_a_dead_host_fails_only_after_the_grace_period_with_no_answer_and_no_renewal():
    seen = rounds(HostHealth(HEALTHY), [(t, False, 100) for t in range(0, 65, 5)])
    assert [h.health for h in seen if h.health == SUSPECT] == [SUSPECT] * 12  # 0 .. 55 s
    assert seen[-2].health == SUSPECT and seen[-1].health == FAILED  # at 60 s, not before
    assert seen[-1].since == T0 + timedelta(seconds=60) and "grace 60 s" in seen[-1].note


def test_a_host_whose_lease_still_renews_stays_suspect_however_long_libvirt_is_silent():
    seen = rounds(HostHealth(HEALTHY), [(t, False, 100 + t // 10) for t in range(0, 600, 5)])
    assert {h.health for h in seen} == {SUSPECT}
    assert "still renews" in seen[-1].note


def test_without_a_readable_lease_a_host_is_never_declared_failed():
    seen = rounds(HostHealth(HEALTHY), [(t, False, None) for t in range(0, 600, 5)])
    assert {h.health for h in seen} == {SUSPECT} and "cannot be read" in seen[-1].note


def test_renewals_that_stop_later_restart_the_count_from_the_last_renewal():
    signals = [(t, False, 100 + min(t, 40) // 10) for t in range(0, 200, 5)]  # lease moves until 40 s
    seen = rounds(HostHealth(HEALTHY), signals)
    first_failed = next(i for i, h in enumerate(seen) if h.health == FAILED)
    assert signals[first_failed][0] == 100  # 60 s after the last renewal, not 60 s after the suspicion


def test_a_suspect_host_that_answers_again_is_healthy_and_a_failed_one_stays_failed():
    back = rounds(HostHealth(HEALTHY), [(0, False, 100), (5, True, None)])[-1]
    assert back.health == HEALTHY and back.note == "libvirt answers again"
    failed = HostHealth(FAILED, since=T0, note="no libvirt answer")
    after = rounds(failed, [(300, True, None)])[-1]
    assert after.health == FAILED and "until an operator clears it" in after.note
