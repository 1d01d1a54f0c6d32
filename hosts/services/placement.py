"""What a guest migration may change on a Guest row: its `migrating` flag, and where libvirt says it is.

Invariants kept here:
- `migrating` is set in the transaction that creates a guest's active migration job and cleared in the one
  that ends it (the caller's transaction: these functions open none of their own);
- `hypervisor` changes only on libvirt's word that the guest is on that host (a verified move);
- nothing else of the row is touched: inventory owns the rest.
"""

from __future__ import annotations

from django.utils import timezone

from hosts.models import Guest, Hypervisor


def set_migrating(guest_id: int, migrating: bool) -> None:
    """Mark the guest as owned by a guest migration (inventory leaves it alone meanwhile), or release it."""
    Guest.objects.filter(pk=guest_id).update(migrating=migrating)


def record_location(guest_id: int, *, power: str, hypervisor: Hypervisor | None = None) -> None:
    """libvirt has the guest with `power` on `hypervisor` (a move's target), or on its recorded host if None."""
    fields: dict[str, object] = {"power": power, "last_seen_at": timezone.now()}
    if hypervisor is not None:
        fields["hypervisor"] = hypervisor
    Guest.objects.filter(pk=guest_id).update(**fields)


def set_maintenance(hypervisor_id: int, on: bool) -> bool:
    """Put the host in the operator's sticky MAINTENANCE state (nothing new lands on it), or take it out
    (ONLINE: the next inventory refresh says OFFLINE if it does not answer). Compare-and-set: False when the
    host was already in the asked state."""
    hosts = Hypervisor.objects.filter(pk=hypervisor_id)
    if on:
        return bool(hosts.exclude(state=Hypervisor.State.MAINTENANCE).update(state=Hypervisor.State.MAINTENANCE))
    return bool(hosts.filter(state=Hypervisor.State.MAINTENANCE).update(state=Hypervisor.State.ONLINE))
