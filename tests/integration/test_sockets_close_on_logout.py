"""PermissionCheckedMixin: a socket needs a signed-in user with the permission, and closes on session.revoked."""

import pytest
from asgiref.sync import sync_to_async as _plain_sync_to_async
from channels.db import database_sync_to_async as sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections

from accounts.consumers import CLOSE_REVOKED, PermissionCheckedMixin
from accounts.events import _send_revoked
from accounts.roles import Perm
from tests.factories import make_user


class AuditFeedConsumer(PermissionCheckedMixin, AsyncWebsocketConsumer):
    required_perm = Perm.VIEW_AUDIT
    authorized = 0

    async def on_authorized(self):
        await self.send(text_data="hello")


def _communicator(user):
    communicator = WebsocketCommunicator(AuditFeedConsumer.as_asgi(), "/ws/test/")
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db(transaction=True, databases="__all__")
async def test_anonymous_socket_is_refused():
    connected, _ = await _communicator(AnonymousUser()).connect()
    assert connected is False


@pytest.mark.django_db(transaction=True, databases="__all__")
async def test_user_without_the_permission_is_refused():
    nobody = await sync_to_async(make_user)("nobody")  # no role at all
    connected, _ = await _communicator(nobody).connect()
    assert connected is False


@pytest.mark.django_db(transaction=True, databases="__all__")
async def test_socket_closes_when_the_session_is_revoked():
    viewer = await sync_to_async(make_user)("vivian", "viewer")
    communicator = _communicator(viewer)
    connected, _ = await communicator.connect()
    assert connected is True
    assert await communicator.receive_from(timeout=5) == "hello"
    await sync_to_async(_send_revoked)(viewer.pk)  # what user_sessions_changed sends after commit
    closed = await communicator.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": CLOSE_REVOKED}
    await communicator.wait()


@pytest.mark.django_db(transaction=True, databases="__all__")
async def test_other_users_sockets_stay_open():
    one = await sync_to_async(make_user)("one", "viewer")
    two = await sync_to_async(make_user)("two", "viewer")
    first, second = _communicator(one), _communicator(two)
    assert (await first.connect())[0] and (await second.connect())[0]
    await first.receive_from(timeout=5)
    await second.receive_from(timeout=5)
    await sync_to_async(_send_revoked)(one.pk)
    assert (await first.receive_output(timeout=10))["type"] == "websocket.close"
    assert await second.receive_nothing(timeout=1)
    await second.disconnect()


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    """Consumers query through asgiref's shared sync thread; close its connections so the test database
    can be dropped at the end (CONN_MAX_AGE would otherwise keep them open)."""
    yield
    await _plain_sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True, databases="__all__")
async def test_socket_closes_when_the_session_expires():
    """Not only on logout: a socket opened on a session that ends in 1 s is closed when it ends."""
    import datetime as dt

    from django.conf import settings
    from django.contrib.sessions.models import Session
    from django.test import Client
    from django.utils import timezone

    from kvmcluster.asgi import application

    def signed_in_cookie() -> str:
        client = Client()
        client.force_login(make_user("short-lived", "viewer", password=None))
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        Session.objects.filter(pk=key).update(expire_date=timezone.now() + dt.timedelta(seconds=1))
        return key

    cookie = await sync_to_async(signed_in_cookie)()
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    communicator = WebsocketCommunicator(application, "/ws/topology/", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected is True
    for _ in range(50):  # the topology consumer may send its initial state first
        message = await communicator.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            break
    assert message == {"type": "websocket.close", "code": CLOSE_REVOKED}
    await communicator.wait()
