"""kvmcluster.layer: sends from sync code keep channels-redis's connections for the process's life."""

from kvmcluster import layer


class _Recording:
    """A stand-in layer class whose module says channels_redis: the path that keeps one loop."""

    def __init__(self):
        self.loops = []

    async def group_send(self, group, message):
        import asyncio

        self.loops.append((asyncio.get_running_loop(), group, message))


_Recording.__module__ = "channels_redis.core"


def test_redis_sends_share_one_loop_per_process(monkeypatch):
    fake = _Recording()
    monkeypatch.setattr(layer, "get_channel_layer", lambda: fake)
    for n in range(3):
        layer.group_send("g", {"n": n})
    loops = {id(loop) for loop, _, _ in fake.loops}
    assert len(loops) == 1  # channels-redis keeps its connection pool per loop: one loop, one pool
    assert [m["n"] for _, _, m in fake.loops] == [0, 1, 2]


def test_a_forked_child_starts_its_own_loop(monkeypatch):
    fake = _Recording()
    monkeypatch.setattr(layer, "get_channel_layer", lambda: fake)
    layer.group_send("g", {})
    monkeypatch.setattr(layer, "_loop_pid", -1)  # as a django-q2 worker sees its parent's variable
    layer.group_send("g", {})
    assert fake.loops[0][0] is not fake.loops[1][0]
