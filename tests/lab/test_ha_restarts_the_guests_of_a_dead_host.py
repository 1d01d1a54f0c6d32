"""Redundancy on the real lab in sanlock mode (docs/ha.md): a host whose libvirtd dies but whose guests run on
stays suspect and nothing starts twice; a host that dies whole is declared failed after the grace period,
and its "restart on failure" guest runs on the other host once sanlock grants the lease there.

The watcher's round is played in the test (refresh, then failure detection, every 2 s); the recovery job
runs in this process when the detection enqueues it. Through the database, the job queue hook and the
audit trail, so it runs in both profiles.
"""

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

import lab as kvmlab
from accounts.models import AuditEvent
from hosts.models import Guest, Hypervisor
from hosts.services import ha, ha_detection, inventory
from lab import guests, hypervisors, sanlock
from migrations_app.services import recovery
from tests import factories
from tests.sanlock_mode import sanlock_mode

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

User = get_user_model()
HA_GUEST, OTHER = "lab-g1", "lab-g3"  # both start on hv-a; only lab-g1 is marked
GRACE_S = 20
# The crash test sets the grace period as docs/ha.md advises with sanlock: its dead-host time (8 x io timeout +
# its 60 s watchdog fire timeout). A shorter grace only makes the restart wait inside sanlock.
CRASH_GRACE_S = 8 * sanlock.IO_TIMEOUT_S + 60
LEASE_REFUSAL_WAIT_S = 10  # the split-brain attempt: three refusals 5 s apart are enough to show it holds


@pytest.fixture(scope="module")
def slab(lab):
    with sanlock_mode():
        yield lab


@pytest.fixture
def cluster(slab, settings, monkeypatch):
    settings.HA_LOCKSPACE = f"{sanlock.SANLOCK_LOCKSPACE}:{slab.paths.lockspace}"
    settings.HA_GRACE_SECONDS = GRACE_S
    settings.HA_LEASE_WAIT_SECONDS = 240
    slab.register()
    inventory.refresh_all()
    jobs: list[int] = []
    monkeypatch.setattr(recovery, "_enqueue", jobs.append)  # the worker's job, run below in this process
    operator = factories.make_user("operator", "operator", password=None)
    ha.guest_ha_set(guest=Guest.objects.get(name=HA_GUEST), restart=True, priority=5, actor=operator)
    return jobs


def _rounds(until, timeout: float, each=None) -> float:
    """The watcher's round every 2 s until `until()` is true, calling `each()` after every round; seconds it
    took. Fails on timeout."""
    t0 = time.monotonic()
    while not until():
        assert time.monotonic() - t0 < timeout, Hypervisor.objects.get(name="hv-a").health_note
        inventory.refresh_all()
        ha_detection.detect_failures()
        if each:
            each()
        time.sleep(2)
    return time.monotonic() - t0


def _one_counter(beats: list[int]) -> None:
    """One guest counting: each beat the last + 1. A second QEMU on the same disk would boot, read the disk's
    beat and count again from there: a repeat or a step back."""
    assert beats, "no heartbeat"
    assert beats == list(range(beats[0], beats[0] + len(beats))), beats


def _health() -> str:
    return Hypervisor.objects.get(name="hv-a").health


def test_a_host_whose_libvirtd_dies_but_whose_guests_run_stays_suspect_and_nothing_starts_twice(slab, cluster):
    before = slab.wait_heartbeat(HA_GUEST, timeout=60)
    mark = slab.console_offset(HA_GUEST)
    on_disk: list[int] = []

    def sample() -> None:
        beat = slab.disk_heartbeat(HA_GUEST)
        assert beat is not None, on_disk
        on_disk.append(beat)

    kvmlab.stop_host("hv-a")
    try:
        _rounds(lambda: _health() == "suspect", 30, each=sample)
        t_suspect = time.monotonic()
        _rounds(lambda: time.monotonic() - t_suspect > GRACE_S + 15, GRACE_S + 30, each=sample)

        hv = Hypervisor.objects.get(name="hv-a")
        assert hv.health == "suspect" and "still renews" in hv.health_note
        assert cluster == []  # no recovery was asked for
        assert HA_GUEST not in guests.domains(slab.uri("hv-b"))
        assert sanlock.host_id_owner(int(sanlock.read_leader(slab.paths, HA_GUEST)["owner_id"])) == "hv-a"
        assert slab.disk_heartbeat(HA_GUEST) > before  # still beating on hv-a

        # Had the detection got it wrong (hv-a declared failed while its QEMU runs), the recovery would be
        # refused by sanlock on hv-b: the guest is not started, and its page says why.
        Hypervisor.objects.filter(pk=hv.pk).update(health="failed")
        outcomes = recovery.recover_host(hv.pk, lease_wait_s=LEASE_REFUSAL_WAIT_S)
        assert outcomes[HA_GUEST].startswith("not started: the lock manager refused its lease on hv-b"), outcomes
        refused = AuditEvent.objects.get(action="guest.ha_restart", guest=HA_GUEST)
        assert refused.outcome == "refused" and "the old host may still run this guest" in refused.message
        assert HA_GUEST not in guests.domains(slab.uri("hv-b"))  # not started, its definition not left behind
        guest = Guest.objects.get(name=HA_GUEST)
        assert guest.hypervisor.name == "hv-a" and not guest.recovering
        client = Client()
        client.force_login(User.objects.get(username="operator"))
        page = client.get(f"/guests/{guest.pk}/").content.decode()
        assert "hv-a failed: <strong>not started</strong>" in page and "the old host may still run" in page
        print(f"\nsplit brain, recovery attempted anyway: {refused.message}")

        # One writer: the console counts on by one without a boot, the disk's beat (read every round) rises
        # and never steps back, and what the console showed last the disk had synced.
        console = slab.beats(HA_GUEST, after_offset=mark)
        _one_counter(console)
        assert "GUEST-BOOTED" not in slab.console_text(HA_GUEST, after_offset=mark)
        assert on_disk == sorted(on_disk) and on_disk[0] < on_disk[-1], on_disk
        assert on_disk[0] >= before and slab.disk_heartbeat(HA_GUEST) >= console[-1]
        print(f"\nsplit brain: console beats {console[0]}..{console[-1]}, disk beats read each round {on_disk}")
    finally:
        kvmlab.up(lock_manager="sanlock")  # hv-a's libvirtd back; it finds its guests running
    if _health() == "failed":  # stays out of placement until an operator clears it
        ha_detection.hypervisor_health_clear(hypervisor=hv, actor=User.objects.get(username="operator"))
    _rounds(lambda: _health() == "healthy", 30)
    assert guests.domains(slab.uri("hv-a")).get(HA_GUEST) == "running"  # clearing left the running guest be


def test_the_kept_definition_follows_an_edit_made_on_the_guests_host(slab, cluster):
    """What a recovery starts is the guest as its host last defined it: an edit made with virsh on hv-a
    reaches the kept copy in the watcher's next full round (ha.refresh_kept_definitions), lease and all."""
    note = "edited on hv-a by the HA test"
    assert note not in Guest.objects.get(name=HA_GUEST).definition_xml
    guests.virsh(slab.uri("hv-a"), "desc", HA_GUEST, "--config", note)
    assert ha.refresh_kept_definitions() == [HA_GUEST]
    kept = Guest.objects.get(name=HA_GUEST).definition_xml
    assert f"<description>{note}</description>" in kept and "<lease>" in kept
    assert ha.refresh_kept_definitions() == []  # the same definition again: nothing written


def test_a_dead_host_is_failed_after_the_grace_period_and_its_ha_guest_runs_on_the_other(slab, cluster, settings):
    settings.HA_GRACE_SECONDS = CRASH_GRACE_S
    slab.wait_heartbeat(HA_GUEST, timeout=60)
    synced = slab.disk_heartbeat(HA_GUEST)
    t0 = time.monotonic()
    kvmlab.crash_host("hv-a")

    to_failed = _rounds(lambda: _health() == "failed", CRASH_GRACE_S + 60)
    assert cluster == [Hypervisor.objects.get(name="hv-a").pk]  # detection asked for the recovery job
    # The guest's QEMU is dead: its disk holds the last beat it synced, and every beat its console showed
    # was synced before it was shown.
    last_synced = slab.disk_heartbeat(HA_GUEST)
    last_shown = slab.heartbeat(HA_GUEST)
    assert synced is not None and last_synced is not None and last_shown is not None
    assert synced <= last_synced and last_shown <= last_synced, (synced, last_shown, last_synced)
    mark = slab.console_offset(HA_GUEST)
    outcomes = recovery.recover_host(cluster[0])
    total = time.monotonic() - t0

    assert outcomes == {HA_GUEST: "started on hv-b"}, outcomes
    assert total <= CRASH_GRACE_S + 30, f"running on hv-b {total:.1f} s after the crash (grace {CRASH_GRACE_S} s)"
    assert guests.domains(slab.uri("hv-b")).get(HA_GUEST) == "running"
    assert hypervisors.qemu_pids(slab.paths, "hv-a") == []  # hv-a's libvirtd is dead: its QEMUs, by PID
    assert OTHER not in guests.domains(slab.uri("hv-b"))  # not marked: left alone
    assert sanlock.host_id_owner(int(sanlock.read_leader(slab.paths, HA_GUEST)["owner_id"])) == "hv-b"
    assert Guest.objects.get(name=HA_GUEST).hypervisor.name == "hv-b"
    # On hv-b the guest read that beat from the shared disk at boot and counts on from the next one.
    slab.wait_heartbeat(HA_GUEST, after_offset=mark, timeout=60)
    first_beat = time.monotonic() - t0
    slab.wait_heartbeat(HA_GUEST, above=last_synced + 3, after_offset=mark, timeout=30)
    assert f"DISK vda holds beat {last_synced}: counting on" in slab.console_text(HA_GUEST, after_offset=mark)
    after = slab.beats(HA_GUEST, after_offset=mark)
    _one_counter(after)
    assert after[0] == last_synced + 1, (last_synced, after)
    assert slab.disk_heartbeat(HA_GUEST) > last_synced  # hv-b's QEMU writes the next beats to the same disk
    restart = AuditEvent.objects.get(action="guest.ha_restart", guest=HA_GUEST)
    assert restart.outcome == "ok" and restart.target_hypervisor == "hv-b" and restart.actor is None
    assert AuditEvent.objects.filter(action="host.failed", hypervisor="hv-a").exists()
    print(
        f"\nHA timings: crash -> failed {to_failed:.1f} s (grace {CRASH_GRACE_S} s); crash -> running on hv-b"
        f" {total:.1f} s; crash -> beat {after[0]} on hv-b's console {first_beat:.1f} s; {restart.message}"
        f"\nbeats: read from the disk before the crash {synced}, last on the console {last_shown}, last on the"
        f" disk {last_synced}; after the restart {after[0]}..{after[-1]}, disk {slab.disk_heartbeat(HA_GUEST)}"
    )
