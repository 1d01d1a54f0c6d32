"""An operator opens a hypervisor's page and sees its measured CPU and memory over the last hour, drawn by
the vendored uPlot (same origin: the page's CSP lets it run), with the latest figure as text beside it."""

import re

import pytest
from playwright.sync_api import expect

from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = [pytest.mark.e2e, pytest.mark.once]

PASSWORD = "operator-password-42"


@pytest.fixture
def cluster(server_env, tmp_path):
    host_a = write_node(tmp_path / "host-a.xml", [NodeDomain("web01", vcpus=2, memory_mib=1024)], cpus=8)
    return server_env.seed(
        {
            "users": [{"username": "olga", "password": PASSWORD, "role": "operator"}],
            "hypervisors": [{"name": "hv-a", "uri": host_a}],
            "host_load": [{"hypervisor": "hv-a", "cpu_pct": [12.0, 25.0, 40.0, 37.0]}],
        }
    )


def test_the_hypervisor_page_draws_the_load_chart(browser, live_server_url, cluster):
    hv = cluster["hypervisors"]["hv-a"]
    context = browser.new_context(base_url=live_server_url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(str(err)))

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/hypervisors/{hv}/")

    chart = page.locator(f"#hypervisor-{hv}-load-chart")
    expect(chart.locator("canvas")).to_have_count(1)  # uPlot drew into the panel
    expect(chart.locator(".u-legend")).to_contain_text("CPU %")
    expect(page.locator(f"#hypervisor-{hv}-load-latest")).to_contain_text("CPU 37 %")
    # The chart's socket is open (new rounds come over it: tests/e2e/test_host_load_chart_is_live.py)...
    expect(page.locator(f"[data-load-panel='hypervisor-{hv}-load'] [data-load-live]")).to_have_text("live")
    # ...and the JSON the chart falls back to while it is closed answers the same hour.
    assert page.request.get(f"/hypervisors/{hv}/load/").json()["cpu_pct"] == [12.0, 25.0, 40.0, 37.0]
    assert problems == []
    context.close()
