"""sanlock fences a guest on shared storage: while its QEMU runs on one host, the other host cannot start
it; once that QEMU is gone, it can; live and offline moves hand the lease over (docs/ha.md).

The module brings the lab up in sanlock mode (every guest then carries a <lease>) and puts it back in the
mode it found at the end. Profile-independent: libvirt and sanlock decide, no job queue or database.
"""

import os
import signal
import time

import pytest

import lab as kvmlab
from hosts.drivers import libvirt as driver
from hosts.drivers.types import MigrationOptions
from lab import guests, sanlock
from lab.config import sanlock_host_id

pytestmark = pytest.mark.once

NAME = "lab-g1"


@pytest.fixture(scope="module")
def slab(lab):
    before = kvmlab.status()["lock_manager"] or "none"
    kvmlab.up(lock_manager="sanlock")
    yield lab
    # Initial placement in sanlock mode, then the mode the session found (others must not meet leases).
    kvmlab.reset()
    kvmlab.up(lock_manager=before)


def _qemu_pid(slab, host: str) -> int:
    return int((slab.paths.host_dir(host) / f"root/run/libvirt/qemu/{NAME}.pid").read_text().strip())


def _start_refusal(uri: str) -> str:
    """Start the guest on `uri`; the refusal's text, or "" when it started."""
    try:
        guests.start_guest(uri, NAME)
    except kvmlab.LabError as err:
        return str(err)
    return ""


def _owner(slab) -> str:
    return sanlock.host_id_owner(int(sanlock.read_leader(slab.paths, NAME)["owner_id"]))


def _lver(slab) -> int:
    return int(sanlock.read_leader(slab.paths, NAME)["lver"])


def test_a_second_start_on_the_other_host_is_refused_while_the_first_runs(slab):
    src = slab.current_host(NAME)
    dst = slab.other_host(src)
    xml = slab.paths.domain_xml(NAME)
    assert "<lease>" in xml.read_text()
    before = slab.wait_heartbeat(NAME, timeout=60)
    mark = slab.console_offset(NAME)
    assert _owner(slab) == src

    guests.virsh(slab.uri(dst), "define", str(xml))
    try:
        refusal = _start_refusal(slab.uri(dst))
    finally:
        guests.virsh(slab.uri(dst), "undefine", NAME, check=False)

    assert "Failed to acquire lock" in refusal, refusal
    assert slab.running_on(NAME) == [src]
    assert _owner(slab) == src
    # One writer throughout: the first QEMU neither rebooted nor stopped, and its disk beat goes on.
    assert slab.assert_kept_running(NAME, since_offset=mark) > before
    assert slab.disk_heartbeat(NAME) > before


def test_after_its_qemu_is_killed_the_other_host_gets_the_lease_and_starts_it(slab):
    src = slab.current_host(NAME)
    dst = slab.other_host(src)
    lver = _lver(slab)
    guests.virsh(slab.uri(dst), "define", str(slab.paths.domain_xml(NAME)))
    guests.virsh(slab.uri(src), "undefine", NAME)  # its transient QEMU runs on until killed
    mark = slab.console_offset(NAME)

    os.kill(_qemu_pid(slab, src), signal.SIGKILL)
    # sanlock frees the lease when it sees its holder exit: until then a start is refused, never let through.
    deadline = time.monotonic() + 30
    while refusal := _start_refusal(slab.uri(dst)):
        assert "Failed to acquire lock" in refusal, refusal
        assert time.monotonic() < deadline, refusal
        time.sleep(0.25)

    assert slab.running_on(NAME) == [dst]
    assert _owner(slab) == dst
    assert _lver(slab) > lver
    assert slab.wait_heartbeat(NAME, after_offset=mark, timeout=60) >= 1


def test_live_and_offline_moves_hand_the_lease_over(slab):
    uuid = slab.guest_uuids[NAME]
    src = slab.current_host(NAME)
    dst = slab.other_host(src)
    slab.wait_heartbeat(NAME, timeout=60)
    lver = _lver(slab)
    mark = slab.console_offset(NAME)

    driver.migrate(slab.uri(src), slab.uri(dst), uuid, MigrationOptions(live=True))

    assert slab.running_on(NAME) == [dst]
    assert _owner(slab) == dst
    assert _lver(slab) > lver
    slab.assert_kept_running(NAME, since_offset=mark)

    guests.virsh(slab.uri(dst), "destroy", NAME)
    assert int(sanlock.read_leader(slab.paths, NAME)["owner_id"]) in (0, sanlock_host_id(dst))
    driver.migrate(slab.uri(dst), slab.uri(src), uuid, MigrationOptions(live=False))
    mark = slab.console_offset(NAME)
    assert _start_refusal(slab.uri(src)) == ""

    assert slab.running_on(NAME) == [src]
    assert _owner(slab) == src
    assert slab.wait_heartbeat(NAME, after_offset=mark, timeout=60) >= 1
