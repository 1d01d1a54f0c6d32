"""Domains on one host: listing, definitions, power actions and lifecycle events, on the cached connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import libvirt

from hosts.drivers.types import DomainInfo, DomainNotFound

from . import parse
from .connection import cached, calling, deregister_quietly, lookup


def _domain_info(dom: libvirt.virDomain) -> DomainInfo:
    state, reason = dom.state()
    return parse.domain_info(
        dom.XMLDesc(0),
        uuid=dom.UUIDString(),
        name=dom.name(),
        state=state,
        reason=reason,
        persistent=bool(dom.isPersistent()),
    )


def list_domains(uri: str) -> list[DomainInfo]:
    """Every domain defined or running on the host. A domain that vanishes meanwhile is skipped."""
    with calling(uri):
        domains = cached(uri).listAllDomains(0)
    infos = []
    for dom in domains:
        try:
            with calling(uri):
                infos.append(_domain_info(dom))
        except DomainNotFound:
            continue
    return infos


def domain_names(uri: str) -> list[tuple[str, str]]:
    """(name, UUID) of every domain defined or running on the host: one call, where list_domains asks
    each domain for its state and definition too (the pre-flight at a job's start needs only these)."""
    with calling(uri):
        return [(dom.name(), dom.UUIDString()) for dom in cached(uri).listAllDomains(0)]


def get_domain(uri: str, uuid: str) -> DomainInfo:
    with calling(uri):
        return _domain_info(lookup(cached(uri), uuid))


def find_domain(uri: str, uuid: str) -> DomainInfo | None:
    """The domain, or None if this host has no domain with that UUID."""
    try:
        return get_domain(uri, uuid)
    except DomainNotFound:
        return None


def domain_xml(uri: str, uuid: str, migratable: bool = False, inactive: bool = False) -> str:
    flags = libvirt.VIR_DOMAIN_XML_SECURE | (libvirt.VIR_DOMAIN_XML_MIGRATABLE if migratable else 0)
    flags |= libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
    with calling(uri):
        return str(lookup(cached(uri), uuid).XMLDesc(flags))


def act(uri: str, uuid: str, method: str, *args: Any) -> None:
    """Call one virDomain method by name on the cached connection."""
    with calling(uri):
        getattr(lookup(cached(uri), uuid), method)(*args)


def start(uri: str, uuid: str) -> None:
    act(uri, uuid, "create")


def define_and_start(uri: str, xml: str) -> None:
    """Define the domain from `xml` on the host and start it. If the start fails (LeaseHeld when the lock
    manager refuses its lease) the definition is removed again, so no stale copy is left behind."""
    with calling(uri):
        dom = cached(uri).defineXML(xml)
    try:
        with calling(uri):
            dom.create()
    except Exception:
        with calling(uri):
            if not dom.isActive():
                dom.undefine()
        raise


def undefine(uri: str, uuid: str) -> None:
    """Remove a shut-off domain's definition (refused by libvirt for a running one)."""
    act(uri, uuid, "undefine")


def shutdown(uri: str, uuid: str) -> None:
    """Ask the guest OS to power off (ACPI); returns at once."""
    act(uri, uuid, "shutdown")


def destroy(uri: str, uuid: str) -> None:
    """Pull the plug."""
    act(uri, uuid, "destroy")


def suspend(uri: str, uuid: str) -> None:
    act(uri, uuid, "suspend")


def resume(uri: str, uuid: str) -> None:
    act(uri, uuid, "resume")


# ------------------------------------------------------------------------------------ events


class Subscription:
    """Handle for a libvirt event callback; `cancel()` deregisters it."""

    def __init__(self, uri: str, conn: libvirt.virConnect, ids: list[int]):
        self.uri, self._conn, self._ids = uri, conn, ids

    def cancel(self) -> None:
        deregister_quietly(self._conn, self._ids)
        self._ids = []


def watch_lifecycle(uri: str, callback: Callable[[str, str, str], None]) -> Subscription:
    """Call `callback(uri, domain_uuid, event)` for every lifecycle event on the host.

    The callback runs on libvirt's event thread: keep it short (hand work to a queue).
    """

    def on_event(_conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, _detail: int, _opaque: object) -> None:
        callback(uri, dom.UUIDString(), parse.lifecycle_name(event))

    with calling(uri):
        conn = cached(uri)
        cb_id = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_event, None)
    return Subscription(uri, conn, [cb_id])
