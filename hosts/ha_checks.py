"""Whether a guest may be marked "restart on failure": pure checks on plain facts (docs/ha.md).

A guest restarted on another host must be fenced by the storage and must find its disks there: it needs
a lock-manager lease (libvirt refuses a second QEMU while another host holds it) and every disk on a
shared storage server. No database and no libvirt here: `hosts.services.ha` gathers the facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class HaDisk:
    target: str
    source: str
    storage: str  # the storage server's name, "" when none holds the disk
    shared: bool  # that server is shared by hosts (not a local directory)


@dataclass(frozen=True)
class HaCheck:
    name: str
    ok: bool
    detail: str


def ha_checks(*, lease: str, disks: Iterable[HaDisk]) -> list[HaCheck]:
    """The two checks, passing or not, in the order the page shows them."""
    if lease:
        lease_check = HaCheck("lease", True, f"holds lease {lease}: a second start elsewhere is refused")
    else:
        lease_check = HaCheck(
            "lease",
            False,
            "no <lease> in its definition: nothing would stop a second QEMU on its disks "
            "(add a lease in the lock manager's lockspace, docs/ha.md)",
        )
    with_source = [d for d in disks if d.source]  # an empty cdrom drive needs no storage
    unshared = [d for d in with_source if not (d.storage and d.shared)]
    if unshared:
        where = ", ".join(f"{d.target} ({d.storage or 'on no storage server'})" for d in unshared)
        storage_check = HaCheck("shared_storage", False, f"not on shared storage: {where}")
    else:
        names = sorted({d.storage for d in with_source})
        storage_check = HaCheck(
            "shared_storage", True, f"every disk on {', '.join(names)}" if names else "the guest has no disks"
        )
    return [lease_check, storage_check]


def refusals(checks: Iterable[HaCheck]) -> list[str]:
    return [c.detail for c in checks if not c.ok]
