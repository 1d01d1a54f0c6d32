"""A lab guest started with burn=1 keeps its vCPU busy: libvirt's CPU time for it grows far faster than
for an idle lab guest on the same host. Both figures come from one bulk stats round per sample (the
driver's load_sample, what the load history records), two samples a few seconds apart."""

import time

import pytest

from hosts import load
from hosts.drivers import libvirt as driver
from tests.lab.migration_support import extra_guest

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.once]


def test_a_guest_with_burn_1_uses_far_more_cpu_than_an_idle_one(mlab, lab):
    mlab.ensure_on("lab-g1", "hv-a")  # the idle one: fill=16, dirty=0, no burn
    with extra_guest(mlab, "lab-gburn", "hv-a", start=True, fill=4, burn=1, disk=False) as busy:
        assert "burn=1" in driver.domain_xml(lab.uri("hv-a"), str(busy.uuid))
        assert "BURNING 1" in lab.console_text("lab-gburn", after_offset=0)
        before = driver.load_sample(lab.uri("hv-a"))
        time.sleep(5)
        after = driver.load_sample(lab.uri("hv-a"))

    seconds = (after.at_ns - before.at_ns) / 1e9

    def cpu(uuid: str) -> load.GuestCpu:
        g0 = next(g for g in before.guests if g.uuid == uuid)
        g1 = next(g for g in after.guests if g.uuid == uuid)
        figure = load.guest_cpu(g0, g1, seconds)
        assert figure is not None, uuid
        return figure

    burning, idle = cpu(str(busy.uuid)), cpu(lab.guest_uuids["lab-g1"])
    print(f"over {seconds:.1f} s: burn=1 {burning.pct_of_vcpus:.0f} % of its vCPU, idle {idle.pct_of_vcpus:.0f} %")
    # A spinning TCG vCPU thread gets what the host's cores spare (40 % of one on a loaded two-core machine,
    # docs/lab.md): the figure that matters is the burning guest against the idle one beside it.
    assert burning.pct_of_vcpus > 20
    assert burning.pct_of_vcpus > 3 * idle.pct_of_vcpus
