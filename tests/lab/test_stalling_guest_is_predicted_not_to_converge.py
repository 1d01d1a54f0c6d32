"""A guest that dirties memory faster than the cap sends is predicted "will not converge" before it moves,
and really does not.

A throwaway guest rewrites 40 MiB every second (diskless: under TCG the moved copy of a busy guest can
hang, docs/lab.md). libvirt measures its dirty rate (the dashboard's round; its page sampling is coarse on
a 256 MiB guest, docs/benchmarks.md, so the round is repeated until it reads at least the cap, as the
dashboard's next rounds would). The Migrate form, asked for a 3 MiB/s cap, shows "will not converge" for
hv-b, and the job requested with that cap keeps the same verdict. The move itself, given 60 s (its first
pass takes about 30 s, then every pass has to resend the 40 MiB buffer), does not succeed: it is aborted
at its completion timeout and the guest still runs on hv-a and only there, by libvirt's word.
"""

import re

import pytest
from django.urls import reverse

from hosts.drivers import libvirt as driver
from hosts.models import Guest
from hosts.services import dirty_rates
from tests.lab.migration_support import extra_guest

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.once]

CAP = 3


@pytest.fixture
def busy_guest(mlab):
    with extra_guest(mlab, "lab-gstall", "hv-a", start=True, fill=16, dirty=40, disk=False) as guest:
        yield guest


def test_the_form_says_will_not_converge_and_the_move_does_not(mlab, lab, client, busy_guest):
    readings = []
    for _ in range(4):
        Guest.objects.filter(pk=busy_guest.pk).update(dirty_rate_at=None)  # due now
        dirty_rates.measure_round()  # starts libvirt's measurement, waits its period out, stores it
        guest = Guest.objects.get(pk=busy_guest.pk)
        readings.append(guest.dirty_rate_mibps)
        if (guest.dirty_rate_mibps or 0) >= CAP:
            break
    assert (guest.dirty_rate_mibps or 0) >= CAP, f"libvirt never read the busy guest busy: {readings}"

    client.force_login(mlab.operator)
    page = client.get(reverse("guest-migrate", args=[guest.pk]), {"kind": "live", "bandwidth_mibps": CAP})
    assert page.status_code == 200
    hv_b = mlab.hv("hv-b")
    said = re.search(rf'id="target-{hv_b.pk}-prediction".*?</p>', page.content.decode(), re.S)
    assert said is not None, "no prediction for hv-b on the Migrate form"
    assert "will not converge" in said.group(0)
    assert f"the {CAP} MiB/s cap" in said.group(0) and "measured by libvirt" in said.group(0)

    job = mlab.request("lab-gstall", "hv-b", bandwidth_mibps=CAP, completion_timeout_s=60)
    assert job.prediction["converges"] is False
    assert job.prediction["summary"].startswith("will not converge")
    job = mlab.wait_done(job.pk, timeout=240)
    assert job.state != "succeeded", "predicted not to converge, yet it did"
    assert job.where_guest_is == "source" and "completion timeout" in job.error, job.error
    uuid = str(guest.uuid)
    assert driver.get_domain(lab.uri("hv-a"), uuid).state == "running"
    assert driver.find_domain(lab.uri("hv-b"), uuid) is None
