"""Who may act on guest migrations, and the audit fields of a move (one builder for every audit row)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from accounts.roles import Perm
from migrations_app.models import MigrationJob


def require(actor: Any, perm: Perm = Perm.RUN_MIGRATIONS) -> None:
    if actor is None or not actor.is_active or not actor.has_perm(perm):
        raise PermissionDenied("your role may not run guest migrations")


def audit_fields(
    *,
    actor: Any,
    source_ip: str = "",
    guest_name: str,
    guest_uuid: object,
    source_name: str,
    target_name: str,
    migration_id: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The keyword arguments of accounts.audit.audit_record for a move of `guest_name` from `source_name`
    to `target_name`; `extra` adds params, outcome or message."""
    return dict(
        actor=actor,
        source_ip=source_ip,
        guest=guest_name,
        guest_uuid=str(guest_uuid),
        hypervisor=source_name,
        target_hypervisor=target_name,
        migration_id=migration_id,
        **extra,
    )


def job_audit_fields(job: MigrationJob, actor: Any = None, source_ip: str = "", **extra: Any) -> dict[str, Any]:
    """The audit fields of an existing job; the actor defaults to whoever requested it (for the worker's rows)."""
    return audit_fields(
        actor=actor if actor is not None else job.requested_by,
        source_ip=source_ip,
        guest_name=job.guest_name,
        guest_uuid=job.guest_uuid,
        source_name=job.source.name,
        target_name=job.target.name,
        migration_id=job.pk,
        **extra,
    )
