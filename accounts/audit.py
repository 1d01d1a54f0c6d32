"""Writing the audit trail: `audit_record()` appends one hash-chained row; `request_ip()` names the client.

The chain: every row stores `prev_hash` (the previous row's `hash`, "" for the first) and
`hash = HMAC-SHA256(AUDIT_KEY, canonical_json(content) + "\n" + prev_hash)`. The key lives in settings
(environment / a 0600 file in the data directory), never in the database, so write access to the table is
not enough to forge a consistent chain. Writers are serialized so the "previous row" is
unambiguous: PostgreSQL takes a transaction-scoped advisory lock; SQLite runs every transaction as
BEGIN IMMEDIATE (settings), which already admits one writer at a time. docs/audit.md explains more.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuditEvent

# Any constant will do; it only has to be the same in every process ("kvmaudt" in ASCII).
AUDIT_LOCK_KEY = 0x6B766D61756474

# The fields the hash covers, in a fixed order. `actor_id` is left out on purpose: deleting a user
# sets it to NULL, and that must not break the chain (actor_username is what the row vouches for).
HASHED_FIELDS = (
    "created_at",
    "actor_username",
    "source_ip",
    "action",
    "guest",
    "guest_uuid",
    "hypervisor",
    "target_hypervisor",
    "migration_id",
    "params",
    "outcome",
    "message",
)


def _jsonable(value: Any) -> Any:
    """JSON that survives a round trip through SQLite/PostgreSQL unchanged, so the hash stays stable."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value.replace("\x00", "") if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _clean_text(value: Any, max_length: int | None = None) -> str:
    # PostgreSQL refuses NUL in text; an audit write must never fail on odd input.
    text = "" if value is None else str(value).replace("\x00", "")
    return text[:max_length] if max_length else text


def canonical_created_at(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_content(row: dict[str, Any]) -> dict[str, Any]:
    """The hashed content of a row given as a dict (e.g. from `.values()`)."""
    content = {name: row[name] for name in HASHED_FIELDS}
    content["created_at"] = canonical_created_at(row["created_at"])
    return content


def compute_hash(content: dict[str, Any], prev_hash: str, key: str | None = None) -> str:
    """HMAC-SHA256 of the canonical content and the previous hash, keyed with settings.AUDIT_KEY."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    secret = (settings.AUDIT_KEY if key is None else key).encode()
    return hmac.new(secret, (canonical + "\n" + prev_hash).encode(), hashlib.sha256).hexdigest()


def event_hash(event: AuditEvent) -> str:
    """The hash `event` should carry given its content and its `prev_hash`."""
    row = {name: getattr(event, name) for name in HASHED_FIELDS}
    return compute_hash(row_content(row), event.prev_hash)


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_KEY])
    # SQLite: the surrounding transaction began IMMEDIATE, so this connection already holds the
    # database's single write lock.


def audit_record(
    *,
    action: str,
    actor=None,
    source_ip: str = "",
    guest: str = "",
    guest_uuid: str = "",
    hypervisor: str = "",
    target_hypervisor: str = "",
    migration_id: int | None = None,
    params: dict | None = None,
    outcome: str = "ok",
    message: str = "",
) -> AuditEvent:
    """Append one row to the audit trail and return it.

    Call it inside the transaction of the change it describes, so the row exists iff the change does;
    called outside one it opens its own. `actor` is a User (or None / AnonymousUser for the system).
    `hypervisor` is the host concerned (a guest migration's source), `target_hypervisor` a move's target;
    the list's hypervisor filter matches either. `outcome` is one of AuditEvent.Outcome (a programming
    error otherwise: the filter offers only those, so any other word would be unfindable).
    """
    if outcome not in AuditEvent.Outcome.values:
        raise ValueError(f"audit outcome {outcome!r} is not one of {AuditEvent.Outcome.values}")
    user = actor if getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        actor=user,
        actor_username=_clean_text(user.get_username() if user else "", 150),
        source_ip=_clean_text(source_ip, 45),
        action=_clean_text(action, 64),
        guest=_clean_text(guest, 255),
        guest_uuid=_clean_text(guest_uuid, 36),
        hypervisor=_clean_text(hypervisor, 255),
        target_hypervisor=_clean_text(target_hypervisor, 255),
        migration_id=int(migration_id) if migration_id is not None else None,
        params=_jsonable(params or {}),
        outcome=_clean_text(outcome, 16),
        message=_clean_text(message),
    )
    with transaction.atomic():
        _lock_chain()
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event.prev_hash = last or ""
        # Stamped under the lock, so created_at follows chain order (barring clock steps).
        event.created_at = timezone.now()
        event.hash = event_hash(event)
        event.save(force_insert=True)
        every = settings.AUDIT_ANCHOR_EVERY
        if every > 0 and event.pk % every == 0:
            # Anchor the head outside the database once this row is committed (accounts.anchor).
            transaction.on_commit(_anchor_quietly)
    return event


def _anchor_quietly() -> None:
    from accounts.anchor import append_anchor

    try:
        append_anchor()
    except OSError as err:  # the schedule retries; an audit write must not fail on the log file
        import logging

        logging.getLogger(__name__).warning("could not append the audit anchor: %s", err)


def request_ip(request) -> str:
    """The client's address (normalized; "" if absent or malformed). X-Forwarded-For counts only from a
    configured trusted proxy (accounts.clientip): otherwise it is whatever the client wants it to be."""
    from accounts.clientip import client_ip

    return client_ip(request)
