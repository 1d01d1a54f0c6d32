"""A plain libvirt live migration through the project's driver moves a lab guest, and it keeps running."""

import pytest

from hosts.drivers import libvirt as driver
from hosts.drivers.types import MigrationOptions

pytestmark = pytest.mark.once


def test_live_migration_moves_guest_and_heartbeat_keeps_counting(lab):
    name, uuid = "lab-g1", lab.guest_uuids["lab-g1"]
    src = lab.current_host(name)
    dst = lab.other_host(src)
    before = lab.wait_heartbeat(name, timeout=60)
    mark = lab.console_offset(name)

    driver.migrate(lab.uri(src), lab.uri(dst), uuid, MigrationOptions(live=True))

    assert lab.running_on(name) == [dst]
    assert driver.find_domain(lab.uri(src), uuid) is None  # persistent on dst, undefined on src
    # The serial log is shared by both QEMUs: a count that keeps rising means no reboot, no pause.
    after = lab.assert_kept_running(name, since_offset=mark)
    assert after > before + 2
    assert lab.disk_heartbeat(name) > before  # still writing to its NFS disk from the new host

    # And back, so later tests find the initial placement.
    mark = lab.console_offset(name)
    driver.migrate(lab.uri(dst), lab.uri(src), uuid, MigrationOptions(live=True))
    assert lab.running_on(name) == [src]
    assert lab.assert_kept_running(name, since_offset=mark) > after
