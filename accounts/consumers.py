"""Permission-checked websocket consumers: check on connect, close on logout or role change.

Usage (put the mixin FIRST so its connect/disconnect wrap the consumer's):

    class TopologyConsumer(PermissionCheckedMixin, AsyncWebsocketConsumer):
        required_perm = Perm.VIEW_CLUSTER

        async def on_authorized(self):          # joined "user.<id>" and accepted; join your groups here
            await self.channel_layer.group_add(events.TOPOLOGY, self.channel_name)

        async def on_disconnect(self, code):    # leave your groups here
            await self.channel_layer.group_discard(events.TOPOLOGY, self.channel_name)

A refused connect is closed before the handshake completes (the client sees HTTP 403).
`SyncPermissionCheckedMixin` is the same for the synchronous WebsocketConsumer/JsonWebsocketConsumer.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.clientip import client_ip
from accounts.denials import record_denial
from accounts.events import user_group
from accounts.permissions import user_can
from accounts.roles import Perm
from kvmcluster import fanout

# 1012 "service restart": the htmx ws extension reconnects only after 1006/1011/1012/1013, and the
# reconnect is what re-checks the user's session and role (refused after logout or deactivation).
CLOSE_REVOKED = 1012


def _scope_ip(scope) -> str:
    client = scope.get("client") or ("", 0)
    headers = dict(scope.get("headers") or [])
    forwarded = headers.get(b"x-forwarded-for", b"").decode("latin1")
    return client_ip(_Meta({"REMOTE_ADDR": client[0] or "", "HTTP_X_FORWARDED_FOR": forwarded}))


class _Meta:
    def __init__(self, meta: dict):
        self.META = meta


_open_lock = threading.Lock()
_open: Counter[str] = Counter()


def open_sockets() -> dict[str, int]:
    """Accepted websockets of THIS process, by consumer class (for /metrics: the web process that
    serves it holds the sockets in a single-process deployment; docs/metrics.md)."""
    with _open_lock:
        return dict(_open)


def _opened(consumer) -> None:
    with _open_lock:
        _open[type(consumer).__name__] += 1
    consumer._counted = True


def _closed(consumer) -> None:
    if getattr(consumer, "_counted", False):
        consumer._counted = False
        with _open_lock:
            _open[type(consumer).__name__] -= 1


def _check(scope, perm: Perm) -> bool:
    """May this socket's user join? A refusal is audited like a refused view (accounts.denials)."""
    user = scope.get("user")
    if user_can(user, perm):
        return True
    record_denial(
        user=user,
        method="WEBSOCKET",
        path=scope.get("path", ""),
        source_ip=_scope_ip(scope),
        perm=str(perm),
        interface="socket",
    )
    return False


def _session_seconds_left(scope) -> float | None:
    """Seconds until the socket's session expires (None: no session in the scope, e.g. a test)."""
    session = scope.get("session")
    if session is None or not getattr(session, "session_key", None):
        return None
    # The stored expiry (database sessions) is the truth; get_expiry_age() would count from "now".
    expires = Session.objects.filter(pk=session.session_key).values_list("expire_date", flat=True).first()
    if expires is None:
        return 0.0  # gone already: close at once
    return max(0.0, (expires - timezone.now()).total_seconds())


def _close_at_session_expiry(consumer, left: float | None):
    """A socket lives no longer than its session: the page behind it would be signed out by then.

    It closes with CLOSE_REVOKED, so the browser reconnects and the reconnect re-checks the session."""
    if left is None:
        return None

    async def expire():
        await asyncio.sleep(left)
        await consumer.close(code=CLOSE_REVOKED)

    return asyncio.get_running_loop().create_task(expire())


class PermissionCheckedMixin:
    """For AsyncWebsocketConsumer / AsyncJsonWebsocketConsumer."""

    required_perm: Perm = Perm.VIEW_CLUSTER
    _user_group: str | None = None
    # Handlers that only forward what a push carries and never touch the database. channels runs
    # close_old_connections before every handler, on the process's one thread for sync code: with 200
    # sockets on a page each push queued 200 hops there, and delivery fell behind (bench/fanout.py).
    # Set on the consumer or a mixin after this one (no default here: it would hide the mixin's).
    forward_only: frozenset[str]

    async def dispatch(self, message):
        name = get_handler_name(message)
        if name in getattr(self, "forward_only", ()):
            await getattr(self, name)(message)
            return
        await super().dispatch(message)

    def forwarded_groups(self) -> list[str]:
        """Groups whose pushes this socket only forwards. The process reads each such group once and hands
        each push to its sockets in turn (kvmcluster.fanout) instead of waking every socket's task. Joined
        before the accept; their pushes wait until connect is done, so the initial state goes out first."""
        return []

    async def forward(self, message: dict) -> None:
        """A push of a forwarded group (kvmcluster.fanout), handled as dispatch would."""
        await self.dispatch(message)

    async def connect(self):
        user = self.scope.get("user")
        allowed = await database_sync_to_async(_check)(self.scope, self.required_perm)
        if not allowed:
            await self.close()
            return
        self._user_group = user_group(user.pk)
        # Before accept: nothing may stand between the accept and joining the consumer's own groups,
        # or a push sent the moment the client sees the socket open would be missed.
        left = await database_sync_to_async(_session_seconds_left)(self.scope)
        await self.channel_layer.group_add(self._user_group, self.channel_name)
        for group in self.forwarded_groups():
            await fanout.join(group, self)
        await self.before_accept()
        await self.accept()
        _opened(self)
        self._expiry = _close_at_session_expiry(self, left)
        await self.on_authorized()
        await fanout.release(self)

    async def before_accept(self) -> None:
        """Hook: join groups that need a database look-up first (permission already checked). A push sent
        the moment the client sees the socket open then reaches it."""

    async def on_authorized(self) -> None:
        """Hook: join the consumer's own groups, send the initial state."""

    async def on_disconnect(self, code) -> None:
        """Hook: leave the consumer's own groups."""

    async def disconnect(self, code):
        _closed(self)
        if getattr(self, "_expiry", None) is not None:
            self._expiry.cancel()
        await fanout.leave(self)
        if self._user_group:
            await self.channel_layer.group_discard(self._user_group, self.channel_name)
            await self.on_disconnect(code)

    async def session_revoked(self, event):
        await self.close(code=CLOSE_REVOKED)


class SyncPermissionCheckedMixin:
    """For the synchronous WebsocketConsumer / JsonWebsocketConsumer."""

    required_perm: Perm = Perm.VIEW_CLUSTER
    _user_group: str | None = None

    def connect(self):
        user = self.scope.get("user")
        if not _check(self.scope, self.required_perm):
            self.close()
            return
        self._user_group = user_group(user.pk)
        async_to_sync(self.channel_layer.group_add)(self._user_group, self.channel_name)
        self.accept()
        _opened(self)
        self.on_authorized()

    def on_authorized(self) -> None:
        """Hook: join the consumer's own groups, send the initial state."""

    def on_disconnect(self, code) -> None:
        """Hook: leave the consumer's own groups."""

    def disconnect(self, code):
        _closed(self)
        if self._user_group:
            async_to_sync(self.channel_layer.group_discard)(self._user_group, self.channel_name)
            self.on_disconnect(code)

    def session_revoked(self, event):
        self.close(code=CLOSE_REVOKED)
