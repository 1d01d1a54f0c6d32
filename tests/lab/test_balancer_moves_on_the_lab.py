"""The balancer on the real lab, automatic mode: two guests burning CPU make hv-a hot; after the hold a round
starts the move itself, as an Operation of kind "balance" under the actor "balancer", and libvirt runs the
guest on hv-b. Then five minutes of rounds, each on a fresh real load sample, move nothing more: no guest
back to hv-a, no other move (the job rows are counted). docs/balancing.md ("On the lab").

The five-minute watch runs in the embedded profile only (the lab tier's usual profile), so a run of the
suite pays it once; in the production profile the move alone is checked."""

import os
import time

import pytest

from accounts.models import AuditEvent
from migrations_app.models import BalancerProposal, MigrationJob, Operation
from migrations_app.services import operations
from tests.lab.balancer_support import BURNERS, hot_hv_a, rounds_until, running_on, sample, set_policy, warm_up

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

PRODUCTION = bool(os.environ.get("DATABASE_URL"))
WATCH_S = 300
ROUND_EVERY_S = 10


def _wait_finished(op_id: int, timeout: float = 240) -> Operation:
    deadline = time.monotonic() + timeout
    while True:
        op = Operation.objects.get(pk=op_id)
        if op.is_terminal:
            return op
        if time.monotonic() > deadline:
            raise AssertionError(f"operation #{op_id} still {op.state}: {list(op.jobs.values_list('state', 'error'))}")
        operations.operation_advance(op_id)  # what the reconciler's schedule does
        time.sleep(0.5)


def automatic_move(mlab, lab) -> str:
    """hv-a hot -> the round's own move to hv-b, checked in libvirt and in the rows; returns the guest moved."""
    started = time.monotonic()
    now = warm_up(30)
    mark = set_policy("automatic", now)
    rnd, _ = rounds_until(lambda r: r.operation_id is not None, timeout=150)
    waited = time.monotonic() - started
    op = _wait_finished(rnd.operation_id)
    assert (op.kind, op.state, op.requested_by.username) == ("balance", "done", "balancer"), op.reasons
    job = MigrationJob.objects.select_related("requested_by", "source", "target").get()
    moved = job.guest_name
    assert moved in BURNERS and (job.source.name, job.target.name, job.kind, job.state) == (
        "hv-a", "hv-b", "live", "succeeded",
    )  # fmt: skip
    assert job.requested_by.username == "balancer"
    assert running_on(lab, moved) == ["hv-b"]  # libvirt's word
    assert BalancerProposal.objects.get(state="applied").operation_id == op.pk
    started_row = AuditEvent.objects.get(action="balancer.operation_started")
    assert started_row.actor_username == "balancer" and started_row.params["operation_id"] == op.pk
    assert AuditEvent.objects.filter(action="migration.succeeded", actor_username="balancer").exists()
    print(f"mark {mark} %, move started {waited:.0f} s after the burners ran: {op.plan['moves'][0]['headline']}")
    return moved


@pytest.mark.skipif(not PRODUCTION, reason="the embedded profile runs the move within the five-minute watch below")
def test_automatic_mode_moves_a_burning_guest_to_hv_b(mlab, lab):
    with hot_hv_a(mlab):
        automatic_move(mlab, lab)


@pytest.mark.skipif(PRODUCTION, reason="five minutes of rounds: run once per suite, in the embedded profile")
def test_automatic_mode_moves_a_burning_guest_and_nothing_moves_back_for_five_minutes(mlab, lab):
    with hot_hv_a(mlab):
        moved = automatic_move(mlab, lab)
        stayed = next(n for n in BURNERS if n != moved)
        rounds = 0
        deadline = time.monotonic() + WATCH_S
        while time.monotonic() < deadline:
            time.sleep(ROUND_EVERY_S)
            rnd = balancer_round_on_a_fresh_sample()
            rounds += 1
            assert not rnd.operation_id, f"round {rounds} started operation #{rnd.operation_id}: {rnd.notes}"
        print(f"{rounds} rounds over {WATCH_S} s after the move; last notes: {rnd.notes}")
        assert rounds >= WATCH_S // (ROUND_EVERY_S + 5)
        assert MigrationJob.objects.count() == 1 and Operation.objects.count() == 1
        assert BalancerProposal.objects.filter(state="applied").count() == 1
        assert running_on(lab, moved) == ["hv-b"] and running_on(lab, stayed) == ["hv-a"]


def balancer_round_on_a_fresh_sample():
    from migrations_app.services.balancer import balancer_round

    rnd = balancer_round(now=sample())
    assert rnd is not None
    return rnd
