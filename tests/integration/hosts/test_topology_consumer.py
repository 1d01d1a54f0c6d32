"""The topology socket: only users who may view the cluster join; they receive the pushed partials."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections

from hosts import events
from hosts.consumers import TopologyConsumer

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    """sync_to_async runs the ORM on a worker thread: close its connections so the test DB can be dropped."""
    yield
    await sync_to_async(connections.close_all)()


def _communicator(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(TopologyConsumer.as_asgi(), "/ws/topology/")
    communicator.scope["user"] = user
    return communicator


async def test_anonymous_is_rejected():
    communicator = _communicator(AnonymousUser())
    connected, _ = await communicator.connect()
    assert not connected


async def test_user_without_a_role_is_rejected(make_user):
    user = await sync_to_async(make_user)(None)
    connected, _ = await _communicator(user).connect()
    assert not connected


async def test_viewer_receives_the_whole_picture(make_user, cluster):
    user = await sync_to_async(make_user)("viewer")
    communicator = _communicator(user)
    connected, _ = await communicator.connect()
    assert connected
    try:
        await sync_to_async(events.topology_changed)()
        html = await communicator.receive_from(timeout=10)
    finally:
        await communicator.disconnect()
    assert '<section class="topology" id="topology-graph"' in html and 'hx-swap-oob="true"' in html
    assert f'id="hypervisor-{cluster["hv_a"].pk}-card"' in html and "web01" in html
    assert 'id="topology-summary"' in html


async def test_viewer_receives_just_the_changed_host_and_guest(make_user, cluster):
    user = await sync_to_async(make_user)("viewer")
    communicator = _communicator(user)
    assert (await communicator.connect())[0]
    try:
        await sync_to_async(events.topology_changed)(hypervisor_ids=[cluster["hv_a"].pk], guest_ids=[cluster["db"].pk])
        html = await communicator.receive_from(timeout=10)
    finally:
        await communicator.disconnect()
    assert f'<li id="hypervisor-{cluster["hv_a"].pk}-card"' in html
    assert f'<tr id="guest-{cluster["db"].pk}-row" hx-swap-oob="true">' in html
    assert f'id="hypervisor-{cluster["hv_b"].pk}-card"' not in html  # only what changed
    assert 'id="topology-graph"' not in html


async def test_socket_is_closed_when_the_session_is_revoked(make_user):
    from accounts import events as account_events

    user = await sync_to_async(make_user)("viewer")
    communicator = _communicator(user)
    assert (await communicator.connect())[0]
    await sync_to_async(account_events._send_revoked)(user.pk)
    message = await communicator.receive_output(timeout=10)
    assert message["type"] == "websocket.close"
    await communicator.wait()


def test_a_one_host_push_carries_the_same_totals_as_the_page(cluster):
    from hosts import selectors

    full = selectors.topology().summary
    partial = selectors.topology(hypervisor_ids=[cluster["hv_a"].pk]).summary
    assert partial == full and (full.hypervisors, full.guests, full.running) == (2, 2, 1)
