"""Tampering with the audit table behind the application's back: `audit verify` names the row, exits 1.

In PostgreSQL the append-only trigger is switched off (session_replication_role) to simulate an attacker
with superuser rights; a separate test shows the trigger refusing UPDATE and DELETE when it is on.
"""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from accounts.audit import audit_record
from accounts.models import AuditEvent

TABLE = AuditEvent._meta.db_table


def _raw(sql: str, params=()):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # a superuser can switch ordinary triggers off
            cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


def _verify() -> str:
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue()


@pytest.fixture
def chain(db):
    AuditEvent.objects.all()  # rows from the data migration's era may exist; ids below are our own
    return [audit_record(action="test.row", guest=f"g{i}", params={"i": i}).pk for i in range(5)]


def test_intact_chain_says_ok_with_the_row_count(chain):
    assert _verify().strip() == f"ok, {AuditEvent.objects.count()} rows"


def test_changed_row_is_named(chain):
    _raw(f"UPDATE {TABLE} SET outcome = 'failed' WHERE id = %s", [chain[2]])
    with pytest.raises(CommandError, match=rf"row #{chain[2]} was altered"):
        _verify()


def test_deleted_row_is_named(chain):
    _raw(f"DELETE FROM {TABLE} WHERE id = %s", [chain[2]])
    with pytest.raises(CommandError, match=rf"deleted before #{chain[3]}.*ids {chain[2]}\.\.{chain[2]}"):
        _verify()


def test_inserted_row_is_named(chain):
    forged_id = chain[-1] + 100
    _raw(
        f"INSERT INTO {TABLE} (id, created_at, actor_username, source_ip, action, guest, guest_uuid, hypervisor,"
        " params, outcome, message, prev_hash, hash) VALUES (%s, %s, 'mallory', '', 'user.created', '', '', '',"
        " '{}', 'ok', '', %s, %s)",
        [forged_id, AuditEvent.objects.get(pk=chain[-1]).created_at, "0" * 64, "1" * 64],
    )
    with pytest.raises(CommandError, match=rf"row #{forged_id} was inserted"):
        _verify()


def test_inserted_row_between_others_is_named(chain):
    # Make room in the id sequence: a gap exists wherever a transaction rolled back.
    forged_id = chain[-1] + 1
    later = audit_record(action="test.row", params={"i": 99})
    _raw(f"UPDATE {TABLE} SET id = %s WHERE id = %s", [later.pk + 10, later.pk])  # keep its content, move it
    src = AuditEvent.objects.get(pk=chain[-1])
    _raw(
        f"INSERT INTO {TABLE} (id, created_at, actor_username, source_ip, action, guest, guest_uuid, hypervisor,"
        " params, outcome, message, prev_hash, hash) VALUES (%s, %s, 'mallory', '', 'auth.login', '', '', '',"
        " '{}', 'ok', '', %s, %s)",
        [forged_id, src.created_at, src.hash, "2" * 64],
    )
    with pytest.raises(CommandError, match=rf"row #{forged_id} was inserted"):
        _verify()


def test_recorded_head_catches_a_deleted_tail(chain):
    out = io.StringIO()
    call_command("audit", "head", stdout=out)
    line = out.getvalue().strip()
    head = json.loads(line)
    _raw(f"DELETE FROM {TABLE} WHERE id = %s", [head["id"]])
    assert _verify().startswith("ok,")  # a chain cannot see its own missing tail...
    with pytest.raises(CommandError, match=rf"head row #{head['id']} .*was deleted"):
        call_command("audit", "verify", "--head", line)  # ...the recorded head can
    with pytest.raises(CommandError, match=rf"head row #{head['id']} .*was deleted"):
        call_command("audit", "verify", "--head", f"{head['id']}:{head['hash']}")  # so can a hand-copied one


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the append-only trigger is PostgreSQL only")
@pytest.mark.parametrize(
    "sql",
    [
        f"UPDATE {TABLE} SET outcome = 'failed' WHERE id = %s",
        f"DELETE FROM {TABLE} WHERE id = %s",
        f"UPDATE {TABLE} SET actor_id = NULL, message = 'x' WHERE id = %s",
    ],
)
def test_postgresql_refuses_update_and_delete(chain, sql):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [chain[1]])
    assert AuditEvent.objects.filter(pk=chain[1], outcome="ok").exists()
