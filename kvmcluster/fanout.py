"""One reader per group per web process for the pushes that sockets only forward.

channels gives every socket its own channel: a group push wakes each socket's consumer task, which takes
it from its queue, decodes it and dispatches it (asyncio.wait, a new task per message). With 200 viewers
of one page that is 200 task switches per push; measured on loopback (daphne, pub/sub layer, 200
sockets): 10–12 ms from the push to the last write, against 5 ms when one task writes to the 200 sockets
in a loop (docs/benchmarks.md, "200 viewers"). Here the process joins each such group once, on a channel
of its own, and one task hands each push to the group's sockets in turn.

Order: a socket joins "held" and keeps what arrives until `release` (after its connect has sent the page's
current state), then gets the held pushes first: a push never overtakes the initial state it follows.

    await fanout.join(group, consumer)   # consumer.forward(message) is awaited for each push
    await fanout.release(consumer)       # connect is done: held pushes out, then live
    await fanout.leave(consumer)         # all its groups; the last member's leaving drops the group
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


class Forwarder(Protocol):
    async def forward(self, message: dict) -> None: ...


@dataclass(eq=False)
class _Group:
    name: str
    # a member's list holds what arrived before its release; None once it is live
    members: dict[Any, list[dict] | None] = field(default_factory=dict)
    started: asyncio.Task | None = None
    channel: str | None = None
    reader: asyncio.Task | None = None
    refresher: asyncio.Task | None = None


class _Fanout:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.groups: dict[str, _Group] = {}

    async def join(self, name: str, consumer: Forwarder) -> None:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _Group(name)
            group.started = asyncio.get_running_loop().create_task(self._start(group))
        group.members[consumer] = []
        assert group.started is not None
        try:
            # every joiner waits for the subscription: a push sent after join returns is received
            await asyncio.shield(group.started)
        except BaseException:  # the start failed (Redis away) or this connect was cancelled
            await self._drop(group, consumer)  # the last one out drops the group: the next join starts anew
            raise

    async def _start(self, group: _Group) -> None:
        group.channel = await self.layer.new_channel()
        await self.layer.group_add(group.name, group.channel)
        loop = asyncio.get_running_loop()
        group.reader = loop.create_task(self._read(group))
        expiry = getattr(self.layer, "group_expiry", None)  # channels-lite's (1 h here); pub/sub: none
        if expiry:
            group.refresher = loop.create_task(self._stay_in(group, expiry / 2))

    async def _stay_in(self, group: _Group, every_s: float) -> None:
        """A page can be watched for longer than the layer keeps a membership (a wall display): the
        process's one membership is renewed while it has sockets on the page."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.layer.group_add(group.name, group.channel)
            except Exception:
                logger.exception("renewing the membership of %s failed; next try in %.0f s", group.name, every_s)

    async def _read(self, group: _Group) -> None:
        while True:
            try:
                message = await self.layer.receive(group.channel)
            except Exception:  # e.g. the SQLite layer's database locked: the page's sockets still wait
                logger.exception("reading %s failed; reading again in 1 s", group.name)
                await asyncio.sleep(1.0)
                continue
            for consumer, held in list(group.members.items()):
                if held is not None:
                    held.append(message)
                    continue
                try:
                    await consumer.forward(message)
                except Exception:  # one broken socket must not cost the others their push
                    logger.exception("push to a %s socket failed", type(consumer).__name__)

    async def release(self, consumer: Forwarder) -> None:
        for group in list(self.groups.values()):
            held = group.members.get(consumer)
            while held:
                await consumer.forward(held.pop(0))
            if consumer in group.members:
                group.members[consumer] = None  # no await since the list was seen empty: nothing lost

    async def leave(self, consumer: Forwarder) -> None:
        for group in list(self.groups.values()):
            if consumer in group.members:
                await self._drop(group, consumer)

    async def _drop(self, group: _Group, consumer: Forwarder) -> None:
        group.members.pop(consumer, None)
        if group.members:
            return
        if self.groups.get(group.name) is group:
            del self.groups[group.name]
        await self._stop(group)

    async def _stop(self, group: _Group) -> None:
        for task in (group.refresher, group.reader, group.started):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        if group.channel is not None:
            await self.layer.group_discard(group.name, group.channel)


# One per event loop (the channel layers keep their connections per loop), for the loop's current layer.
_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Fanout] = weakref.WeakKeyDictionary()


def _current() -> _Fanout:
    loop = asyncio.get_running_loop()
    layer = get_channel_layer()
    fanout = _fanouts.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _fanouts[loop] = _Fanout(layer)
    return fanout


async def join(group: str, consumer: Forwarder) -> None:
    await _current().join(group, consumer)


async def release(consumer: Forwarder) -> None:
    await _current().release(consumer)


async def leave(consumer: Forwarder) -> None:
    await _current().leave(consumer)
