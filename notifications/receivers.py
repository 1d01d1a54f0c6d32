"""Turn hosts' and migrations_app's signals into notification events.

A listener runs inside the sender's transaction; its writes go in a savepoint and its errors are
logged, so a notification problem never undoes or fails a guest migration or an inventory refresh.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import receiver

from hosts.signals import hypervisor_health_changed, hypervisor_state_changed
from migrations_app.signals import ha_restart_done, job_state_changed
from notifications import events, services

log = logging.getLogger(__name__)

MIGRATION_ENDINGS = {"succeeded", "failed", "cancelled"}


def _notify(event: str, data_of) -> None:
    try:
        with transaction.atomic():
            services.notify(event, data_of())
    except Exception:  # best effort: see the module docstring
        log.exception("could not record the %s notification", event)


@receiver(job_state_changed, dispatch_uid="notifications.migration")
def migration_state_changed(sender, job, state, created=False, **kwargs):
    if created:
        event = "migration.requested"
    elif str(state) in MIGRATION_ENDINGS:
        event = f"migration.{str(state)}"
    else:
        return
    _notify(event, lambda: events.migration_data(job))


@receiver(hypervisor_state_changed, dispatch_uid="notifications.host")
def host_state_changed(sender, hypervisor_id, old, new, **kwargs):
    from hosts.models import Hypervisor

    if new == Hypervisor.State.OFFLINE:
        event = "host.offline"
    elif new == Hypervisor.State.ONLINE and old == Hypervisor.State.OFFLINE:
        event = "host.online"
    else:
        return
    _notify(event, lambda: events.host_data(Hypervisor.objects.get(pk=hypervisor_id), str(old)))


@receiver(hypervisor_health_changed, dispatch_uid="notifications.host_health")
def host_health_changed(sender, hypervisor_id, old, new, **kwargs):
    from hosts.models import Hypervisor

    event = {"suspect": "host.suspect", "failed": "host.failed", "healthy": "host.recovered"}.get(str(new))
    if event is None:
        return
    _notify(event, lambda: events.host_data(Hypervisor.objects.get(pk=hypervisor_id), str(old)))


@receiver(ha_restart_done, dispatch_uid="notifications.ha_restart")
def guest_ha_restarted(sender, guest, source, target, started, message, **kwargs):
    event = "guest.ha_restarted" if started else "guest.ha_restart_refused"
    _notify(
        event,
        lambda: events.ha_restart_data(guest=guest, source=source, target=target, started=started, message=message),
    )
