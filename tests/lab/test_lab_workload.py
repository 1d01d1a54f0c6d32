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
        assert re.search(r"GUEST-BOOTED .* fill=4 dirty=1", boot)
        assert re.search(r"^HB 1 ", boot, re.M)  # a fresh boot counts from 1
        assert lab.running_on(name) == [host_name]
    finally:
        spec = config.guest(name)
        lab.set_workload(name, fill=spec.fill, dirty=spec.dirty, wait=False)  # nobody waits on its boot
