"""The guest-migration state machine, pure (no Django, no libvirt): which moves are legal.

services.transition() enforces it with a compare-and-set in the database; this module only answers
"may X become Y" and "which controls fit this job", so it is unit-tested without a database.
"""

from __future__ import annotations

from migrations_app.choices import ACTIVE_STATES, TERMINAL_STATES, Kind, State

TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.PENDING, State.CANCELLED, State.FAILED}),
    State.PENDING: frozenset({State.RUNNING, State.CANCELLED, State.FAILED}),
    State.RUNNING: frozenset({State.CANCELLING, State.SUCCEEDED, State.FAILED, State.CANCELLED}),
    # An abort can lose the race against a finishing migration: then libvirt says SUCCEEDED.
    State.CANCELLING: frozenset({State.CANCELLED, State.SUCCEEDED, State.FAILED}),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
}


class IllegalTransition(ValueError):
    """The state machine does not allow this move."""


def can_transition(current: str, new: str) -> bool:
    return State(new) in TRANSITIONS[State(current)]


def sources_of(new: str) -> frozenset[State]:
    """Every state from which `new` may be reached: the `state__in` of the compare-and-set."""
    return frozenset(s for s, targets in TRANSITIONS.items() if State(new) in targets)


def check(current: str, new: str) -> None:
    if not can_transition(current, new):
        raise IllegalTransition(f"a guest migration cannot go from {current} to {new}")


def is_active(state: str) -> bool:
    return State(state) in ACTIVE_STATES


def is_terminal(state: str) -> bool:
    return State(state) in TERMINAL_STATES


def controls(state: str, kind: str, allow_postcopy: bool, postcopy_started: bool = False) -> frozenset[str]:
    """Operator controls that fit a job right now: subset of {"cancel", "bandwidth", "postcopy"}."""
    s = State(state)
    out: set[str] = set()
    if s in (State.PENDING, State.QUEUED, State.RUNNING):
        out.add("cancel")
    if s == State.RUNNING and Kind(kind) == Kind.LIVE and not postcopy_started:
        out.add("bandwidth")
        if allow_postcopy:
            out.add("postcopy")
    if postcopy_started:
        out.discard("cancel")  # after the switch the target owns the guest: aborting could lose it
    return frozenset(out)
