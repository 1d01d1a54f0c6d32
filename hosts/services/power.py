"""Guest power actions (start, shut down, force off) an operator takes from the guest page.

Invariant: the Guest row is never written from the request: after asking libvirt to act, we re-read
the host through inventory (hosts.services.inventory.refresh_hypervisor), so the page shows what
libvirt reports, and the same refresh pushes the change to every open topology page.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.audit import audit_record
from accounts.types import Actor
from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError
from hosts.models import Guest
from hosts.services import inventory

ACTIONS = {
    "start": (driver.start, "guest.started"),
    "shutdown": (driver.shutdown, "guest.shutdown_requested"),
    "destroy": (driver.destroy, "guest.forced_off"),
}


class PowerRefused(Exception):
    """The action was not attempted or libvirt refused it; `message` says why (libvirt's text if any)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def guest_power(*, guest: Guest, action: str, actor: Actor = None, source_ip: str = "") -> Guest:
    """Ask libvirt to start / shut down / force off `guest` on its current host, then re-read the host."""
    if action not in ACTIONS:
        raise PowerRefused(f"Unknown action {action!r}.")
    if guest.migrating:
        raise PowerRefused(f"{guest.name} is being moved; wait for the guest migration to finish.")
    call, audit_action = ACTIONS[action]
    hypervisor = guest.hypervisor
    if action == "start" and hypervisor.state == hypervisor.State.MAINTENANCE:
        raise PowerRefused(f"{hypervisor.name} is in maintenance: no guest starts on it. Move the guest first.")
    audit: dict[str, Any] = dict(
        action=audit_action,
        actor=actor,
        source_ip=source_ip,
        guest=guest.name,
        guest_uuid=str(guest.uuid),
        hypervisor=hypervisor.name,
        params={"action": action},
    )
    try:
        call(hypervisor.uri, str(guest.uuid))
    except DriverError as err:
        audit_record(**audit, outcome="failed", message=err.message)
        raise PowerRefused(err.message) from err
    with transaction.atomic():
        audit_record(**audit)
    inventory.refresh_hypervisor(hypervisor)
    guest.refresh_from_db()
    return guest
