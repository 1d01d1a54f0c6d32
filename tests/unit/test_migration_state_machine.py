"""The guest-migration state machine: which moves are legal, which controls an operator gets."""

import pytest

from migrations_app import state_machine as sm
from migrations_app.choices import ACTIVE_STATES, TERMINAL_STATES, State


def test_terminal_states_go_nowhere():
    for s in TERMINAL_STATES:
        assert sm.TRANSITIONS[s] == frozenset()
        assert sm.is_terminal(s) and not sm.is_active(s)


def test_active_and_terminal_partition_all_states():
    assert ACTIVE_STATES | TERMINAL_STATES == set(State)
    assert not ACTIVE_STATES & TERMINAL_STATES


def test_running_is_only_reached_from_pending():
    # the task's first step is a compare-and-set from PENDING: nothing else may start a move
    assert sm.sources_of(State.RUNNING) == {State.PENDING}


def test_queued_job_waits_for_a_slot_before_it_can_run():
    assert not sm.can_transition(State.QUEUED, State.RUNNING)
    assert sm.can_transition(State.QUEUED, State.PENDING)


def test_a_cancel_can_lose_the_race_against_success():
    assert sm.can_transition(State.CANCELLING, State.SUCCEEDED)


def test_illegal_move_raises():
    with pytest.raises(sm.IllegalTransition):
        sm.check(State.SUCCEEDED, State.RUNNING)


def test_controls_of_a_running_live_move():
    assert sm.controls("running", "live", allow_postcopy=False) == {"cancel", "bandwidth"}
    assert sm.controls("running", "live", allow_postcopy=True) == {"cancel", "bandwidth", "postcopy"}


def test_no_bandwidth_or_postcopy_for_offline_and_no_cancel_after_postcopy():
    assert sm.controls("running", "offline", allow_postcopy=True) == {"cancel"}
    assert sm.controls("running", "live", allow_postcopy=True, postcopy_started=True) == frozenset()


def test_finished_job_has_no_controls():
    for s in TERMINAL_STATES:
        assert sm.controls(s, "live", allow_postcopy=True) == frozenset()
