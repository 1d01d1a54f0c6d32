"""Right after the worker starts, a guest moved behind the dashboard's back shows on its new host.

The inventory watcher used to wait for django-q2's scheduler (its first look comes ~30 s after the
cluster starts), so for the first half minute the topology missed out-of-band changes: a move with
`virsh migrate --live --p2p` took 27 s to show. Now every worker process starts the watcher when it
spawns. Real parts: the lab, daphne, `manage.py qcluster`, Chromium; the move is libvirt's own
(migrateToURI3 peer-to-peer, what virsh calls), made from this test process, not through a job.
"""

import time

import pytest
from django.conf import settings
from playwright.sync_api import expect

from hosts.drivers import libvirt as driver
from hosts.drivers.types import MigrationOptions
from tests.e2e.lab_support import guest_on_hv_a, seed_lab, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.lab]

PASSWORD = "watch-password-42"
GUEST = "lab-g1"


@pytest.fixture
def lab_guest_on_a():
    yield from guest_on_hv_a(GUEST)


@pytest.fixture
def cluster(server_env, lab_guest_on_a):
    return seed_lab(server_env, {"vera": ("viewer", PASSWORD)})


def test_an_out_of_band_move_shows_within_the_refresh_interval_of_worker_start(
    browser, live_server_url, cluster, lab_guest_on_a, worker
):
    started = time.monotonic()  # the worker fixture has just started `manage.py qcluster`
    lab = lab_guest_on_a
    driver.migrate(lab.uri("hv-a"), lab.uri("hv-b"), lab.guest_uuids[GUEST], MigrationOptions(live=True))
    moved = time.monotonic()
    assert moved - started < 5, f"the move itself took until {moved - started:.1f} s after the worker started"
    assert lab.current_host(GUEST) == "hv-b"  # libvirt's word

    context = browser.new_context(base_url=live_server_url)
    page = sign_in(context, "vera", PASSWORD)
    page.goto("/")
    card = page.locator(f"#hypervisor-{cluster['hypervisors']['hv-b']}-card")
    # One refresh interval after the move, plus the time a worker takes to spawn, take the watcher's lease
    # and run a round: 5 s was too little once in CI (embedded pass, two cores busy with the rest of the
    # suite), and 15 s keeps the budget (20 s) under the 27-30 s this test was written to catch.
    budget_s = settings.INVENTORY_REFRESH_SECONDS + 15
    expect(card).to_contain_text(GUEST, timeout=max(1, budget_s - (time.monotonic() - moved)) * 1000)
    print(f"out-of-band move shown {time.monotonic() - moved:.1f} s after it ended")
    context.close()
