"""The hosts websockets: the topology partials, and each load round's new point for a host's or a guest's
chart. Browsers with view rights only; the permission is checked before any group is joined."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.consumers import PermissionCheckedMixin
from accounts.roles import Perm
from hosts import events, selectors


class TopologyConsumer(PermissionCheckedMixin, AsyncWebsocketConsumer):
    """Permission checked before any group is joined, closed on logout/role change (the mixin;
    docs/architecture.md, "Sockets check first").

    One-way: it only forwards what hosts.events renders.
    """

    required_perm = Perm.VIEW_CLUSTER
    forward_only = frozenset({"topology_update"})

    def forwarded_groups(self):
        return [events.TOPOLOGY_GROUP]

    async def receive(self, text_data=None, bytes_data=None):
        """htmx's ws extension may send form data over the socket; nothing here listens to it."""

    async def topology_update(self, event):
        await self.send(text_data=event["html"])


class HypervisorLoadConsumer(PermissionCheckedMixin, AsyncWebsocketConsumer):
    """A hypervisor page's load chart: each round's new point as the panel's caption (hx-swap-oob), whose
    data-load-point the chart appends (static/js/load-chart.js). One-way, like the topology socket."""

    required_perm = Perm.VIEW_CLUSTER

    async def on_authorized(self):
        self.hypervisor_id = int(self.scope["url_route"]["kwargs"]["pk"])
        await self.channel_layer.group_add(events.load_group(self.hypervisor_id), self.channel_name)

    async def on_disconnect(self, code):
        await self.channel_layer.group_discard(events.load_group(self.hypervisor_id), self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Nothing here listens to the browser."""

    async def load_round(self, event):
        await self.send(text_data=events.render_load_push(event))  # a template, no database


class GuestLoadConsumer(PermissionCheckedMixin, AsyncWebsocketConsumer):
    """A guest page's load chart. A guest's points travel in its host's round (one message per host,
    hosts.events.load_recorded), so the socket listens to the host the guest runs on; a round of that host
    without the guest (moved, or shut off) makes it ask the inventory again and follow the guest."""

    required_perm = Perm.VIEW_CLUSTER
    host_group: str | None = None

    async def before_accept(self):
        self.guest_id = int(self.scope["url_route"]["kwargs"]["pk"])
        await self.channel_layer.group_add(events.guest_load_group(self.guest_id), self.channel_name)
        await self._follow()

    async def _follow(self) -> None:
        host_id = await database_sync_to_async(selectors.guest_host_id)(self.guest_id)
        group = events.load_group(host_id) if host_id is not None else None
        if group == self.host_group:
            return
        if self.host_group:
            await self.channel_layer.group_discard(self.host_group, self.channel_name)
        if group:
            await self.channel_layer.group_add(group, self.channel_name)
        self.host_group = group

    async def on_disconnect(self, code):
        await self.channel_layer.group_discard(events.guest_load_group(self.guest_id), self.channel_name)
        if self.host_group:
            await self.channel_layer.group_discard(self.host_group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Nothing here listens to the browser."""

    async def load_round(self, event):
        if str(self.guest_id) not in event["guests"]:
            await self._follow()  # one indexed query per round while the guest is shut off or away
            return
        await self.send(text_data=events.render_load_push(event, guest_id=self.guest_id))

    async def load_timeline(self, event):
        """The guest's moves (rendered by migrations_app when one ends): the chart redraws its markers."""
        await self.send(text_data=event["html"])
