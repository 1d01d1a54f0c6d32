"""The topology websocket: browsers with view rights receive the pushed topology partials."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.roles import Perm
from hosts import events


@database_sync_to_async
def _may_view(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(Perm.VIEW_CLUSTER))


class TopologyConsumer(AsyncWebsocketConsumer):
    """Checks the permission BEFORE joining the group (STYLE 8); sends only what events.py renders."""

    joined = False

    async def connect(self):
        if not await _may_view(self.scope.get("user")):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(events.TOPOLOGY_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code):
        if self.joined:
            await self.channel_layer.group_discard(events.TOPOLOGY_GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """The socket is one-way; htmx's ws extension may send form data, which we ignore."""

    async def topology_update(self, event):
        await self.send(text_data=event["html"])
