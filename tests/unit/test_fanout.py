"""kvmcluster.fanout: one reader per group hands each push to the group's sockets, in order, a joiner's
pushes held until its connect is done. On channels' in-memory layer; the sockets are stand-ins that keep
what they are given (the consumers on a real layer: tests/integration/test_forwarded_pushes.py)."""

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer

from kvmcluster.fanout import _Fanout


class Socket:
    def __init__(self, broken: bool = False):
        self.got: list[str] = []
        self.broken = broken

    async def forward(self, message):
        if self.broken:
            raise ConnectionResetError("the client went away")
        self.got.append(message["html"])


async def _settle(until, timeout=2.0):
    for _ in range(int(timeout / 0.01)):
        if until():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not delivered")


@pytest.fixture
def fanout():
    return _Fanout(InMemoryChannelLayer())


async def _live(fanout: _Fanout, *sockets: Socket) -> None:
    """Sockets that joined "g" and finished connecting."""
    for s in sockets:
        await fanout.join("g", s)
        await fanout.release(s)


async def test_one_reader_hands_each_push_to_every_live_socket_in_order(fanout):
    layer = fanout.layer
    a, b = Socket(), Socket()
    await _live(fanout, a, b)
    assert len(layer.groups["g"]) == 1  # the process is in the group once, whatever its sockets
    for n in range(3):
        await layer.group_send("g", {"type": "x", "html": f"push {n}"})
    await _settle(lambda: len(b.got) == 3)
    assert a.got == b.got == ["push 0", "push 1", "push 2"]
    for s in (a, b):
        await fanout.leave(s)


async def test_a_joiner_gets_what_arrived_before_its_release_after_its_own_first_send(fanout):
    layer = fanout.layer
    s = Socket()
    await fanout.join("g", s)
    await layer.group_send("g", {"type": "x", "html": "pushed while connecting"})
    await asyncio.sleep(0.05)
    assert s.got == []  # held: the page's current state has not gone out yet
    s.got.append("initial state")  # what connect sends itself
    await fanout.release(s)
    await layer.group_send("g", {"type": "x", "html": "live"})
    await _settle(lambda: len(s.got) == 3)
    assert s.got == ["initial state", "pushed while connecting", "live"]
    await fanout.leave(s)


async def test_a_broken_socket_does_not_cost_the_others_their_push(fanout):
    layer = fanout.layer
    broken, fine = Socket(broken=True), Socket()
    await _live(fanout, broken, fine)
    await layer.group_send("g", {"type": "x", "html": "one"})
    await layer.group_send("g", {"type": "x", "html": "two"})
    await _settle(lambda: len(fine.got) == 2)
    assert fine.got == ["one", "two"]
    for s in (broken, fine):
        await fanout.leave(s)


async def test_the_last_socket_leaving_drops_the_group_and_its_reader(fanout):
    layer = fanout.layer
    a, b = Socket(), Socket()
    await _live(fanout, a, b)
    reader = fanout.groups["g"].reader
    await fanout.leave(a)
    assert "g" in fanout.groups and not reader.done()
    await fanout.leave(b)
    assert fanout.groups == {} and reader.done()
    assert not layer.groups.get("g")  # nobody left to push to in this process
    await fanout.leave(b)  # a second leave is a no-op


async def test_the_process_membership_is_renewed_while_the_page_is_watched():
    layer = InMemoryChannelLayer(group_expiry=1)  # channels' layers forget a membership after this
    fanout = _Fanout(layer)
    s = Socket()
    await _live(fanout, s)
    await asyncio.sleep(2.5)  # past the expiry: without renewal the in-memory layer drops the member
    await layer.group_send("g", {"type": "x", "html": "still here"})
    await _settle(lambda: s.got == ["still here"])
    await fanout.leave(s)
    assert fanout.groups == {}


class SlowLayer(InMemoryChannelLayer):
    """A layer whose subscription takes until `go` is set, or fails then if `fail`."""

    def __init__(self, fail: bool = False):
        super().__init__()
        self.go = asyncio.Event()
        self.fail = fail

    async def new_channel(self, prefix="specific."):
        await self.go.wait()
        if self.fail:
            raise ConnectionError("Redis is away")
        return await super().new_channel(prefix)


async def test_a_connect_cancelled_while_the_group_starts_leaves_no_reader_behind():
    layer = SlowLayer()
    fanout = _Fanout(layer)
    joining = asyncio.ensure_future(fanout.join("g", Socket()))
    await asyncio.sleep(0.05)
    started = fanout.groups["g"].started
    joining.cancel()
    await asyncio.gather(joining, return_exceptions=True)
    assert fanout.groups == {} and started.done()  # nobody waits for the page: nothing reads it
    assert not layer.groups.get("g")


async def test_a_failed_start_fails_every_joiner_and_the_next_join_starts_anew():
    layer = SlowLayer(fail=True)
    fanout = _Fanout(layer)
    joins = [asyncio.ensure_future(fanout.join("g", Socket())) for _ in range(2)]
    await asyncio.sleep(0.05)
    layer.go.set()
    results = await asyncio.gather(*joins, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results) and fanout.groups == {}
    layer.fail = False  # Redis is back
    s = Socket()
    await _live(fanout, s)
    await layer.group_send("g", {"type": "x", "html": "after the outage"})
    await _settle(lambda: s.got == ["after the outage"])
    await fanout.leave(s)
