"""libvirt measures a running guest's dirty rate (page sampling) and the round stores it on the guest.

A throwaway lab guest rewrites 24 MiB every second; an idle one rewrites nothing. A round starts the
measurements, waits their 2 s period out and stores them with the time it read them: the busy guest
measures well above the idle one, and both are dated now (QEMU's own stamp is the host's uptime, which
once dated every measurement 1970 and so made the predictions ignore them). A second round right after
measures nobody again. The guests keep running throughout (the dirty-bitmap mode, never used, killed a guest's QEMU
here); both are still running on hv-a afterwards by libvirt's word.
"""

import pytest
from django.utils import timezone

from hosts.drivers import libvirt as driver
from hosts.models import Guest
from hosts.services import dirty_rates
from tests.lab.migration_support import extra_guest

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.once]


@pytest.fixture
def busy_guest(mlab):
    with extra_guest(mlab, "lab-gdirty", "hv-a", start=True, fill=32, dirty=24, disk=False) as guest:
        yield guest


def test_a_round_measures_the_busy_guest_above_the_idle_one(mlab, lab, busy_guest):
    mlab.ensure_on("lab-g1", "hv-a")
    before = timezone.now()
    first = dirty_rates.measure_round()
    assert first["started"] >= 2 and first["stored"] >= 2, first
    busy, idle = Guest.objects.get(name="lab-gdirty"), Guest.objects.get(name="lab-g1")
    for guest in (busy, idle):
        assert guest.dirty_rate_at is not None and guest.dirty_rate_at >= before, guest.dirty_rate_at
    again = dirty_rates.measure_round()
    assert again["started"] == 0 and again["stored"] == 0, again
    print(f"dirty rate measured: busy {busy.dirty_rate_mibps:.1f} MiB/s, idle {idle.dirty_rate_mibps:.1f} MiB/s")
    assert busy.dirty_rate_mibps > 4 * max(idle.dirty_rate_mibps, 1.0)
    # both still run on hv-a, by libvirt's word
    assert driver.get_domain(lab.uri("hv-a"), str(busy.uuid)).state == "running"
    assert lab.running_on("lab-g1") == ["hv-a"]
