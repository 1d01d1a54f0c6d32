"""A page on another origin (other scheme, host or port) cannot open our sockets with the user's cookie."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async as _plain_sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from tests.factories import make_user


def _admin_cookie() -> str:
    client = Client()
    client.force_login(make_user("origin-admin", "admin", password=None))
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def _connect(origin: str, host: str = "testserver", scheme: str = "ws") -> bool:
    from kvmcluster.asgi import application

    cookie = await database_sync_to_async(_admin_cookie)()
    headers = [(b"host", host.encode()), (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]
    if origin:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, "/ws/topology/", headers=headers)
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect(timeout=10)
    if connected:
        await communicator.disconnect()
    return connected


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize(
    "origin, host, scheme",
    [
        ("http://testserver:8081", "testserver", "ws"),  # same host, other port (another local service)
        ("https://testserver", "testserver", "ws"),  # other scheme
        ("http://testserver", "testserver", "wss"),  # an http page opening our TLS socket
        ("http://evil.example", "testserver", "ws"),  # other host
        ("null", "testserver", "ws"),  # sandboxed iframe / file://
        ("", "testserver", "ws"),  # no Origin at all
        ("http://testserver", "evil.example", "ws"),  # Host not in ALLOWED_HOSTS
    ],
)
async def test_socket_from_another_origin_is_refused(origin, host, scheme):
    assert await _connect(origin, host, scheme) is False


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize(
    "origin, host, scheme",
    [
        ("http://testserver", "testserver", "ws"),
        ("http://testserver:80", "testserver", "ws"),  # the default port spelled out
        ("https://testserver", "testserver", "wss"),
    ],
)
async def test_socket_from_our_own_origin_is_accepted(origin, host, scheme):
    assert await _connect(origin, host, scheme) is True


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    yield
    await _plain_sync_to_async(connections.close_all)()
