"""Sockets that only forward pushes skip channels' per-message database clean-up, a hop to the one
thread a process has for sync code (with 200 viewers of a page, each push queued 200 hops there;
bench/fanout.py). A handler that is not forward-only still gets it."""

import pytest
from asgiref.sync import sync_to_async
from channels import consumer as channels_consumer
from django.db import connections

from hosts import events as host_events
from hosts.consumers import TopologyConsumer
from migrations_app import events as migration_events
from migrations_app.consumers import MigrationConsumer
from tests.factories import make_user
from tests.integration.sockets_support import open_socket

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def cleanups(monkeypatch):
    """Counts channels' close_old_connections before a handler (channels.consumer.dispatch)."""
    calls = []
    real = channels_consumer.aclose_old_connections

    async def counted():
        calls.append(1)
        return await real()

    monkeypatch.setattr(channels_consumer, "aclose_old_connections", counted)
    return calls


async def test_a_topology_push_reaches_the_viewer_without_the_sync_hop(cleanups):
    user = await sync_to_async(make_user)("watcher", "viewer")
    communicator = await open_socket(TopologyConsumer.as_asgi(), "/ws/topology/", user)
    try:
        before = len(cleanups)
        await sync_to_async(host_events._send)('<span id="guest-1-move-row">moving 40 %</span>')
        assert "moving 40 %" in await communicator.receive_from(timeout=10)
        assert len(cleanups) == before
        await communicator.send_to(text_data="hx-trigger")  # not forward-only: cleaned up as before
        await communicator.receive_nothing(timeout=0.5)
        assert len(cleanups) == before + 1
    finally:
        await communicator.disconnect()


async def test_a_job_page_push_reaches_the_viewer_without_the_sync_hop(cleanups):
    user = await sync_to_async(make_user)("watcher", "viewer")
    communicator = await open_socket(MigrationConsumer.as_asgi(), "/ws/migrations/42/", user, pk=42)
    try:
        before = len(cleanups)
        await sync_to_async(migration_events._send)(
            migration_events.job_group(42), {"type": migration_events.PROGRESS, "html": "<div>57 %</div>"}
        )
        assert "57 %" in await communicator.receive_from(timeout=10)
        assert len(cleanups) == before
    finally:
        await communicator.disconnect()
