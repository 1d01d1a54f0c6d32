"""The lab's guests: each on exactly one host per libvirt, alive (heartbeat), disk on the NFS export."""

import time

import pytest

from hosts.drivers import libvirt as driver

pytestmark = pytest.mark.once


def _hosts_with(lab, name: str) -> dict[str, str]:
    """host -> power state, asking libvirt on both hosts through the project's driver."""
    uuid = lab.guest_uuids[name]
    found = {}
    for host_name, uri in lab.uris.items():
        info = driver.find_domain(uri, uuid)
        if info is not None:
            found[host_name] = info.state
    return found


def _settled(lab, name: str, timeout: float = 60) -> dict[str, str]:
    """Mid-migration a guest is legitimately on two hosts (paused on one); the lab may be shared with
    another session's migration tests, so wait for libvirt to settle before judging."""
    deadline = time.monotonic() + timeout
    while True:
        found = _hosts_with(lab, name)
        if len(found) == 1 or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_each_running_guest_runs_on_exactly_one_host(lab):
    for name in lab.running_guests:
        found = _settled(lab, name)
        assert list(found.values()) == ["running"], f"{name}: {found}"


def test_cache_guest_is_defined_on_exactly_one_host(lab):
    # The lab leaves it shut off; other tests (offline moves) may start it, so only its uniqueness is asserted.
    assert len(_settled(lab, "lab-gcache")) == 1


def test_heartbeat_advances_on_serial_and_disk(lab):
    first = lab.wait_heartbeat("lab-g2", timeout=60)
    later = lab.wait_heartbeat("lab-g2", above=first + 1, timeout=30)
    assert later >= first + 2
    assert lab.disk_heartbeat("lab-g2") >= first


def test_disks_are_nfs_network_disks_on_the_export_with_cache_none(lab):
    for name in lab.running_guests:
        host_name = lab.current_host(name)
        disk = driver.get_domain(lab.uri(host_name), lab.guest_uuids[name]).disks[0]
        assert (disk.source_type, disk.source_protocol, disk.source_host) == ("network", "nfs", "127.0.0.1")
        assert disk.source == f"{lab.storage['export_path']}/{name}.qcow2"
        assert disk.cache == "none"


def test_cache_guest_has_writeback_disk(lab):
    disk = driver.get_domain(lab.uri(lab.current_host("lab-gcache")), lab.guest_uuids["lab-gcache"]).disks[0]
    assert disk.cache == "writeback"
