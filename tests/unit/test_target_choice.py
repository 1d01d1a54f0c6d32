"""'auto' picks a target from the pre-flight's verdicts and free memory, the same way every time."""

from migrations_app.planning.targets import Candidate, pick_target


def test_a_clean_preflight_beats_more_memory_with_warnings():
    picked = pick_target([Candidate(1, "hv-b", "warning", 64_000), Candidate(2, "hv-c", "ready", 8_000)])
    assert picked.name == "hv-c"


def test_among_equals_the_most_free_memory_then_the_name():
    cands = [
        Candidate(1, "hv-b", "ready", 8_000),
        Candidate(2, "hv-c", "ready", 9_000),
        Candidate(3, "hv-a", "ready", 9_000),
    ]
    assert pick_target(cands).name == "hv-a"


def test_nothing_when_every_target_is_blocked():
    assert pick_target([Candidate(1, "hv-b", "blocked", 64_000)]) is None
    assert pick_target([]) is None
