"""The events a target can subscribe to, and the payload every delivery carries.

A new event is one line in EVENTS plus one `notifications.services.notify(event, data)` (or a signal that
notifications.receivers listens to) where the thing happens; the form and the docs read this table.
"""

from __future__ import annotations

import datetime as dt
import uuid

PAYLOAD_VERSION = 1

EVENTS: dict[str, str] = {
    "migration.requested": "A guest migration was requested",
    "migration.succeeded": "A guest migration succeeded",
    "migration.failed": "A guest migration failed",
    "migration.cancelled": "A guest migration was cancelled",
    "host.offline": "A hypervisor went offline",
    "host.online": "A hypervisor came back online",
    "host.suspect": "A hypervisor is suspect: libvirt does not answer",
    "host.failed": "A hypervisor was declared failed",
    "host.recovered": "A suspect or failed hypervisor is healthy again",
    "guest.ha_restarted": "A guest was restarted on another host after its host failed",
    "guest.ha_restart_refused": "A guest of a failed host was not restarted elsewhere",
}


def payload(event: str, data: dict, occurred_at: dt.datetime) -> dict:
    """The JSON document sent for one event (the same for every target and every attempt)."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    return {
        "version": PAYLOAD_VERSION,
        "id": str(uuid.uuid4()),
        "event": event,
        "summary": summary(event, data),
        "occurred_at": occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def summary(event: str, data: dict) -> str:
    """One line for people (email subject, the delivery log)."""
    job = data.get("migration") or {}
    host = data.get("hypervisor") or {}
    restart = data.get("ha_restart") or {}
    if restart:
        return (
            f"{EVENTS[event]}: {restart.get('guest', '?')} ({restart.get('source', '?')}): {restart.get('message', '')}"
        )
    if job:
        route = f"{job.get('source', '?')} → {job.get('target', '?')}"
        text = f"{EVENTS[event]}: {job.get('guest', '?')} {route} (#{job.get('id')})"
        return text + (f": {job['error']}" if job.get("error") else "")
    if host:
        return f"{EVENTS[event]}: {host.get('name', '?')}" + (
            f": {host['last_error']}" if host.get("last_error") else ""
        )
    return EVENTS[event]


def migration_data(job) -> dict:
    """What a migration event tells about the job (`job` is a MigrationJob with source and target)."""
    return {
        "migration": {
            "id": job.pk,
            "guest": job.guest_name,
            "guest_uuid": str(job.guest_uuid),
            "source": job.source.name,
            "target": job.target.name,
            "kind": job.kind,
            "state": job.state,
            "error": job.error or "",
            "where_guest_is": job.where_guest_is or "",
            "path": job.get_absolute_url(),
        }
    }


def host_data(hypervisor, old: str) -> dict:
    return {
        "hypervisor": {
            "id": hypervisor.pk,
            "name": hypervisor.name,
            "state": hypervisor.state,
            "previous_state": old,
            "last_error": hypervisor.last_error or "",
            "health": hypervisor.health,
            "health_note": hypervisor.health_note,
        }
    }


def ha_restart_data(*, guest: str, source: str, target: str, started: bool, message: str) -> dict:
    return {"ha_restart": {"guest": guest, "source": source, "target": target, "started": started, "message": message}}
