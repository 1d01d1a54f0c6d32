"""Sending to the channel layer from sync code (the worker's monitor, views, the push thread).

asgiref's async_to_sync runs each call on a fresh event loop when the calling thread has none, and
channels-redis keeps its connections per loop: every progress message opened and dropped a Redis
connection (20 sends, 21 connections, ~15 ms each, measured). For channels-redis, one loop per
process on a thread of its own keeps the connections (20 sends: 1 connection, ~1 ms each).

The SQLite layer (channels-lite) stays on async_to_sync: it reaches its database through
thread-sensitive sync_to_async, which must run on the caller's thread when the caller is itself
inside sync_to_async (a view under ASGI); from another loop that deadlocks.
"""

from __future__ import annotations

import asyncio
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

SEND_TIMEOUT_S = 5.0

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_lock = threading.Lock()


def _sender_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        # a forked child (a django-q2 worker) inherits the variable but not the thread that ran it
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="channel-layer-send", daemon=True).start()
        return _loop


def group_send(group: str, message: dict) -> None:
    """Send `message` to `group` and wait until the layer has taken it; raises what the layer raises."""
    layer = get_channel_layer()
    if layer is None:
        return
    if type(layer).__module__.startswith("channels_redis"):
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _sender_loop()).result(SEND_TIMEOUT_S)
    else:
        async_to_sync(layer.group_send)(group, message)
