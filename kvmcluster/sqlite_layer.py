"""channels-lite's SQLite channel layer (embedded profile), woken by whoever writes to it.

channels-lite reads with one polling task per process: it looks at the table every
`polling_interval` (30 ms here) and keeps doing so for 30 minutes after its last consumer left, so a
message waited 15 ms on average and an idle web process ran ~33 queries a second. Here a sender also
wakes the process that reads the channel (its process-specific part names the address, see
kvmcluster.wakeup), and a reader that finds nothing waits on its socket for up to WAKE_WAIT_S before it
looks again.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from channels_lite.layers import ChannelEmpty
from channels_lite.layers.core import SQLiteChannelLayer
from channels_lite.models import GroupMembership
from django.utils import timezone

from kvmcluster import wakeup

WAKE_WAIT_S = 1.0  # the longest a message waits if its wake-up is lost


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
        await super().group_send(group, message)
        for reader in await sync_to_async(self._readers)(group):
            wakeup.wake(_address(reader))

    def _readers(self, group: str) -> set[str]:
        members = GroupMembership.objects.filter(group_name=group, expires_at__gte=timezone.now())
        return {self.non_local_name(c) for c in members.values_list("channel_name", flat=True)}

    # --- the reader
    async def _receive_single_from_db(self, channel):
        listener = self._listener(channel)  # bound before the first look: no write slips in between
        try:
            return await super()._receive_single_from_db(channel)
        except ChannelEmpty:
            if listener is None:
                raise
        await listener.wait_async(WAKE_WAIT_S)
        return await super()._receive_single_from_db(channel)  # ChannelEmpty again: the loop looks later

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
