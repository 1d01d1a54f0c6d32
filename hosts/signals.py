"""Signals other apps may listen to; hosts imports none of its listeners (dependencies point one way).

`hypervisor_state_changed` is sent inside the transaction that writes a host's new state, with
`hypervisor_id`, `old` and `new` (Hypervisor.State values). Sent with send_robust: a failing listener
is logged and never fails an inventory refresh.
"""

from django.dispatch import Signal

hypervisor_state_changed = Signal()


def state_changed(hypervisor_id: int, old: str | None, new: str | None) -> None:
    """Tell listeners that a host's state moved from `old` to `new` (nothing if it did not move)."""
    if old and new and old != new:
        hypervisor_state_changed.send_robust(sender="hosts", hypervisor_id=hypervisor_id, old=old, new=new)


# Sent inside the transaction that changes a host's health (hosts.services.ha_detection), with
# `hypervisor_id`, `old` and `new` (Hypervisor.Health values: healthy, suspect, failed).
hypervisor_health_changed = Signal()


def health_changed(hypervisor_id: int, old: str, new: str) -> None:
    if old != new:
        hypervisor_health_changed.send_robust(sender="hosts", hypervisor_id=hypervisor_id, old=old, new=new)
