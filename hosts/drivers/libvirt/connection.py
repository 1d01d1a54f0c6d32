"""Connections to libvirt daemons: opened lazily (never at import), bounded in time, cached per URI and
process, kept alive with libvirt keepalives, and dropped when libvirt reports them closed.

Migrations and their monitoring open connections of their own (`open_connection`): a thread blocked in
a migrate call must not share its connection with the progress poller (see docs/driver.md, "One
connection per migration"). No virConnect or virDomain leaves this package.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import libvirt
from django.conf import settings

from hosts.drivers import uri as uris
from hosts.drivers.types import HostUnreachable

from .errors import drops_connection, translate

log = logging.getLogger(__name__)

KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3

_lock = threading.Lock()
_cache: dict[str, libvirt.virConnect] = {}
# host_info's unchanging part, per cached connection (host.py fills it; forget() drops it with the connection)
_fixed: dict[str, tuple[libvirt.virConnect, dict[str, Any]]] = {}
# the bridges host.py last asked on each cached connection: (connection, monotonic time, names)
_bridges_seen: dict[str, tuple[libvirt.virConnect, float, tuple[str, ...]]] = {}
# libvirt's verdicts on guest CPUs per cached connection (host.py): (connection, {cpu key: verdict})
_verdicts: dict[str, tuple[libvirt.virConnect, dict[Any, Any]]] = {}
_event_loop_started = False


def _ensure_event_loop() -> None:
    """Run libvirt's default event loop in a daemon thread, once per process.

    It must be registered before a connection opens for that connection to deliver events
    and keepalives, so every open goes through here first.
    """
    global _event_loop_started
    with _lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


def _no_prompt(_credentials: object, _opaque: object) -> int:
    """Nobody is there to type a password: a credential the auth file did not give fails the login."""
    return -1


# A daemon with SASL (the lab's) asks for a user name and password; libvirt takes them from the auth
# file (LIBVIRT_AUTH_FILE, else ~/.config/libvirt/auth.conf) before it would call the callback.
# libvirt.open() offers no credential types at all, so SASL would find "no worthy mechs".
_AUTH = [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], _no_prompt, None]


def _open_bounded(uri: str, timeout: float) -> libvirt.virConnect:
    """libvirt.open() has no timeout of its own; a black-holed address would hang a page.

    Every connection in the process opens here, and only a URI that passed the allow-list is opened
    (raises UriNotAllowed before libvirt sees it): see hosts/drivers/uri.py for what a URI can do.
    """
    safe = uris.checked(uri)
    _ensure_event_loop()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["conn"] = libvirt.openAuth(safe, _AUTH, 0)
        except libvirt.libvirtError as err:
            box["err"] = err

    worker = threading.Thread(target=target, name=f"libvirt-open {uri}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise HostUnreachable(f"no answer from {uri} within {timeout:g} s", None, uri)
    if "err" in box:
        err = translate(box["err"], uri)
        # Failing to connect is "unreachable" whatever code libvirt chose for it.
        raise err if isinstance(err, HostUnreachable) else HostUnreachable(err.message, err.code, uri)
    conn: libvirt.virConnect = box["conn"]
    if not uri.startswith("test:"):
        try:
            conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
        except libvirt.libvirtError:
            log.debug("keepalive not supported on %s", uri)
    return conn


def open_connection(uri: str, timeout: float | None = None) -> libvirt.virConnect:
    """A new connection of its own (not cached); the caller closes it. Used for migrations."""
    return _open_bounded(uri, timeout or settings.LIBVIRT_TIMEOUT_SECONDS)


def close_quietly(conn: libvirt.virConnect) -> None:
    try:
        conn.close()
    except libvirt.libvirtError:
        pass


def deregister_quietly(conn: libvirt.virConnect, callback_ids: list[int]) -> None:
    """Drop event callbacks; one the connection already lost is not an error (it is gone either way)."""
    for cb_id in callback_ids:
        try:
            conn.domainEventDeregisterAny(cb_id)
        except libvirt.libvirtError:
            pass


def cached(uri: str) -> libvirt.virConnect:
    """The process's connection to `uri`, opened (or reopened, if libvirt says it died) on demand."""
    with _lock:
        conn = _cache.get(uri)
    if conn is not None:
        try:
            if conn.isAlive():
                return conn
        except libvirt.libvirtError:
            pass
        forget(uri)
    conn = _open_bounded(uri, settings.LIBVIRT_TIMEOUT_SECONDS)

    def closed(_conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        log.info("libvirt connection to %s closed (reason %s)", uri, reason)
        with _lock:
            if _cache.get(uri) is _conn:
                del _cache[uri]

    try:
        conn.registerCloseCallback(closed, None)
    except libvirt.libvirtError:
        pass  # the test driver has no close callbacks
    with _lock:
        _cache[uri] = conn
    return conn


def forget(uri: str) -> None:
    """Drop (and close) the cached connection to `uri`; the next call reconnects."""
    with _lock:
        conn = _cache.pop(uri, None)
        _fixed.pop(uri, None)
        _bridges_seen.pop(uri, None)
        _verdicts.pop(uri, None)
    if conn is not None:
        close_quietly(conn)


def close_all() -> None:
    for uri in list(_cache):
        forget(uri)


@contextmanager
def calling(uri: str, migration: bool = False) -> Iterator[None]:
    """Translate libvirt errors; a connection-level failure also drops the cached connection."""
    try:
        yield
    except libvirt.libvirtError as err:
        translated = translate(err, uri, migration)
        if drops_connection(err, translated):
            forget(uri)
        raise translated from err


def lookup(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain:
    return conn.lookupByUUIDString(str(uuid))
