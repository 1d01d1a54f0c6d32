"""How a move is settled from libvirt's view of both hosts, decided without the lab (no DB, no libvirt)."""

import pytest

from hosts.drivers.types import DomainInfo
from migrations_app.choices import State, WhereGuestIs
from migrations_app.models import MigrationJob
from migrations_app.orchestrator.outcome import ending, moved, place


def dom(state="running", persistent=True) -> DomainInfo:
    return DomainInfo(uuid="u", name="g1", state=state, persistent=persistent, vcpus=1, memory_mib=256)


def job(kind="live", state=State.RUNNING, cancelled_by_id=None, **options) -> MigrationJob:
    return MigrationJob(kind=kind, state=state, cancelled_by_id=cancelled_by_id, options=options)


# ------------------------------------------------------------------------------- where the guest is


def test_running_on_the_target_only_is_on_the_target():
    assert place(None, dom(), {}, live=True).where == WhereGuestIs.TARGET


def test_running_on_both_is_both_and_on_neither_is_nowhere():
    assert place(dom(), dom(), {}, live=True).where == WhereGuestIs.BOTH
    assert place(None, None, {}, live=True).where == WhereGuestIs.NOWHERE


def test_a_shut_off_transient_leftover_counts_for_nothing():
    assert place(dom("shutoff", persistent=False), dom(), {}, live=True).where == WhereGuestIs.TARGET


def test_an_offline_move_counts_definitions():
    assert place(None, dom("shutoff"), {}, live=False).where == WhereGuestIs.TARGET
    assert place(dom("shutoff"), None, {}, live=False).where == WhereGuestIs.SOURCE


def test_a_host_that_did_not_answer_never_has_the_guest():
    loc = place(None, None, {"target": "no answer"}, live=True)
    assert loc.where == WhereGuestIs.UNKNOWN and loc.target_error == "no answer"
    assert place(dom(), None, {"target": "no answer"}, live=True).where == WhereGuestIs.SOURCE


# ---------------------------------------------------------------------------------------- moved?


def test_a_live_move_moved_when_running_on_the_target_and_gone_from_the_source():
    assert moved(job(), place(None, dom(), {}, live=True))
    assert not moved(job(), place(dom(), dom(), {}, live=True))  # still running on the source


def test_a_kept_source_definition_does_not_spoil_a_move_the_operator_asked_to_keep():
    loc = place(dom("shutoff"), dom(), {}, live=True)
    assert not moved(job(), loc)
    assert moved(job(undefine_source=False), loc)


def test_nothing_is_moved_while_a_host_does_not_answer():
    assert not moved(job(), place(None, dom(), {"source": "timeout"}, live=True))


# ------------------------------------------------------------------------------------ the ending


def test_success_needs_libvirts_word_and_the_verification():
    loc = place(None, dom(), {}, live=True)
    state, where, error, message = ending(job(), loc, "", False, "hv-b: running")
    assert (state, where, error) == (State.SUCCEEDED, WhereGuestIs.TARGET, "")
    assert message == "verified by libvirt: hv-b: running"


def test_libvirt_saying_success_without_the_guest_on_the_target_is_a_failure():
    loc = place(dom(), None, {}, live=True)
    state, where, error, _ = ending(job(), loc, "", False, "hv-a: running; hv-b: not defined")
    assert state == State.FAILED and where == WhereGuestIs.SOURCE
    assert error == "libvirt reported success but verification failed: hv-a: running; hv-b: not defined"


def test_a_cancel_that_left_the_guest_on_the_source_is_cancelled():
    loc = place(dom(), None, {}, live=True)
    cancelling = job(state=State.CANCELLING, cancelled_by_id=7)
    state, where, error, message = ending(cancelling, loc, "operation aborted", True, "hv-a: running")
    assert (state, where, error) == (State.CANCELLED, WhereGuestIs.SOURCE, "operation aborted")
    assert message == "cancelled; hv-a: running"


@pytest.mark.parametrize("cancelled_by_id", [None, 7])
def test_an_abort_with_the_guest_elsewhere_is_a_failure(cancelled_by_id):
    """Cancelled only if someone cancelled it and the guest stayed: an abort nobody asked for
    (a timeout) or a guest that is not on the source is a failure with libvirt's message."""
    on_source = place(dom(), None, {}, live=True)
    nowhere = place(None, None, {}, live=True)
    assert ending(job(cancelled_by_id=None), on_source, "aborted", True, "x")[0] == State.FAILED
    state, where, error, _ = ending(job(cancelled_by_id=cancelled_by_id), nowhere, "aborted", True, "x")
    assert (state, where, error) == (State.FAILED, WhereGuestIs.NOWHERE, "aborted")
