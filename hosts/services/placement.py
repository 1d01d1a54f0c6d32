"""What a guest migration or an HA recovery may change on a Guest row: its `migrating` and `recovering`
flags, and where libvirt says it is.

Invariants kept here:
- `migrating` is set in the transaction that creates a guest's active migration job and cleared in the one
  that ends it (the caller's transaction: these functions open none of their own);
- `recovering` is set, with `migrating` and the claiming worker's label, by one compare-and-set that only
  one recovery can win, and cleared with both flags by that claim's holder when the restart ends (started
  or not), or by the reconciler once the holder is gone;
- `hypervisor` changes only on libvirt's word that the guest is on that host (a verified move);
- nothing else of the row is touched: inventory owns the rest.
"""

from __future__ import annotations

from django.utils import timezone

from hosts.models import Guest, Hypervisor


def set_migrating(guest_id: int, migrating: bool) -> None:
    """Mark the guest as owned by a guest migration (inventory leaves it alone meanwhile), or release it."""
    Guest.objects.filter(pk=guest_id).update(migrating=migrating)


def claim_recovery(guest_id: int, holder: str) -> bool:
    """Claim the guest for an HA restart by worker `holder` (it shows as "recovering"; inventory leaves it
    alone meanwhile). Compare-and-set: False when another recovery holds it."""
    guests = Guest.objects.filter(pk=guest_id, recovering=False)
    return bool(guests.update(recovering=True, migrating=True, recovering_by=holder, recovering_since=timezone.now()))


def release_recovery(guest_id: int, holder: str) -> bool:
    """End `holder`'s claim. Compare-and-set: False when it holds none (released already, or reaped)."""
    guests = Guest.objects.filter(pk=guest_id, recovering=True, recovering_by=holder)
    return bool(guests.update(recovering=False, migrating=False, recovering_by="", recovering_since=None))


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
