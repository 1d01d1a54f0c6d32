"""Reading the audit trail: filtered, keyset-paginated (no COUNT(*) over a million rows), streamed exports."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from accounts.models import AuditEvent

PAGE_SIZE = 50
EXPORT_FIELDS = (
    "id",
    "created_at",
    "actor_username",
    "source_ip",
    "action",
    "guest",
    "guest_uuid",
    "hypervisor",
    "target_hypervisor",
    "migration_id",
    "outcome",
    "message",
    "params",
    "prev_hash",
    "hash",
)


def audit_events(filters: dict) -> QuerySet[AuditEvent]:
    """Rows matching `filters` (AuditFilterForm.filters()), newest first. The hypervisor filter matches
    a row's host or, for a guest migration, its source or its target."""
    filters = dict(filters)
    qs = AuditEvent.objects.all()
    hypervisor = filters.pop("hypervisor", None)
    if hypervisor:
        qs = qs.filter(Q(hypervisor=hypervisor) | Q(target_hypervisor=hypervisor))
    return qs.filter(**filters).order_by("-id")


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    older_than: int | None  # pass as ?before= to see older rows
    newer_than: int | None  # pass as ?after= to see newer rows


def audit_page(
    filters: dict, *, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> AuditPage:
    """One page, newest first, by id keyset: each page is one index range scan, however deep."""
    qs = audit_events(filters)
    if after is not None:
        rows = list(qs.filter(id__gt=after).order_by("id")[: size + 1])
        more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        more_older = bool(rows) and qs.filter(id__lt=rows[-1].id).exists()
    else:
        if before is not None:
            qs = qs.filter(id__lt=before)
        rows = list(qs[: size + 1])
        more_older = len(rows) > size
        rows = rows[:size]
        more_newer = bool(rows) and before is not None and audit_events(filters).filter(id__gt=rows[0].id).exists()
    return AuditPage(
        events=rows,
        older_than=rows[-1].id if more_older else None,
        newer_than=rows[0].id if more_newer else None,
    )


def latest_event(action: str, *, guest_uuid: str) -> AuditEvent | None:
    """The newest row of `action` about one guest (e.g. its last restart on failure), or None."""
    return AuditEvent.objects.filter(action=action, guest_uuid=guest_uuid).order_by("-id").first()


def known_actors() -> list[str]:
    """Usernames for the filter's suggestions (users, not a DISTINCT over the audit table)."""
    return list(get_user_model().objects.order_by("username").values_list("username", flat=True)[:500])


def _export_row(event: dict) -> dict:
    row = {name: event[name] for name in EXPORT_FIELDS}
    row["created_at"] = event["created_at"].isoformat()
    return row


class _Echo:
    def write(self, value):
        return value


def export_csv(filters: dict) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for event in audit_events(filters).values(*EXPORT_FIELDS).iterator(chunk_size=2000):
        row = _export_row(event)
        row["params"] = json.dumps(row["params"], sort_keys=True)
        # A leading =,+,-,@ would make a spreadsheet run the cell as a formula.
        yield writer.writerow([_csv_safe(row[name]) for name in EXPORT_FIELDS])


def _csv_safe(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def export_json(filters: dict) -> Iterator[str]:
    """A JSON array, one event per line, produced row by row."""
    yield "[\n"
    first = True
    for event in audit_events(filters).values(*EXPORT_FIELDS).iterator(chunk_size=2000):
        yield ("" if first else ",\n") + json.dumps(_export_row(event), sort_keys=True, default=str)
        first = False
    yield "\n]\n"
