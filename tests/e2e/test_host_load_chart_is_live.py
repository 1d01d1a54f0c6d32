"""An operator watches a hypervisor's page: the worker's inventory watcher takes a load round every 10 s,
and each round's point reaches the CPU chart over the page's socket, without a reload. Real parts: the lab's
libvirtd, daphne, `manage.py qcluster` (the watcher and its load rounds), Chromium running the page's uPlot.

What is read is what a user (or a screen reader) gets: the caption's time of the newest point, and the
chart's count of points (data-points, kept by static/js/load-chart.js)."""

import pytest
from playwright.sync_api import expect

from tests.e2e.lab_support import guest_on_hv_a, seed_lab, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.lab, pytest.mark.once]

PASSWORD = "charts-password-42"


@pytest.fixture
def lab_guest_on_a():
    yield from guest_on_hv_a("lab-g1")


@pytest.fixture
def cluster(server_env, lab_guest_on_a):
    return seed_lab(server_env, {"olga": ("operator", PASSWORD)})


def test_the_cpu_chart_gets_each_rounds_point_without_a_reload(browser, live_server_url, cluster, worker):
    hv = cluster["hypervisors"]["hv-a"]
    context = browser.new_context(base_url=live_server_url)
    page = sign_in(context, "olga", PASSWORD)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(str(err)))
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith(f"/hypervisors/{hv}/load/") else None)
    page.goto(f"/hypervisors/{hv}/")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    chart = page.locator(f"#hypervisor-{hv}-load-chart")
    caption = page.locator(f"#hypervisor-{hv}-load-latest")
    expect(page.locator(f"[data-load-panel='hypervisor-{hv}-load'] [data-load-live]")).to_have_text("live")
    # The first round after the worker started (the watcher samples at once, then every 10 s).
    page.wait_for_function(
        f"() => +document.getElementById('hypervisor-{hv}-load-chart').dataset.points >= 1", timeout=40_000
    )
    first_time = caption.locator("time").get_attribute("datetime")
    first_points = int(chart.get_attribute("data-points") or "0")

    # The next round: one more point, a newer caption, the same document.
    expect(chart).to_have_attribute("data-points", str(first_points + 1), timeout=30_000)
    expect(caption.locator("time")).not_to_have_attribute("datetime", first_time or "")
    expect(chart.locator("canvas")).to_have_count(1)  # uPlot drew (the panel was empty before the first round)
    expect(caption).to_contain_text("of the host's CPUs")  # the second round has a rate
    assert page.evaluate("window.__sameDocument === true")
    assert polls == []  # the socket was open: the fallback poll never ran
    # The page's guest table listens to the topology socket, whose pushes also carry host cards and the
    # summary this page does not show: the page drops those parts (hx-ext="oob-if-present"), no error.
    assert problems == []
    print(f"points {first_points} -> {chart.get_attribute('data-points')}, caption {caption.inner_text()}")
    context.close()
