"""Helper for the websocket tests: a consumer's socket opened as a signed-in user, its connect accepted."""

from channels.testing import WebsocketCommunicator


async def open_socket(app, path: str, user, **route_kwargs) -> WebsocketCommunicator:
    """`route_kwargs` are what the URL route would capture (e.g. pk=42 for /ws/migrations/42/)."""
    communicator = WebsocketCommunicator(app, path)
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": route_kwargs}
    assert (await communicator.connect())[0]
    return communicator
