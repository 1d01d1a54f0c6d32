"""An operator keeps the topology open while a guest is shut down; the page updates without a reload.

How the change goes "through libvirt": each test:/// open is an independent in-memory copy of its node
file, so the change must happen inside the server process that the page talks to. The operator uses a
second tab: the guest page's "Shut down" button makes the server call libvirt (the test driver, on the
server's own cached connection), re-read the host through inventory, and push the changed host card and
guest row over the topology websocket. The first tab never reloads: a marker set on its `window`
before the change is still there after the update.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.e2e

PASSWORD = "operator-password-42"
IMAGES = "/var/lib/libvirt/images"


@pytest.fixture
def cluster(server_env, tmp_path):
    host_a = write_node(
        tmp_path / "host-a.xml",
        [
            NodeDomain("web01", vcpus=2, memory_mib=1024, disk_path=f"{IMAGES}/web01.qcow2"),
            NodeDomain("db01", running=False, disk_path="/local/db01.qcow2", cache="writeback"),
        ],
        cpus=8,
        memory_mib=16384,
    )
    host_b = write_node(tmp_path / "host-b.xml", [NodeDomain("app01", disk_path=f"{IMAGES}/app01.qcow2")], cpus=4)
    return server_env.seed(
        {
            "users": [{"username": "olga", "password": PASSWORD, "role": "operator"}],
            "storage": [{"name": "nfs1", "address": "10.0.0.5", "export_path": "/srv/images", "mount_path": IMAGES}],
            "hypervisors": [
                {"name": "hv-a", "uri": host_a, "storage": ["nfs1"]},
                {"name": "hv-b", "uri": host_b, "storage": ["nfs1"]},
            ],
        }
    )


def test_operator_sees_a_guest_shut_down_live(browser, live_server_url, cluster):
    web01 = cluster["guests"]["web01"]
    context = browser.new_context(base_url=live_server_url)
    topology = context.new_page()

    # Log in through the form.
    topology.goto("/")
    expect(topology).to_have_url(re.compile(r"/login/"))
    topology.get_by_label("Username").fill("olga")
    topology.get_by_label("Password").fill(PASSWORD)
    topology.get_by_role("button", name="Sign in").click()

    # The picture: storage, both hosts, web01 running on hv-a; db01's local writeback disk flagged.
    expect(topology.get_by_role("heading", name="Cluster topology")).to_be_visible()
    expect(topology.locator("[id^=storage-][id$=-node]").first).to_contain_text("nfs1")
    hv_a = topology.locator(f"#hypervisor-{cluster['hypervisors']['hv-a']}-card")
    expect(hv_a).to_contain_text("hv-a")
    expect(hv_a).to_contain_text("2/8 vCPU")
    chip = topology.locator(f"#guest-{web01}-chip")
    expect(chip).to_contain_text("web01")
    expect(chip).not_to_contain_text("shut off")
    expect(topology.locator(f"#guest-{cluster['guests']['db01']}-chip")).to_contain_text("local")
    expect(topology.locator(f"#guest-{web01}-row")).to_contain_text("Running")

    # The socket is connected before anything changes.
    expect(topology.locator("[data-live-status]")).to_have_attribute("data-live", "on", timeout=15_000)
    topology.evaluate("window.__e2eMarker = 'no reload'")

    # Second tab: shut web01 down from its guest page.
    guest_page = context.new_page()
    guest_page.goto(f"/guests/{web01}/")
    guest_page.get_by_role("button", name="Shut down").click()
    expect(guest_page.get_by_role("status").first).to_contain_text("libvirt reports shut off")

    # First tab: the chip, the host's CPU bar and the table row changed in place.
    expect(chip).to_contain_text("shut off", timeout=15_000)
    expect(hv_a).to_contain_text("0/8 vCPU")
    expect(topology.locator(f"#guest-{web01}-row")).to_contain_text("Shut off")
    assert topology.evaluate("window.__e2eMarker") == "no reload"
    context.close()
