"""Re-chain existing audit rows under the keyed hash and the new columns.

Before: hash = sha256(content + "\\n" + prev_hash); a guest migration's hosts in one column as
"hv-a -> hv-b"; failed moves/controls with outcome "error". After: HMAC-SHA256 with settings.AUDIT_KEY,
`hypervisor` = source and `target_hypervisor` = target, outcome "failed".

Rewriting history needs care, so this migration:
1. verifies the old (unkeyed) chain first and keeps what it finds;
2. rewrites the two columns and re-chains every row in id order under the key;
3. appends one `audit.rehashed` row recording the old head (id + old hash), the row count and every break
   found in step 1, so a chain that was already tampered with is not silently laundered: the record of
   it is now itself in the keyed chain. Keep the printed old head with the anchors if you had one.
The hashing code is frozen here (not imported) so later changes to accounts.audit cannot change what this
migration did. PostgreSQL: the append-only trigger is switched off for this transaction only (the
migration runs as the table's owner, docs/audit.md) and on again before it commits.
"""

import datetime as dt
import hashlib
import hmac
import json

from django.conf import settings
from django.db import migrations

TABLE = "accounts_auditevent"
OLD_FIELDS = (
    "created_at",
    "actor_username",
    "source_ip",
    "action",
    "guest",
    "guest_uuid",
    "hypervisor",
    "migration_id",
    "params",
    "outcome",
    "message",
)
NEW_FIELDS = (*OLD_FIELDS[:7], "target_hypervisor", *OLD_FIELDS[7:])
TRIGGERS = ("accounts_audit_no_update_delete", "accounts_audit_no_truncate")
CHUNK = 1000


def _content(row, fields):
    content = {name: row[name] for name in fields}
    content["created_at"] = row["created_at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def old_hash(row, prev_hash):
    return hashlib.sha256((_content(row, OLD_FIELDS) + "\n" + prev_hash).encode()).hexdigest()


def new_hash(row, prev_hash):
    message = (_content(row, NEW_FIELDS) + "\n" + prev_hash).encode()
    return hmac.new(settings.AUDIT_KEY.encode(), message, hashlib.sha256).hexdigest()


def _convert(row):
    """The new columns for an old row."""
    hosts = row["hypervisor"]
    if row["action"].startswith("migration.") and " -> " in hosts and not row["target_hypervisor"]:
        row["hypervisor"], row["target_hypervisor"] = hosts.split(" -> ", 1)
    if row["outcome"] == "error":
        row["outcome"] = "failed"
    return row


def rechain(apps, schema_editor):
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    connection = schema_editor.connection
    columns = ("id", "prev_hash", "hash", *NEW_FIELDS)
    if not AuditEvent.objects.exists():
        return
    if connection.vendor == "postgresql":
        # ALTER TABLE refuses while deferred FK checks are queued on the table: run them now.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name in TRIGGERS:
            schema_editor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {name}")
    expected, breaks, count, old_head = "", [], 0, None
    new_prev, pending = "", []
    for row in AuditEvent.objects.order_by("id").values(*columns).iterator(chunk_size=CHUNK):
        count += 1
        if old_hash(row, row["prev_hash"]) != row["hash"] or row["prev_hash"] != expected:
            breaks.append(row["id"])  # named by the old verifier's rules would need lookahead; ids suffice
        expected, old_head = row["hash"], (row["id"], row["hash"])
        row = _convert(row)
        row["prev_hash"] = new_prev
        row["hash"] = new_prev = new_hash(row, new_prev)
        pending.append(row)
        if len(pending) >= CHUNK:
            _write(AuditEvent, pending)
            pending = []
    _write(AuditEvent, pending)
    now = dt.datetime.now(dt.UTC)
    record = {
        "created_at": now,
        "actor_username": "",
        "source_ip": "",
        "action": "audit.rehashed",
        "guest": "",
        "guest_uuid": "",
        "hypervisor": "",
        "target_hypervisor": "",
        "migration_id": None,
        "params": {
            "rows": count,
            "old_head": f"{old_head[0]}:{old_head[1]}",
            "old_breaks": breaks[:1000],
            "old_breaks_total": len(breaks),
            "scheme": "sha256 -> hmac-sha256",
        },
        "outcome": "ok" if not breaks else "failed",
        "message": (
            f"{count} rows re-chained under the audit key; the old chain was "
            + ("intact" if not breaks else f"broken at {len(breaks)} row(s) before the re-chain")
        ),
    }
    record["prev_hash"] = new_prev
    record["hash"] = new_hash(record, new_prev)
    AuditEvent.objects.create(**record)
    if connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name in TRIGGERS:
            schema_editor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {name}")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")
    print(f"\n  audit: {count} rows re-chained; old head {old_head[0]}:{old_head[1]}; old breaks: {len(breaks)}")


def _write(AuditEvent, rows):
    objs = [AuditEvent(**row) for row in rows]
    AuditEvent.objects.bulk_update(objs, ["hypervisor", "target_hypervisor", "outcome", "prev_hash", "hash"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_audit_target_hypervisor")]

    operations = [migrations.RunPython(rechain, migrations.RunPython.noop)]
