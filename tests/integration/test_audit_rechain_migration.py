"""Migration 0005 re-chains rows written before the keyed chain (unkeyed SHA-256, "hv-a -> hv-b", outcome
"error"): afterwards the keyed chain verifies, the filters find the old rows by either host and by
"failed", and one audit.rehashed row records the old head and any break the old chain already had."""

import datetime as dt
import hashlib
import importlib
import json

import pytest
from django.apps import apps
from django.db import connection

from accounts.chain import verify_chain
from accounts.models import AuditEvent
from accounts.selectors import audit_events

pytestmark = pytest.mark.django_db
rechain = importlib.import_module("accounts.migrations.0005_audit_keyed_chain").rechain
OLD = ("created_at", "actor_username", "source_ip", "action", "guest", "guest_uuid", "hypervisor")
OLD += ("migration_id", "params", "outcome", "message")
TABLE = AuditEvent._meta.db_table
T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def _legacy_rows(specs, tamper_id=None) -> list[AuditEvent]:
    """Rows as the old audit_record wrote them (plain sha256 over the old fields)."""
    prev, rows = "", []
    for i, (action, hosts, outcome) in enumerate(specs, 1):
        row = dict.fromkeys(OLD, "")
        row.update(created_at=T0 + dt.timedelta(seconds=i), action=action, hypervisor=hosts, outcome=outcome)
        row.update(migration_id=7, params={"i": i})
        content = {**row, "created_at": row["created_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256((canonical + "\n" + prev).encode()).hexdigest()
        rows.append(AuditEvent(id=i, prev_hash=prev, hash=digest, **row))
        prev = digest
    if tamper_id:
        rows[tamper_id - 1].message = "altered before the upgrade"
    AuditEvent.objects.bulk_create(rows)
    if connection.vendor == "postgresql":  # explicit ids do not move the sequence
        with connection.cursor() as cur:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), max(id)) FROM {TABLE}")
    return rows


class _Editor:
    def __init__(self):
        self.connection = connection

    def execute(self, sql, params=None):
        with connection.cursor() as cur:
            cur.execute(sql, params)


SPECS = [
    ("migration.requested", "hv-a -> hv-b", "ok"),
    ("migration.started", "hv-a -> hv-b", "ok"),
    ("migration.failed", "hv-a -> hv-b", "error"),
    ("hypervisor.created", "hv-c", "ok"),
]


def test_old_rows_are_rechained_split_and_renamed():
    old = _legacy_rows(SPECS)
    assert verify_chain().problems  # unkeyed rows do not verify under the key
    rechain(apps, _Editor())
    report = verify_chain()
    assert report.ok, [p.message for p in report.problems]
    assert report.rows == len(SPECS) + 1
    assert set(audit_events({"hypervisor": "hv-b"}).values_list("id", flat=True)) == {1, 2, 3}
    assert set(audit_events({"hypervisor": "hv-a"}).values_list("id", flat=True)) == {1, 2, 3}
    assert list(audit_events({"outcome": "failed"}).values_list("action", flat=True)) == ["migration.failed"]
    assert AuditEvent.objects.get(pk=4).hypervisor == "hv-c"
    note = AuditEvent.objects.get(action="audit.rehashed")
    assert note.params["old_head"] == f"4:{old[-1].hash}" and note.params["old_breaks"] == []
    assert note.outcome == "ok"


def test_a_break_in_the_old_chain_is_recorded_not_laundered():
    _legacy_rows(SPECS, tamper_id=2)
    rechain(apps, _Editor())
    assert verify_chain().ok
    note = AuditEvent.objects.get(action="audit.rehashed")
    assert note.params["old_breaks"] == [2] and note.outcome == "failed"
    assert "broken at 1 row(s)" in note.message


def test_an_empty_table_stays_empty():
    rechain(apps, _Editor())
    assert not AuditEvent.objects.exists()
