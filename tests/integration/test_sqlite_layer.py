"""kvmcluster.sqlite_layer: a message wakes the process that reads its channel, which otherwise waits."""

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections

from kvmcluster import layer as layer_send

pytestmark = [
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.skipif(
        settings.CHANNEL_LAYERS["default"]["BACKEND"] != "kvmcluster.sqlite_layer.WakeableSQLiteChannelLayer",
        reason="the embedded profile's layer (production uses channels-redis)",
    ),
]


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def long_wait(monkeypatch):
    """Without its wake-up, a reader that found nothing would not look again for two minutes."""
    from kvmcluster import sqlite_layer  # channels-lite's models load only where it is installed

    monkeypatch.setattr(sqlite_layer, "WAKE_WAIT_S", 120)


async def _received_while_waiting(channel: str, write) -> dict:
    """Start a reader on `channel`, let it find nothing and wait, then `write` from another thread."""
    channels = get_channel_layer()
    reading = asyncio.ensure_future(channels.receive(channel))
    await asyncio.sleep(0.5)  # the reader has looked, found nothing and is waiting
    assert not reading.done()
    writer = threading.Thread(target=write)
    writer.start()
    try:
        return await asyncio.wait_for(reading, timeout=30)
    finally:
        await sync_to_async(writer.join)()


async def test_a_group_send_from_another_thread_wakes_the_reader(long_wait):
    channels = get_channel_layer()
    channel = await channels.new_channel()
    await channels.group_add("wake-test", channel)
    message = await _received_while_waiting(
        channel,
        lambda: layer_send.group_send("wake-test", {"type": "hello", "n": 1}),  # as the worker's pushes
    )
    assert message["n"] == 1


async def test_a_send_to_one_channel_wakes_its_reader(long_wait):
    channels = get_channel_layer()
    channel = await channels.new_channel()
    message = await _received_while_waiting(channel, lambda: async_to_sync(channels.send)(channel, {"type": "hi"}))
    assert message["type"] == "hi"


async def test_every_viewer_of_a_crowded_page_gets_every_message():
    """150 sockets of one process on one page (more than channels-lite's 100 unread rows a process may
    hold): two messages in a row reach all of them. With a row per socket the first message alone filled
    the process's capacity and the second was dropped for everyone (bench/fanout.py)."""
    from channels_lite.models import Event

    channels = get_channel_layer()
    names = [await channels.new_channel() for _ in range(150)]
    for name in names:
        await channels.group_add("crowded-page", name)
    await channels.group_send("crowded-page", {"type": "progress", "n": 1})
    await channels.group_send("crowded-page", {"type": "progress", "n": 2})
    assert await sync_to_async(Event.objects.filter(delivered=False).count)() == 2  # one row per message
    for n in (1, 2):
        got = await asyncio.wait_for(asyncio.gather(*(channels.receive(name) for name in names)), timeout=30)
        assert [m["n"] for m in got] == [n] * len(names)
