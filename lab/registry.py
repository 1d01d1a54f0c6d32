"""Registers the lab in the dashboard: StorageServer "lab-nfs" and Hypervisors "hv-a"/"hv-b" linked to it.

Idempotent; rows are matched by name (or URI, which is unique) and brought back to the lab's values.
"""

from __future__ import annotations

from django.db import transaction

from .config import HOSTS, NFS_ADDRESS, paths, sanlock_host_id

STORAGE_NAME = "lab-nfs"


@transaction.atomic
def register() -> dict:
    from hosts.models import Hypervisor, StorageServer

    p = paths()
    storage, _ = StorageServer.objects.update_or_create(
        name=STORAGE_NAME,
        defaults={
            "address": NFS_ADDRESS,
            "export_path": str(p.export),
            "protocol": StorageServer.Protocol.NFS,
            "mount_path": str(p.export),
        },
    )
    hvs = []
    for h in HOSTS:
        hv = Hypervisor.objects.filter(uri=h.uri).first() or Hypervisor.objects.filter(name=h.name).first()
        if hv is None:
            hv = Hypervisor(name=h.name, uri=h.uri)
        hv.name, hv.uri, hv.migration_address = h.name, h.uri, h.address
        hv.migration_tls = True  # the lab gives both hosts' QEMU a CA and certificates (security.py)
        hv.ha_host_id = sanlock_host_id(h.name)  # its id in the lab's sanlock lockspace (sanlock mode, docs/ha.md)
        hv.save()
        hv.storage_servers.add(storage)
        hvs.append(hv)
    return {"storage": storage, "hypervisors": hvs}


def refresh_inventory() -> str:
    """Run the inventory refresh if the project has one yet; returns a line for the operator."""
    try:
        from hosts.services.inventory import refresh_all
    except ImportError:
        return "inventory refresh skipped: hosts.services.inventory.refresh_all does not exist yet"
    try:
        result = refresh_all()
    except Exception as exc:  # noqa: BLE001 - the lab is up either way; the operator sees why the refresh failed
        return f"inventory refresh failed: {type(exc).__name__}: {exc}"
    if isinstance(result, list) and all(hasattr(r, "hypervisor") for r in result):
        parts = [
            f"{r.hypervisor} {'online' if r.online else 'offline: ' + r.error} ({r.guests} guests)" for r in result
        ]
        return "inventory refreshed: " + ", ".join(parts)
    return "inventory refreshed"
