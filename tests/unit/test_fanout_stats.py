"""bench/fanout_stats.py: the figures bench/fanout.py prints, from what its viewers received."""

import math

from bench import fanout_stats as fs


def card(job: int, state: str, terminal: bool, sampled_at: int | None = None) -> str:
    stamp = f' data-sampled-at="{sampled_at}"' if sampled_at is not None else ' data-sampled-at=""'
    return (
        f'<section id="migration-{job}-progress"><span hidden class="migration-sample" data-job="{job}" '
        f'data-state="{state}" data-terminal="{int(terminal)}"{stamp}></span></section>'
    )


def row(guest: int, host: str, moving: bool) -> str:
    badge = ' <span class="badge badge--migrating">moving</span>' if moving else ""
    return f'<tr id="guest-{guest}-row"><th>web01{badge}</th><td><a href="/h/">{host}</a></td></tr>'


def test_p95_is_the_nearest_rank():
    assert fs.p95(list(range(1, 101))) == 95
    assert fs.p95([7.0]) == 7.0
    assert math.isnan(fs.p95([]))


def test_latency_counts_only_stamped_messages():
    record = [(1_050.0, card(1, "running", False, 1_000)), (2_000.0, card(1, "running", False)), (3_010.0, "x")]
    assert fs.latencies_ms(record) == [50.0]


def test_the_spread_is_the_time_one_push_takes_to_reach_everyone():
    a = [(1_010.0, card(1, "running", False, 1_000)), (1_300.0, card(1, "running", False, 1_250))]
    b = [(1_040.0, card(1, "running", False, 1_000))]
    c = [(1_025.0, card(1, "running", False, 1_000)), (1_302.0, card(1, "running", False, 1_250)), (9.0, "x")]
    assert sorted(fs.spreads_ms([a, b, c])) == [2.0, 30.0]


def test_every_viewer_got_everything_is_100_pct():
    a = [(1.0, "m1"), (2.0, "m2"), (3.0, "m2")]
    assert fs.delivered([a, list(a)]) == (6, 6)
    assert fs.pct(6, 6) == 100.0


def test_a_message_one_viewer_missed_counts_against_it():
    full = [(1.0, "m1"), (2.0, "m2"), (3.0, "m3"), (4.0, "m4")]
    short = [(1.0, "m1"), (3.0, "m3"), (4.0, "m4")]
    got, sent = fs.delivered([full, short])
    assert (got, sent) == (7, 8)
    assert fs.pct(got, sent) == 87.5


def test_a_repeated_message_counts_as_often_as_it_was_sent():
    twice = [(1.0, "same"), (2.0, "same")]
    once = [(1.0, "same")]
    assert fs.delivered([twice, once]) == (3, 4)


def test_no_viewers_or_nothing_sent_is_not_a_percentage():
    assert fs.delivered([]) == (0, 0)
    assert math.isnan(fs.pct(0, 0))


def test_the_job_page_ends_in_the_final_state_only_with_the_terminal_card_last():
    ended = [(1.0, card(7, "running", False, 1)), (2.0, card(7, "succeeded", True))]
    assert fs.job_ends_in(ended, 7, "succeeded")
    assert not fs.job_ends_in(ended, 7, "failed")
    assert not fs.job_ends_in(ended[:1], 7, "succeeded")
    assert not fs.job_ends_in([*ended, (3.0, card(7, "running", False, 2))], 7, "succeeded")  # overtaken
    assert not fs.job_ends_in(ended, 8, "succeeded")  # another job's cards


def test_the_topology_ends_with_the_guest_on_its_target_and_still():
    moved = [(1.0, row(3, "hv-a", True)), (2.0, "<span>badge 50 %</span>"), (3.0, "<ul>" + row(3, "hv-b", False))]
    assert fs.topology_ends_with(moved, 3, "hv-b")
    assert not fs.topology_ends_with(moved, 3, "hv-a")
    assert not fs.topology_ends_with(moved[:2], 3, "hv-b")  # never saw it land
    assert not fs.topology_ends_with([(1.0, row(3, "hv-b", True))], 3, "hv-b")  # still moving


def test_the_last_line_has_the_issue_s_shape():
    line = fs.result_line(viewers=200, delivered_pct=99.95, p95_ms_1=33.12, p95_ms_n=106.49, ok=199)
    assert line == "fanout viewers=200 delivered_pct=99.95 p95_ms_1=33.1 p95_ms_200=106.5 final_state_ok=199/200"
