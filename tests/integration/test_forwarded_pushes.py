"""The live pages' sockets on the profile's real channel layer: a web process reads each page's group once
and hands every push to the page's sockets (kvmcluster.fanout); a push sent while a socket connects comes
after the card that socket was sent as the page's current state, never before it."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from kvmcluster import fanout
from migrations_app import events
from migrations_app.consumers import MigrationConsumer
from tests.factories import make_user
from tests.integration.sockets_support import open_socket

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


async def _open_job_page(user, pk: int) -> WebsocketCommunicator:
    return await open_socket(MigrationConsumer.as_asgi(), f"/ws/migrations/{pk}/", user, pk=pk)


def _push(pk: int, html: str) -> None:
    events._send(events.job_group(pk), {"type": events.PROGRESS, "html": html})


async def test_two_viewers_of_a_job_page_share_one_reader_and_both_get_each_push():
    user = await sync_to_async(make_user)("watcher", "viewer")
    first, second = await _open_job_page(user, 42), await _open_job_page(user, 42)
    try:
        group = fanout._current().groups[events.job_group(42)]
        assert len(group.members) == 2 and group.reader is not None and not group.reader.done()
        await sync_to_async(_push)(42, "<div>57 %</div>")
        await sync_to_async(_push)(42, "<div>58 %</div>")
        for viewer in (first, second):
            assert "57 %" in await viewer.receive_from(timeout=10)
            assert "58 %" in await viewer.receive_from(timeout=10)
    finally:
        await first.disconnect()
        await second.disconnect()
    assert events.job_group(42) not in fanout._current().groups  # the last viewer gone, the reader too


async def test_a_push_sent_while_the_page_connects_comes_after_its_current_card(monkeypatch):
    user = await sync_to_async(make_user)("watcher", "viewer")

    async def current_card_while_the_worker_pushes(consumer):
        group = events.job_group(43)
        await consumer.channel_layer.group_send(group, {"type": events.PROGRESS, "html": "<div>61 %, pushed</div>"})
        await asyncio.sleep(1.0)  # long enough for the process's reader to have the push before the card
        await consumer.send(text_data="<div>60 %, the card as it is now</div>")

    monkeypatch.setattr(MigrationConsumer, "on_authorized", current_card_while_the_worker_pushes)
    viewer = await _open_job_page(user, 43)
    try:
        assert "60 %, the card as it is now" in await viewer.receive_from(timeout=10)
        assert "61 %, pushed" in await viewer.receive_from(timeout=10)
    finally:
        await viewer.disconnect()
