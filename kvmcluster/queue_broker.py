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

import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf

from kvmcluster import wakeup

log = logging.getLogger(__name__)


def wakeup_address() -> bytes:
    return wakeup.address("django-q:" + str(settings.DATABASES[Conf.ORM or "default"]["NAME"]))


def wake() -> None:
    """Tell the pusher a task is waiting; nobody listening (no cluster running) is fine."""
    wakeup.wake(wakeup_address())


class WakeableORM(ORM):
    _listener: wakeup.Listener | None = None
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
        listener = self._listen()
        if listener is None:
            time.sleep(Conf.POLL)  # as the stock broker
        else:
            listener.wait(Conf.POLL)
        return None

    def _listen(self) -> wakeup.Listener | None:
        if self._listener is None and not self._listen_failed:
            self._listener = wakeup.Listener.bind(wakeup_address())
            if self._listener is None:  # another cluster on the same database has it: poll instead
                self._listen_failed = True
                log.info("queue wake-ups taken by another cluster; polling every %s s", Conf.POLL)
        return self._listener
