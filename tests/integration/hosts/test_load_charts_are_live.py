"""A load round reaches the charts over their sockets: the viewer of a host's page gets that host's new
point (and only that host's), the viewer of a guest's page gets the guest's, and a guest's socket follows
the guest to the host it moved to. Real parts: libvirt's test driver, the round, the channel layer."""

import json
import re

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections

from hosts.models import Guest, Hypervisor
from hosts.services import inventory, load_history
from kvmcluster.routing import websocket_urlpatterns
from tests.libvirt_nodes import NodeDomain, write_node

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    yield
    await sync_to_async(connections.close_all)()  # the ORM ran on sync_to_async's thread


def _hosts(tmp_path) -> tuple[Hypervisor, Hypervisor, Guest]:
    a = Hypervisor.objects.create(name="hv-a", uri=write_node(tmp_path / "a.xml", [NodeDomain("web01", vcpus=2)]))
    b = Hypervisor.objects.create(name="hv-b", uri=write_node(tmp_path / "b.xml", [NodeDomain("db01")]))
    inventory.refresh_all([a.pk, b.pk])
    load_history.forget_baselines([a.pk, b.pk])  # no counters from an earlier test's hosts of the same ids
    return a, b, Guest.objects.get(name="web01")


async def _open(user, path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected, path
    return communicator


def _point(html: str, dom_id: str) -> dict:
    """The caption swapped in by id, and the row its data-load-point carries for the chart."""
    assert f'<p class="muted" id="{dom_id}-latest" hx-swap-oob="true"' in html, html
    raw = re.search(r'data-load-point="([^"]*)"', html).group(1).replace("&quot;", '"')
    return json.loads(raw)


async def test_a_round_pushes_each_hosts_point_to_the_viewers_of_that_host_only(make_user, tmp_path):
    a, b, web = await sync_to_async(_hosts)(tmp_path)
    user = await sync_to_async(make_user)("viewer")
    on_a = await _open(user, f"/ws/hypervisors/{a.pk}/load/")
    on_b = await _open(user, f"/ws/hypervisors/{b.pk}/load/")
    on_web = await _open(user, f"/ws/guests/{web.pk}/load/")
    try:
        result = await sync_to_async(load_history.record_round)()
        assert (result.hosts, result.guests) == (2, 2)
        html_a = await on_a.receive_from(timeout=10)
        html_b = await on_b.receive_from(timeout=10)
        html_web = await on_web.receive_from(timeout=10)
        assert await on_a.receive_nothing(timeout=0.5)  # one message per host per round
    finally:
        for c in (on_a, on_b, on_web):
            await c.disconnect()

    row = await sync_to_async(lambda: a.load_samples.get())()
    point = _point(html_a, f"hypervisor-{a.pk}-load")
    assert point["at"] == row.at.timestamp() and point["memory_total_mib"] == row.memory_total_mib
    assert f"hypervisor-{b.pk}-load" not in html_a and f"hypervisor-{a.pk}-load" not in html_b
    assert _point(html_b, f"hypervisor-{b.pk}-load")["at"] == point["at"]
    guest_point = _point(html_web, f"guest-{web.pk}-load")
    assert guest_point["at"] == point["at"] and "cpu_pct_of_vcpus" in guest_point
    assert f'Latest, <time datetime="{row.at.isoformat()}">' in html_a
    assert "CPU not measured yet" in html_a  # a first round has no previous counters: no rate, said so


async def test_a_guests_socket_follows_the_guest_to_the_host_the_inventory_says(make_user, tmp_path):
    a, b, web = await sync_to_async(_hosts)(tmp_path)
    user = await sync_to_async(make_user)("viewer")
    # The inventory says web01 is on hv-b (a move it has not seen yet; libvirt still runs it on hv-a).
    await sync_to_async(Guest.objects.filter(pk=web.pk).update)(hypervisor=b)
    on_web = await _open(user, f"/ws/guests/{web.pk}/load/")
    try:
        await sync_to_async(load_history.record_round)()
        assert await on_web.receive_nothing(timeout=1)  # it listens to hv-b's rounds, which lack web01
        # The inventory catches up: hv-b's next round, still without web01, sends the socket to hv-a.
        await sync_to_async(Guest.objects.filter(pk=web.pk).update)(hypervisor=a)
        await sync_to_async(load_history.record_round)()
        # hv-a's message came first (hosts go by name; the socket was not on hv-a yet), hv-b's moved it (rounds are
        # 10 s apart on a real cluster; here the consumer is given its turn before the next one)
        assert await on_web.receive_nothing(timeout=1)
        await sync_to_async(load_history.record_round)()
        html = await on_web.receive_from(timeout=10)
    finally:
        await on_web.disconnect()
    assert "cpu_pct_of_vcpus" in _point(html, f"guest-{web.pk}-load")


async def test_a_user_without_a_role_gets_no_load_socket(make_user, tmp_path):
    a, _, web = await sync_to_async(_hosts)(tmp_path)
    user = await sync_to_async(make_user)(None)
    for path in (f"/ws/hypervisors/{a.pk}/load/", f"/ws/guests/{web.pk}/load/"):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        assert not connected
