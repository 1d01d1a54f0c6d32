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
    forward_only = frozenset({"migration_progress", "migration_state", "migration_active"})

    async def migration_progress(self, event):
        await self.send(text_data=event["html"])

    async def migration_state(self, event):
        await self.send(text_data=event["html"])

    async def migration_active(self, event):
        await self.send(text_data=event["html"])


class MigrationConsumer(PermissionCheckedMixin, _ForwardHtml, AsyncWebsocketConsumer):
    """Live progress of one guest migration (group "migration.<id>")."""

    required_perm = Perm.VIEW_CLUSTER

    def forwarded_groups(self):
        return [events.job_group(self._pk())]

    def _pk(self) -> int:
        return int(self.scope["url_route"]["kwargs"]["pk"])

    async def on_authorized(self):
        # The card as it is now, after joining: a viewer whose socket dropped (a web node or Redis
        # restarted) catches up with what it missed, the final state included, without a reload.
        html = await database_sync_to_async(events.render_current)(self._pk())
        if html:
            await self.send(text_data=html)  # before the pushes held since joining (kvmcluster.fanout)


class ActiveMigrationsConsumer(PermissionCheckedMixin, _ForwardHtml, AsyncWebsocketConsumer):
    """The active-migrations panel shown on every page (group "migrations.active")."""

    required_perm = Perm.VIEW_CLUSTER

    def forwarded_groups(self):
        return [events.ACTIVE_GROUP]


class OperationConsumer(PermissionCheckedMixin, AsyncWebsocketConsumer):
    """Live progress of one operation (group "operation.<id>"): its counts, bar, ETA and children."""

    required_perm = Perm.VIEW_CLUSTER
    forward_only = frozenset({"operation_progress"})  # can_run is known since connect: no database

    async def on_authorized(self):
        # Checked once here: a role change closes the socket (PermissionCheckedMixin), and the reconnect
        # checks again.
        self.can_run = await database_sync_to_async(user_can)(self.scope.get("user"), Perm.RUN_MIGRATIONS)

    def forwarded_groups(self):
        return [events.operation_group(int(self.scope["url_route"]["kwargs"]["pk"]))]

    async def operation_progress(self, event):
        await self.send(text_data=event["html_run"] if self.can_run else event["html"])
