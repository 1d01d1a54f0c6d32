"""Onboarding: operators add, edit and remove hypervisors and storage servers, and test a URI.

Each function is one operator action: atomic, writes its audit row in the same transaction, and
pushes the new topology to browsers once committed. Facts about hosts (CPUs, guests...) are never
written here: inventory owns them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.audit import audit_record
from accounts.types import Actor
from hosts import events
from hosts.drivers import libvirt as driver
from hosts.drivers.types import DriverError, HostInfo
from hosts.models import Hypervisor, StorageServer


class InUse(Exception):
    """Refused: the object still has dependants (the message says which)."""


@dataclass(frozen=True)
class ConnectionResult:
    uri: str
    info: HostInfo | None = None
    error: str = ""  # libvirt's own text
    error_kind: str = ""  # HostUnreachable, DriverError ...

    @property
    def ok(self) -> bool:
        return self.info is not None


def connection_test(uri: str) -> ConnectionResult:
    """Open `uri` on a fresh connection and report the host's facts or libvirt's error text."""
    try:
        return ConnectionResult(uri=uri, info=driver.probe(uri))
    except DriverError as err:
        return ConnectionResult(uri=uri, error=err.message or str(err), error_kind=type(err).__name__)


def _announce() -> None:
    # robust: the change is committed; a failed push must not turn the response into a 500.
    transaction.on_commit(events.topology_changed, robust=True)


def _request_refresh(hypervisor: Hypervisor, actor: Actor) -> None:
    """Fetch the new host's facts soon, without waiting for the next scheduled refresh."""
    from hosts.services import inventory

    transaction.on_commit(lambda: inventory.request_refresh(hypervisor=hypervisor, actor=actor), robust=True)


# ------------------------------------------------------------------------------------- hypervisors


@transaction.atomic
def hypervisor_create(*, data: dict, actor: Actor = None, source_ip: str = "") -> Hypervisor:
    servers = list(data.get("storage_servers") or [])
    hypervisor = Hypervisor.objects.create(
        name=data["name"],
        uri=data["uri"],
        migration_address=data.get("migration_address", ""),
        migration_tls=bool(data.get("migration_tls")),
    )
    hypervisor.storage_servers.set(servers)
    audit_record(
        action="hypervisor.created",
        actor=actor,
        source_ip=source_ip,
        hypervisor=hypervisor.name,
        params={"uri": hypervisor.uri, "storage_servers": [s.name for s in servers]},
    )
    _announce()
    _request_refresh(hypervisor, actor)
    return hypervisor


@transaction.atomic
def hypervisor_update(*, hypervisor: Hypervisor, data: dict, actor: Actor = None, source_ip: str = "") -> Hypervisor:
    """Edit name/URI/mounts; `maintenance` sets or clears the operator's sticky MAINTENANCE state."""
    before = {"name": hypervisor.name, "uri": hypervisor.uri, "state": hypervisor.state}
    hypervisor.name = data["name"]
    hypervisor.uri = data["uri"]
    hypervisor.migration_address = data.get("migration_address", "")
    fields = ["name", "uri", "migration_address"]
    if "migration_tls" in data:
        hypervisor.migration_tls = bool(data["migration_tls"])
        fields.append("migration_tls")
    if "maintenance" in data:
        if data["maintenance"] and hypervisor.state != Hypervisor.State.MAINTENANCE:
            hypervisor.state = Hypervisor.State.MAINTENANCE
            fields.append("state")
        elif not data["maintenance"] and hypervisor.state == Hypervisor.State.MAINTENANCE:
            hypervisor.state = Hypervisor.State.UNKNOWN  # the next refresh says online or offline
            fields.append("state")
    hypervisor.save(update_fields=fields)
    if "storage_servers" in data:
        hypervisor.storage_servers.set(list(data["storage_servers"]))
    audit_record(
        action="hypervisor.updated",
        actor=actor,
        source_ip=source_ip,
        hypervisor=hypervisor.name,
        params={"before": before, "uri": hypervisor.uri, "state": hypervisor.state},
    )
    _announce()
    if before["uri"] != hypervisor.uri:
        _request_refresh(hypervisor, actor)
    return hypervisor


def hypervisor_delete_refusal(hypervisor: Hypervisor) -> str:
    """Why `hypervisor` may not be removed now, or '' if it may."""
    count = hypervisor.guests.count()
    if count:
        return (
            f"{hypervisor.name} still has {count} guest{'s' if count != 1 else ''}. Move or remove them first; "
            "inventory would otherwise lose track of where they run."
        )
    return ""


@transaction.atomic
def hypervisor_delete(*, hypervisor: Hypervisor, actor: Actor = None, source_ip: str = "") -> None:
    reason = hypervisor_delete_refusal(hypervisor)
    if reason:
        raise InUse(reason)
    name, uri = hypervisor.name, hypervisor.uri
    hypervisor.delete()
    audit_record(action="hypervisor.deleted", actor=actor, source_ip=source_ip, hypervisor=name, params={"uri": uri})
    _announce()


# --------------------------------------------------------------------------------- storage servers


def _storage_params(server: StorageServer) -> dict:
    return {
        "name": server.name,
        "address": server.address,
        "protocol": server.protocol,
        "export_path": server.export_path,
        "mount_path": server.mount_path,
    }


@transaction.atomic
def storage_server_create(*, data: dict, actor: Actor = None, source_ip: str = "") -> StorageServer:
    server = StorageServer.objects.create(**data)
    audit_record(action="storage.created", actor=actor, source_ip=source_ip, params=_storage_params(server))
    _announce()
    return server


@transaction.atomic
def storage_server_update(
    *, server: StorageServer, data: dict, actor: Actor = None, source_ip: str = ""
) -> StorageServer:
    before = _storage_params(server)
    for key, value in data.items():
        setattr(server, key, value)
    server.save()
    audit_record(
        action="storage.updated",
        actor=actor,
        source_ip=source_ip,
        params={"before": before, "after": _storage_params(server)},
    )
    _announce()
    return server


def storage_server_delete_refusal(server: StorageServer) -> str:
    disks = server.guestdisk_set.count()
    if disks:
        return (
            f"{disks} guest disk{'s' if disks != 1 else ''} live on {server.name}. "
            "Move those guests' storage first, or the topology would show them as unshared."
        )
    return ""


@transaction.atomic
def storage_server_delete(*, server: StorageServer, actor: Actor = None, source_ip: str = "") -> None:
    reason = storage_server_delete_refusal(server)
    if reason:
        raise InUse(reason)
    params = _storage_params(server)
    server.delete()
    audit_record(action="storage.deleted", actor=actor, source_ip=source_ip, params=params)
    _announce()
