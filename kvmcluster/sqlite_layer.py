"""channels-lite's SQLite channel layer (embedded profile), woken by whoever writes to it.

channels-lite reads with one polling task per process: it looks at the table every
`polling_interval` (30 ms here) and keeps doing so for 30 minutes after its last consumer left, so a
message waited 15 ms on average and an idle web process ran ~33 queries a second. Here a sender also
wakes the process that reads the channel (its process-specific part names the address, see
kvmcluster.wakeup), and a reader that finds nothing waits on its socket for up to WAKE_WAIT_S before it
looks again.

A group message is one row per reading process, not per channel: the row names the process's channels in
the group and the reader hands a copy to each. With a row per channel, 200 viewers of one page made 200
rows (and 200 capacity counts) per progress message, and channels-lite's capacity (100 unread rows per
process) dropped messages from 50 viewers on (bench/fanout.py, docs/benchmarks.md).
"""

from __future__ import annotations

from datetime import timedelta

from asgiref.sync import sync_to_async
from channels_lite.layers import BoundedQueue, ChannelEmpty
from channels_lite.layers.core import SQLiteChannelLayer
from channels_lite.models import Event, GroupMembership
from django.utils import timezone

from kvmcluster import wakeup

WAKE_WAIT_S = 1.0  # the longest a message waits if its wake-up is lost
MEMBERS = "__kvmcluster_group_channels__"  # a group row's channels of its reading process


def _address(reader: str) -> bytes:
    return wakeup.address(f"channels:{reader}")


class WakeableSQLiteChannelLayer(SQLiteChannelLayer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._listeners: dict[str, wakeup.Listener | None] = {}

    # --- writers
    async def send(self, channel, message, expiry=None):
        await super().send(channel, message, expiry)
        wakeup.wake(_address(self.non_local_name(channel)))

    async def group_send(self, group, message):
        """One row per reading process, naming its channels in the group (a channel that is not
        process-local gets its own row, as before); a process whose unread rows are at capacity
        misses the message, as channels-lite drops it for a full channel."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        by_reader: dict[str, list[str]] = {}
        for channel in await sync_to_async(self._members)(group):
            by_reader.setdefault(self.non_local_name(channel), []).append(channel)
        expiry = timezone.now() + timedelta(seconds=self.expiry)
        rows = []
        for reader, channels in by_reader.items():
            if self.enforce_capacity and await self._get_channel_pending_count(reader) >= self.get_capacity(reader):
                continue
            data = {**message, MEMBERS: channels} if "!" in reader else message
            rows.append(Event(channel_name=reader, data=self.serialize(data), expires_at=expiry))
        if rows:
            await self._execute_with_retry(lambda: Event.objects.abulk_create(rows))
        for reader in by_reader:
            wakeup.wake(_address(reader))

    def _members(self, group: str) -> list[str]:
        members = GroupMembership.objects.filter(group_name=group, expires_at__gte=timezone.now())
        return list(members.values_list("channel_name", flat=True))

    # --- the reader
    async def _receive_single_from_db(self, channel):
        listener = self._listener(channel)  # bound before the first look: no write slips in between
        try:
            return await self._look(channel)
        except ChannelEmpty:
            if listener is None:
                raise
        await listener.wait_async(WAKE_WAIT_S)
        return await self._look(channel)  # ChannelEmpty again: the loop looks later

    async def _look(self, channel):
        """One row; a group row goes to each of its channels here (the first is returned, the others
        are put in their buffers as channels-lite's poller would)."""
        full_channel, message = await super()._receive_single_from_db(channel)
        members = message.pop(MEMBERS, None)
        if not members:
            return full_channel, message
        for member in members[1:]:
            buffer = self.receive_buffer.get(member)
            if buffer is None:
                buffer = self.receive_buffer[member] = BoundedQueue(maxsize=self.get_capacity(member))
            buffer.put_nowait(dict(message))
        return members[0], message

    def _listener(self, reader: str) -> wakeup.Listener | None:
        if reader not in self._listeners:
            self._listeners[reader] = wakeup.Listener.bind(_address(reader))
        return self._listeners[reader]

    async def close(self):
        await super().close()
        for listener in self._listeners.values():
            if listener is not None:
                listener.close()
        self._listeners.clear()
