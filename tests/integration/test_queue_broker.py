"""kvmcluster.queue_broker: an enqueue wakes the waiting pusher instead of leaving it to sleep out its poll."""

import threading

import pytest
from django.db import connection, transaction
from django_q.conf import Conf

from kvmcluster import queue_broker


@pytest.fixture
def broker():
    b = queue_broker.WakeableORM(list_key="kvmcluster-test-wakeups")
    yield b
    if b._listener is not None:
        b._listener.close()


def _start_pusher(broker) -> tuple[threading.Thread, list]:
    """django-q2's pusher loop, in a thread: dequeue until a task comes."""
    assert broker._listen() is not None  # bound before anything is enqueued
    got: list = []

    def pusher() -> None:
        try:
            while not got:
                got.extend(broker.dequeue() or [])
        finally:
            connection.close()

    thread = threading.Thread(target=pusher, daemon=True)
    thread.start()
    return thread, got


@pytest.mark.django_db(transaction=True)
def test_an_enqueued_task_reaches_a_pusher_waiting_out_a_long_poll(broker, monkeypatch):
    monkeypatch.setattr(Conf, "POLL", 120)  # without the wake-up, the pusher would sleep two minutes
    thread, got = _start_pusher(broker)
    pk = queue_broker.WakeableORM(list_key=broker.list_key).enqueue("payload")  # as the request's on_commit
    thread.join(timeout=30)
    assert not thread.is_alive(), "the pusher slept through the enqueue"
    assert got == [(pk, "payload")]


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_in_a_transaction_wakes_the_pusher_when_it_commits(broker, monkeypatch):
    """django-q2's scheduler enqueues inside its transaction: woken before the commit, the pusher
    would find nothing and go back to sleep for the whole poll."""
    monkeypatch.setattr(Conf, "POLL", 120)
    thread, got = _start_pusher(broker)
    with transaction.atomic():
        pk = queue_broker.WakeableORM(list_key=broker.list_key).enqueue("scheduled")
        thread.join(timeout=1)
        assert thread.is_alive() and not got  # nothing to see yet
    thread.join(timeout=30)
    assert not thread.is_alive(), "the pusher slept through the commit"
    assert got == [(pk, "scheduled")]


@pytest.mark.django_db
def test_a_second_cluster_on_the_same_database_polls_instead(broker):
    assert broker._listen() is not None
    second = queue_broker.WakeableORM(list_key=broker.list_key)
    assert second._listen() is None and second._listen_failed


@pytest.mark.django_db
def test_an_enqueue_with_no_cluster_running_still_queues_the_task(broker):
    """Nobody is bound to the wake-up address (refused): the task waits in its row for a cluster."""
    pk = broker.enqueue("for later")
    assert broker.get_connection().filter(pk=pk, payload="for later").exists()
