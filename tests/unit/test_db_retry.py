"""A worker's repeatable writes (latest figures, the settle's compare-and-set) survive a lost database
connection; nothing else is retried, and a database away for too long still fails the write (no DB)."""

import pytest
from django.db import IntegrityError, OperationalError

from migrations_app.orchestrator import dbretry


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch):
    monkeypatch.setattr(dbretry, "WAIT_S", 0)
    monkeypatch.setattr(dbretry, "forget_connection", lambda: None)


def flaky(failures: int, error: Exception):
    calls = []

    def write():
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "settled"

    return write, calls


def test_a_write_is_run_again_after_the_connection_was_lost():
    write, calls = flaky(2, OperationalError("server closed the connection unexpectedly"))
    assert dbretry.again_if_lost("#1 settle", write) == "settled"
    assert len(calls) == 3


def test_any_other_database_error_is_not_retried():
    write, calls = flaky(1, IntegrityError("duplicate key"))
    with pytest.raises(IntegrityError):
        dbretry.again_if_lost("#1 settle", write)
    assert len(calls) == 1


def test_a_database_away_for_too_long_fails_the_write():
    write, calls = flaky(10**6, OperationalError("connection refused"))
    with pytest.raises(OperationalError):
        dbretry.again_if_lost("#1 settle", write, give_up_after_s=0.05)
    assert len(calls) >= 1
