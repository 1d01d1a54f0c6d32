"""Progress of a live move: every sample is pushed, the database gets one copy per DB_EVERY_S
(a fake clock; pushes and writes are recorded in memory, no DB, no channel layer)."""

import pytest

from hosts.drivers.types import JobStats
from migrations_app.choices import Phase
from migrations_app.models import MigrationJob
from migrations_app.orchestrator import progress
from migrations_app.orchestrator.progress import DB_EVERY_S, ProgressReporter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reporter(monkeypatch):
    pushed, stored = [], []
    monkeypatch.setattr(progress.events, "push_progress", lambda job, at: pushed.append(at))
    clock = Clock()
    rep = ProgressReporter(MigrationJob(pk=1, phase=Phase.SETUP), clock=clock)
    monkeypatch.setattr(rep, "persist", lambda stats=None: stored.append(clock.now))
    monkeypatch.setattr(rep, "_note_convergence", lambda stats: None)
    return rep, clock, pushed, stored


def stats(remaining: int, iteration: int = 1) -> JobStats:
    return JobStats(active=True, data_total=1 << 30, data_remaining=remaining, memory_bps=1 << 20, iteration=iteration)


def test_every_sample_is_pushed_and_the_db_gets_one_per_interval(reporter):
    rep, clock, pushed, stored = reporter
    for i in range(1, 11):  # 10 samples, 0.1 s apart: 1 s of progress
        rep.sample(stats((1 << 30) - i * (1 << 20)), sampled_at_ms=i)
        clock.now += 0.1
    assert pushed == list(range(1, 11))
    assert len(stored) == 2  # the first sample, then the one 0.5 s later
    assert stored[1] - stored[0] == pytest.approx(DB_EVERY_S)


def test_the_first_sample_is_stored_whatever_the_clock_reads(reporter):
    rep, clock, _pushed, stored = reporter
    clock.now = 0.0
    rep.sample(stats(1 << 30), sampled_at_ms=1)
    assert stored == [0.0]


def test_a_change_of_verdict_is_stored_at_once(reporter, monkeypatch):
    rep, clock, _pushed, stored = reporter
    rep.sample(stats(1 << 30), sampled_at_ms=1)
    monkeypatch.setattr(rep.convergence, "add", lambda sample: True)  # the convergence check says: stalled
    clock.now += 0.01
    rep.sample(stats(1 << 30, iteration=2), sampled_at_ms=2)
    assert len(stored) == 2 and rep.job.remaining_grew


def test_a_heartbeat_just_after_a_progress_copy_writes_nothing(reporter, monkeypatch):
    """The progress copy carries the heartbeat: a second write within DB_EVERY_S would only repeat it."""
    rep, clock, _pushed, stored = reporter
    beats = []
    monkeypatch.setattr(progress.MigrationJob.objects, "filter", lambda **kw: beats.append(clock.now) or _NoWrite())
    rep.sample(stats(1 << 30), sampled_at_ms=1)  # stored at once
    clock.now += DB_EVERY_S / 2
    rep.heartbeat()
    assert beats == []
    clock.now += DB_EVERY_S
    rep.heartbeat()  # no copy for a while (e.g. libvirt still setting up): the heartbeat writes
    assert beats == [clock.now]


class _NoWrite:
    def update(self, **fields):
        assert "heartbeat_at" in fields
