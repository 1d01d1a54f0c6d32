"""The inventory watcher: one holder at a time, periodic refresh, and refresh on libvirt events."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.models import Guest, Hypervisor, WorkerLease
from hosts.services import watcher
from tests.libvirt_nodes import NodeDomain, write_node
from tests.waiting import wait_for


@pytest.mark.django_db
def test_lease_has_one_holder_until_it_expires():
    assert watcher.take_lease("x", "worker-1")
    assert not watcher.take_lease("x", "worker-2")
    assert watcher.take_lease("x", "worker-1")  # renewing our own lease

    WorkerLease.objects.filter(name="x").update(expires_at=timezone.now() - timedelta(seconds=1))

    assert watcher.take_lease("x", "worker-2")
    assert WorkerLease.objects.get(name="x").holder == "worker-2"


@pytest.mark.django_db
def test_a_second_watcher_does_nothing_while_the_first_holds_the_lease():
    watcher.take_lease(watcher.LEASE_NAME, "someone-else")

    assert watcher.run_watcher(duration_s=0.5, interval_s=0.1) == 0


@pytest.mark.django_db(transaction=True)
def test_watcher_sees_a_lifecycle_event_before_the_next_periodic_round(tmp_path):
    guest = NodeDomain("evt01")
    uri = write_node(tmp_path / "host-a.xml", [guest])
    Hypervisor.objects.create(name="hv-a", uri=uri)
    runner = threading.Thread(target=watcher.run_watcher, kwargs={"duration_s": 6, "interval_s": 60}, daemon=True)
    runner.start()
    try:
        wait_for(lambda: Guest.objects.filter(name="evt01", power="running").exists())
        seen_at = Guest.objects.get(name="evt01").last_seen_at
        # After a round the watcher subscribes to the hosts' lifecycle events, then renews its lease: a lease
        # renewed after the round that saw the guest means the subscription is in place (a fixed sleep
        # here lost the race on a loaded machine).
        wait_for(lambda: WorkerLease.objects.get(name=watcher.LEASE_NAME).expires_at > seen_at + watcher.LEASE_TTL)

        driver.suspend(uri, guest.uuid)  # same process, same test:/// host as the watcher's

        # The periodic round is 60 s away: only the event can bring the new state this soon.
        wait_for(lambda: Guest.objects.get(name="evt01").power == "paused")
    finally:
        runner.join(10)
    assert not runner.is_alive()
    assert WorkerLease.objects.get(name=watcher.LEASE_NAME).holder == ""


@pytest.mark.django_db(transaction=True)  # the watcher closes stale connections between rounds
def test_a_watcher_chunk_hands_over_to_its_successor_only_if_it_held_the_lease(monkeypatch):
    from hosts import tasks

    queued = []
    monkeypatch.setattr(tasks, "WATCHER_CHUNK_SECONDS", 0.3)
    monkeypatch.setattr(tasks, "async_task", lambda func, **kw: queued.append(func))

    assert tasks.watch_inventory() >= 1
    assert queued == ["hosts.tasks.watch_inventory"]

    watcher.take_lease(watcher.LEASE_NAME, "another-worker")
    assert tasks.watch_inventory() == 0
    assert queued == ["hosts.tasks.watch_inventory"]  # no second chain


@pytest.mark.django_db
def test_a_lease_left_by_a_dead_worker_of_this_machine_is_taken_at_once():
    """A worker stopped mid-chunk never released its lease; its successor must not wait out the TTL.
    A live holder keeps it, and so does one on another machine (its PIDs mean nothing here)."""
    import os
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()  # a PID that existed and is gone
    here = socket.gethostname()
    assert watcher.take_lease(watcher.LEASE_NAME, f"{here}:{gone.pid}:dead")
    assert watcher.take_lease(watcher.LEASE_NAME, f"{here}:1:successor") is True
    assert watcher.take_lease(watcher.LEASE_NAME, f"{here}:{os.getpid()}:other") is False  # PID 1 is alive

    WorkerLease.objects.filter(name=watcher.LEASE_NAME).update(holder=f"other-machine:{gone.pid}:x")
    assert watcher.take_lease(watcher.LEASE_NAME, f"{here}:{os.getpid()}:other") is False


@pytest.mark.django_db(transaction=True, databases="__all__")  # a refresh pushes the topology
def test_a_moving_guests_own_events_leave_its_host_alone_until_the_move_ends(tmp_path):
    """A guest migration's lifecycle events are the move's (it records where the guest is when it
    settles): they refresh nothing while the move runs, and the host is refreshed once it has ended."""
    from hosts.models import InventoryRefreshStats

    moving, other = NodeDomain("mov01"), NodeDomain("still01")
    uri = write_node(tmp_path / "host-a.xml", [moving, other])
    hv = Hypervisor.objects.create(name="hv-a", uri=uri)
    runner = threading.Thread(target=watcher.run_watcher, kwargs={"duration_s": 8, "interval_s": 60}, daemon=True)
    runner.start()
    try:
        wait_for(lambda: Guest.objects.filter(name="mov01", power="running").exists())
        seen_at = Guest.objects.get(name="mov01").last_seen_at
        wait_for(lambda: WorkerLease.objects.get(name=watcher.LEASE_NAME).expires_at > seen_at + watcher.LEASE_TTL)
        Guest.objects.filter(name="mov01").update(migrating=True)  # what a guest migration's request does
        refreshes = InventoryRefreshStats.objects.get(hypervisor=hv).refreshes

        driver.suspend(uri, moving.uuid)  # an event of the moving guest
        time.sleep(1.5)  # the watcher's debounce and recheck, several times over
        assert InventoryRefreshStats.objects.get(hypervisor=hv).refreshes == refreshes

        Guest.objects.filter(name="mov01").update(migrating=False)  # the move settled
        wait_for(lambda: InventoryRefreshStats.objects.get(hypervisor=hv).refreshes > refreshes)
        assert Guest.objects.get(name="mov01").power == "paused"  # libvirt's word, once the move is over

        # another guest's event on the same host is not held back by a move
        Guest.objects.filter(name="mov01").update(migrating=True)
        driver.suspend(uri, other.uuid)
        wait_for(lambda: Guest.objects.get(name="still01").power == "paused")
    finally:
        runner.join(12)
    assert not runner.is_alive()


@pytest.mark.django_db(transaction=True, databases="__all__")  # the round's threads must see the rows
def test_a_host_whose_libvirt_stalls_costs_only_its_own_part_of_the_round(tmp_path, monkeypatch, settings):
    """A guest start waiting inside sanlock holds its host's libvirtd, and listing that host's domains waits
    as long (docs/ha.md, "Evidence"). The round must go on without that host: the other host refreshed, every
    host judged; that host gets no second call while the first waits, is judged suspect while its call hangs,
    and is refreshed again (and healthy) once it answers.
    The lab cannot stall on demand: hv-b's listing waits on an Event here (the only stand-in)."""
    from accounts.models import AuditEvent
    from hosts.models import InventoryRefreshStats
    from hosts.services import host_calls

    settings.HA_LOCKSPACE = ""  # the second signal is not under test
    a01, b01 = NodeDomain("a01"), NodeDomain("b01")
    a_uri = write_node(tmp_path / "host-a.xml", [a01])
    b_uri = write_node(tmp_path / "host-b.xml", [b01])
    Hypervisor.objects.create(name="hv-a", uri=a_uri)
    hv_b = Hypervisor.objects.create(name="hv-b", uri=b_uri)
    Hypervisor.objects.create(name="hv-c", uri="qemu+tcp://127.0.99.9/system")  # nobody listens: it is down
    hang, released = threading.Event(), threading.Event()
    stalled_calls = []
    real_listing = driver.list_domains

    def listing(uri):
        if uri == b_uri and hang.is_set() and not released.is_set():
            stalled_calls.append(uri)
            released.wait(30)
        return real_listing(uri)

    monkeypatch.setattr(driver, "list_domains", listing)
    monkeypatch.setattr(host_calls, "WAIT_S", 1.0)  # the round's wait for one host, short for the test
    monkeypatch.setattr(host_calls, "STALLED_S", 2.0)  # and how long a call hangs before its host is suspect
    runner = threading.Thread(target=watcher.run_watcher, kwargs={"duration_s": 10, "interval_s": 0.3}, daemon=True)
    runner.start()
    try:
        # hv-b answers its first refreshes (a host never contacted is not judged), then hangs
        wait_for(lambda: Hypervisor.objects.get(pk=hv_b.pk).state == "online", 10)
        hang.set()
        wait_for(lambda: stalled_calls, 10)
        # hv-c judged: failure detection ran although hv-b has not answered
        wait_for(lambda: AuditEvent.objects.filter(hypervisor="hv-c", action="host.suspect").exists(), 10)
        driver.suspend(a_uri, a01.uuid)
        wait_for(lambda: Guest.objects.filter(name="a01", power="paused").exists(), 10)  # hv-a: later rounds
        assert runner.is_alive() and not released.is_set()
        assert stalled_calls == [b_uri]  # one call in flight for hv-b, no new one per round
        # hv-b's libvirtd took the connection and never answered: its row still says online, but it is
        # judged as not answering once its call has hung for STALLED_S
        wait_for(lambda: AuditEvent.objects.filter(hypervisor="hv-b", action="host.suspect").exists(), 10)
        hv_b.refresh_from_db()
        assert (hv_b.state, hv_b.health) == ("online", "suspect")

        driver.suspend(b_uri, b01.uuid)
        released.set()  # hv-b answers
        # its late refresh, then a new one from a later round
        wait_for(lambda: InventoryRefreshStats.objects.filter(hypervisor=hv_b, refreshes__gte=2).exists(), 10)
        assert Guest.objects.get(name="b01").power == "paused"  # libvirt's word on hv-b
        wait_for(lambda: Hypervisor.objects.get(pk=hv_b.pk).health == "healthy", 10)
        assert AuditEvent.objects.filter(hypervisor="hv-b", action="host.healthy").exists()
    finally:
        released.set()
        runner.join(20)
    assert not runner.is_alive()
