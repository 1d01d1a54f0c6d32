"""Websocket routes of every app, in one list (the role x endpoint test walks it)."""

from hosts.routing import websocket_urlpatterns as hosts_ws
from migrations_app.routing import websocket_urlpatterns as migrations_ws

websocket_urlpatterns = [*hosts_ws, *migrations_ws]
