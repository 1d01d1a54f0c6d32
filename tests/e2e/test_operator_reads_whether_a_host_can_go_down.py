"""An operator opens hv-a's page and reads "Can I take this host down?": the panel loads after the page
(it asks libvirt) and shows where each guest would go and what cannot move. libvirt test-driver hosts."""

import pytest
from playwright.sync_api import expect

from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = [pytest.mark.e2e, pytest.mark.once]

PASSWORD = "operator-password-42"
IMAGES = "/var/lib/libvirt/images"


@pytest.fixture
def cluster(server_env, tmp_path):
    host_a = write_node(
        tmp_path / "hv-a.xml",
        [
            NodeDomain("web01", disk_path=f"{IMAGES}/web01.qcow2"),
            NodeDomain("app02", disk_path=f"{IMAGES}/app02.qcow2", bridge="br-a-only"),
        ],
        bridges=("br0", "br-a-only"),
    )
    host_b = write_node(tmp_path / "hv-b.xml", [])
    return server_env.seed(
        {
            "users": [{"username": "olga", "password": PASSWORD, "role": "operator"}],
            "storage": [{"name": "nfs1", "address": "127.0.0.5", "export_path": "/srv/images", "mount_path": IMAGES}],
            "hypervisors": [
                {"name": "hv-a", "uri": host_a, "storage": ["nfs1"]},
                {"name": "hv-b", "uri": host_b, "storage": ["nfs1"]},
            ],
        }
    )


def test_the_hypervisor_page_answers_whether_it_can_go_down(browser, live_server_url, cluster):
    page = browser.new_context(base_url=live_server_url).new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    hv_a = cluster["hypervisors"]["hv-a"]
    page.goto(f"/hypervisors/{hv_a}/")
    panel = page.locator(f"#hypervisor-{hv_a}-drain-plan")
    # libvirt's test driver reports no free memory on hv-b: the plan says so rather than overbooking it
    expect(panel.get_by_role("heading", level=2)).to_contain_text("No, because", timeout=15_000)
    blocked = panel.locator(f"#drain-blocked-{cluster['guests']['app02']}")
    expect(blocked).to_contain_text("br-a-only")
    expect(panel.locator(f"#drain-blocked-{cluster['guests']['web01']}")).to_contain_text("short of memory")
