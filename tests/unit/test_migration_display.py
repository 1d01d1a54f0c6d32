"""What the progress card and the banner say about a job (migrations_app.display; unsaved rows, no DB)."""

import pytest

from hosts.models import Hypervisor
from migrations_app import display
from migrations_app.choices import Kind, Phase, State, WhereGuestIs
from migrations_app.models import MigrationJob

GIB = 1 << 30


def job(**kw) -> MigrationJob:
    fields = dict(
        pk=7,
        guest_name="web01",
        source=Hypervisor(pk=1, name="hv-a"),
        target=Hypervisor(pk=2, name="hv-b"),
        kind=Kind.LIVE,
        state=State.RUNNING,
        phase=Phase.PRECOPY,
        data_total=4 * GIB,
        data_remaining=3 * GIB,
        throughput_bps=100 << 20,
        dirty_rate_bps=10 << 20,
        iteration=2,
    )
    return MigrationJob(**(fields | kw))


@pytest.mark.parametrize(
    ("state", "where", "line"),
    [
        (State.FAILED, WhereGuestIs.SOURCE, "Failed and rolled back: the guest stayed on hv-a"),
        (State.FAILED, WhereGuestIs.TARGET, "Failed: the guest is on hv-b, but the move could not be verified"),
        (State.FAILED, WhereGuestIs.BOTH, "Failed: the guest is defined or running on both hv-a and hv-b"),
        (State.FAILED, WhereGuestIs.NOWHERE, "Failed: the guest is on neither hv-a nor hv-b"),
        (State.FAILED, WhereGuestIs.UNKNOWN, "Failed: where the guest is is unknown (a host did not answer)"),
        (State.CANCELLED, WhereGuestIs.SOURCE, "Cancelled: the guest stayed on hv-a"),
        (State.SUCCEEDED, WhereGuestIs.TARGET, "Done: the guest is on hv-b"),
    ],
)
def test_an_ended_job_says_how_it_ended_and_has_no_eta(state, where, line):
    j = job(state=state, where_guest_is=where, phase=Phase.DONE)
    assert display.phase_line(j) == line
    assert display.eta_text(j) is None


def test_an_active_job_shows_its_phase_and_pass_and_an_eta():
    j = job()
    assert display.phase_line(j) == "Copying memory (memory pass 2)"
    assert display.eta_text(j) == "about 34 s"  # 3 GiB at 100 - 10 MiB/s
    assert display.eta_text(job(state=State.PENDING, phase=Phase.WAITING, iteration=0)) == "–"
    assert display.phase_line(job(state=State.PENDING, phase=Phase.WAITING, iteration=0)) == "Waiting"


def test_the_stall_warning_shows_only_while_a_pre_copy_runs_and_never_on_a_succeeded_job():
    assert display.stall_note(job(remaining_grew=True)) == "now"
    assert display.eta_text(job(remaining_grew=True)) == "none while the move does not converge"
    assert display.stall_note(job(remaining_grew=False)) is None
    assert display.stall_note(job(remaining_grew=True, phase=Phase.SWITCHOVER)) is None
    assert display.stall_note(job(remaining_grew=True, state=State.CANCELLING)) is None  # no advice while it stops
    assert display.stall_note(job(remaining_grew=True, state=State.SUCCEEDED, phase=Phase.DONE)) is None
    assert display.stall_note(job(remaining_grew=True, state=State.CANCELLED, phase=Phase.DONE)) == "ended"
    assert display.stall_note(job(remaining_grew=True, state=State.FAILED, phase=Phase.DONE)) == "ended"


def test_the_banner_and_topology_figure_exists_only_for_a_live_move_under_way():
    assert display.move_percent(job()) == 25
    assert display.move_percent(job(state=State.CANCELLING)) == 25
    assert display.move_percent(job(data_total=0, data_remaining=0)) is None  # before libvirt's first pass
    assert display.move_percent(job(kind=Kind.OFFLINE)) is None
    assert display.move_percent(job(state=State.PENDING)) is None
    assert display.move_percent(job(state=State.SUCCEEDED)) is None


@pytest.mark.parametrize(
    "state, text, label",
    [
        (State.SUCCEEDED, "Moved hv-a → hv-b", "hv-a → hv-b"),
        (State.FAILED, "Move hv-a → hv-b failed", "hv-a → hv-b (failed)"),
        (State.CANCELLED, "Move hv-a → hv-b cancelled", "hv-a → hv-b (cancelled)"),
    ],
)
def test_a_finished_move_is_marked_on_its_guests_chart_with_its_route_and_outcome(state, text, label):
    from datetime import UTC, datetime

    ended = datetime(2026, 12, 2, 14, 3, tzinfo=UTC)
    mark = display.move_mark(job(state=state, finished_at=ended))
    assert (mark["text"], mark["label"], mark["at"]) == (text, label, ended.timestamp())
    assert mark["url"] == "/migrations/7/"
