"""The topology websocket: browsers with view rights receive the pushed topology partials."""

from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.consumers import PermissionCheckedMixin
from accounts.roles import Perm
from hosts import events


class TopologyConsumer(PermissionCheckedMixin, AsyncWebsocketConsumer):
    """Permission checked before any group is joined, closed on logout/role change (the mixin;
    docs/architecture.md, "Sockets check first").

    One-way: it only forwards what hosts.events renders.
    """

    required_perm = Perm.VIEW_CLUSTER

    async def on_authorized(self):
        await self.channel_layer.group_add(events.TOPOLOGY_GROUP, self.channel_name)

    async def on_disconnect(self, code):
        await self.channel_layer.group_discard(events.TOPOLOGY_GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """htmx's ws extension may send form data over the socket; nothing here listens to it."""

    async def topology_update(self, event):
        await self.send(text_data=event["html"])
