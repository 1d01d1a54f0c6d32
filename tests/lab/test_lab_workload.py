"""set_workload reboots a lab guest with a new fill/dirty on its kernel command line."""

import re

import pytest

from hosts.drivers import libvirt as driver
from lab import config

pytestmark = pytest.mark.once


def test_set_workload_reboots_guest_with_new_fill_and_dirty(lab):
    name = "lab-g3"
    mark = lab.console_offset(name)
    host_name = lab.set_workload(name, fill=4, dirty=1)
    try:
        assert "fill=4 dirty=1" in driver.domain_xml(lab.uri(host_name), lab.guest_uuids[name])
        boot = lab.console_text(name, after_offset=mark)
        booted = re.search(r"GUEST-BOOTED .* fill=4 dirty=1", boot)
        assert booted, boot
        # a fresh boot: its first beat follows the one its disk holds (lab/image.py), or is 1 on a new disk.
        # Only what the new boot printed counts: the old instance's last beat can land after the mark.
        since_boot = boot[booted.start() :]
        held = re.search(r"^DISK vda holds beat (\d+): counting on", since_boot, re.M)
        first = re.search(r"^HB (\d+) up=", since_boot, re.M)
        assert first, boot
        assert int(first.group(1)) == (int(held.group(1)) + 1 if held else 1), since_boot
        assert lab.running_on(name) == [host_name]
    finally:
        spec = config.guest(name)
        lab.set_workload(name, fill=spec.fill, dirty=spec.dirty, wait=False)  # nobody waits on its boot
