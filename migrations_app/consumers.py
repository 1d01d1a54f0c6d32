"""Websockets of guest migrations: one job's page, one operation's page and the active-migrations panel.
Thin: join the group named by events.py, forward the ready HTML (hx-swap-oob) the worker rendered."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from accounts.consumers import PermissionCheckedMixin
from accounts.permissions import user_can
from accounts.roles import Perm
from migrations_app import events


class _ForwardHtml:
    async def migration_progress(self, event):
        await self.send(text_data=event["html"])

    async def migration_state(self, event):
        await self.send(text_data=event["html"])

    async def migration_active(self, event):
        await self.send(text_data=event["html"])


class MigrationConsumer(PermissionCheckedMixin, _ForwardHtml, AsyncWebsocketConsumer):
    """Live progress of one guest migration (group "migration.<id>")."""

    required_perm = Perm.VIEW_CLUSTER

    async def on_authorized(self):
        self.group = events.job_group(int(self.scope["url_route"]["kwargs"]["pk"]))
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def on_disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)


class ActiveMigrationsConsumer(PermissionCheckedMixin, _ForwardHtml, AsyncWebsocketConsumer):
    """The active-migrations panel shown on every page (group "migrations.active")."""

    required_perm = Perm.VIEW_CLUSTER

    async def on_authorized(self):
        await self.channel_layer.group_add(events.ACTIVE_GROUP, self.channel_name)

    async def on_disconnect(self, code):
        await self.channel_layer.group_discard(events.ACTIVE_GROUP, self.channel_name)


class OperationConsumer(PermissionCheckedMixin, AsyncWebsocketConsumer):
    """Live progress of one operation (group "operation.<id>"): its counts, bar, ETA and children."""

    required_perm = Perm.VIEW_CLUSTER

    async def on_authorized(self):
        # Checked once here: a role change closes the socket (PermissionCheckedMixin), and the reconnect
        # checks again.
        self.can_run = await database_sync_to_async(user_can)(self.scope.get("user"), Perm.RUN_MIGRATIONS)
        self.group = events.operation_group(int(self.scope["url_route"]["kwargs"]["pk"]))
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def on_disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def operation_progress(self, event):
        await self.send(text_data=event["html_run"] if self.can_run else event["html"])
