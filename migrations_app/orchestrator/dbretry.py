"""Writes a worker may repeat after the database connection was lost (PostgreSQL restarted, a failover).

Only two kinds of write go through here, because only they are safe to run twice: the latest progress
figures of a move (each write replaces the last) and the settle at its end (a compare-and-set from the
active states: a second run after a first that did commit finds nothing to move and says so). The move
itself is never retried: libvirt carries it on whatever the database does, and a task is never
re-delivered (docs/architecture.md, "Jobs run once"). docs/deploy.md, "When PostgreSQL or Redis
restarts", says what the dashboard does meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

log = logging.getLogger(__name__)

T = TypeVar("T")

# Long enough for a restart or a failover; a database away for longer is the reconciler's case.
GIVE_UP_AFTER_S = 120
WAIT_S = 1.0
LOST = (OperationalError, InterfaceError)


def forget_connection() -> None:
    """Drop this thread's connection so the next query opens a new one (a broken one is never reused)."""
    try:
        connection.close()
    except LOST:
        pass


def again_if_lost(what: str, write: Callable[[], T], give_up_after_s: float = GIVE_UP_AFTER_S) -> T:
    """Run `write`; while the database connection is lost, reconnect and run it again (up to
    `give_up_after_s`, then the last error). `write` must be safe to run twice (see the module's docstring)."""

    def reconnect(state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        log.warning("%s: database connection lost (%s); reconnecting", what, str(err).strip()[:200])
        forget_connection()

    retrying = Retrying(
        retry=retry_if_exception_type(LOST),
        stop=stop_after_delay(give_up_after_s),
        wait=wait_fixed(WAIT_S),
        before_sleep=reconnect,
        reraise=True,
    )
    return retrying(write)
