"""Wake-ups between processes on one machine: one datagram to an abstract Unix socket.

The embedded profile's queue (django-q2's ORM broker) and channel layer (channels-lite) keep their
messages in SQLite, and their readers would otherwise look every few tens of milliseconds. Whoever
writes a message also sends a wake-up to the reader's address, and the reader waits on its socket
with a long timeout instead of sleeping a short one. A lost wake-up costs only that timeout: the row
is the message, the datagram only says "look now".

Abstract addresses (Linux) leave no file behind and are released when their process exits.
"""

from __future__ import annotations

import asyncio
import hashlib
import select
import socket


def address(name: str) -> bytes:
    return b"\0kvmcluster-" + hashlib.sha256(name.encode()).hexdigest()[:24].encode()


def wake(addr: bytes) -> None:
    """Nobody bound (refused) or a full buffer (it has wake-ups enough) is fine: the caller moves on."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"!", socket.MSG_DONTWAIT, addr)
    except OSError:
        pass


class Listener:
    """The reader's end. `bind` returns None when another process already listens there."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    @classmethod
    def bind(cls, addr: bytes) -> Listener | None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.bind(addr)
        except OSError:
            s.close()
            return None
        s.setblocking(False)
        return cls(s)

    def wait(self, timeout: float) -> None:
        """Block until woken or `timeout` s have passed."""
        if select.select([self.sock], [], [], timeout)[0]:
            self._drain()

    async def wait_async(self, timeout: float) -> None:
        """As `wait`, on the running event loop."""
        loop = asyncio.get_running_loop()
        woken = loop.create_future()
        loop.add_reader(self.sock, lambda: woken.done() or woken.set_result(None))
        try:
            await asyncio.wait_for(woken, timeout)
        except TimeoutError:
            return
        finally:
            loop.remove_reader(self.sock)
        self._drain()

    def _drain(self) -> None:
        while True:  # several writes since the last look are one wake-up
            try:
                self.sock.recv(64)
            except BlockingIOError:
                return

    def close(self) -> None:
        self.sock.close()
