"""Which tier answers a time range, and how intervals align."""

from datetime import UTC, datetime, timedelta

import pytest

from hosts.load_tiers import TIERS, bucket_start, tier_for

NOW = datetime(2026, 12, 2, 11, 7, 33, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ago", "resolution_s"),
    [
        (timedelta(minutes=5), 10),
        (timedelta(hours=1), 10),
        (timedelta(hours=1, seconds=1), 60),
        (timedelta(hours=24), 60),
        (timedelta(days=7), 600),
        (timedelta(days=90), 600),  # beyond every keep: the coarsest, which reaches furthest
    ],
)
def test_the_finest_tier_that_still_covers_the_range(ago, resolution_s):
    assert tier_for(NOW - ago, NOW).resolution_s == resolution_s


def test_intervals_start_on_whole_multiples():
    assert bucket_start(NOW, 10) == datetime(2026, 12, 2, 11, 7, 30, tzinfo=UTC)
    assert bucket_start(NOW, 60) == datetime(2026, 12, 2, 11, 7, tzinfo=UTC)
    assert bucket_start(NOW, 600) == datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


def test_each_tier_is_built_from_the_one_before():
    for fine, coarse in zip(TIERS, TIERS[1:], strict=False):
        assert coarse.resolution_s % fine.resolution_s == 0 and coarse.keep > fine.keep
