"""django-q2's ORM broker (embedded profile), woken at once when a task is enqueued.

The stock ORM broker's pusher sleeps `poll` seconds whenever the queue is empty: a requested guest
migration waited poll / 2 on average before a worker saw it, and the idle pusher queried the table
1 / poll times a second (3.7 % of a core at 0.05 s here). Here whoever enqueues also sends one datagram
to a socket the pusher waits on, so a task is dequeued as soon as its row is committed, and the idle
pusher can look at the table rarely: `poll` is only the fallback for a task nobody announced (a
redelivery after `retry`) or a pusher that could not take the socket.

The socket is an abstract Unix address (no file to clean up; gone when the pusher exits) named after
the database, so two embedded installs on one machine do not wake each other. With Redis (production)
the stock Redis broker blocks on the list instead and this module is not used.
"""

from __future__ import annotations

import hashlib
import logging
import select
import socket

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf

log = logging.getLogger(__name__)


def wakeup_address() -> bytes:
    db = str(settings.DATABASES[Conf.ORM or "default"]["NAME"])
    return b"\0kvmcluster-q-" + hashlib.sha256(db.encode()).hexdigest()[:16].encode()


def wake() -> None:
    """Tell the pusher a task is waiting; nobody listening (no cluster running) is fine."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"!", socket.MSG_DONTWAIT, wakeup_address())
    except OSError:
        pass  # no pusher bound (refused), or its buffer is full: it has wake-ups enough


class WakeableORM(ORM):
    _listener: socket.socket | None = None
    _listen_failed = False

    def enqueue(self, task):
        pk = super().enqueue(task)
        # django-q2's scheduler enqueues inside its transaction: a wake-up before the commit would
        # find nothing and leave the task to the fallback poll. Outside a transaction this runs now.
        transaction.on_commit(wake, using=Conf.ORM or "default")
        return pk

    def dequeue(self):
        # As ORM.dequeue, except for what it does on an empty queue.
        tasks = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[: Conf.BULK]
        claimed = [
            (task.pk, task.payload)
            for task in tasks
            # another cluster may have been faster with the same task
            if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task))
        ]
        if claimed:
            return claimed
        self._wait(Conf.POLL)
        return None

    def _wait(self, timeout: float) -> None:
        listener = self._listen()
        if listener is None:
            select.select([], [], [], timeout)  # a plain sleep, as the stock broker
            return
        if select.select([listener], [], [], timeout)[0]:
            while True:  # several enqueues since the last look are one wake-up
                try:
                    listener.recv(64, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break

    def _listen(self) -> socket.socket | None:
        if self._listener is None and not self._listen_failed:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                s.bind(wakeup_address())
            except OSError as err:  # another cluster on the same database has it: poll instead
                s.close()
                self._listen_failed = True
                log.info("queue wake-ups taken by another cluster (%s); polling every %s s", err, Conf.POLL)
                return None
            self._listener = s
        return self._listener
