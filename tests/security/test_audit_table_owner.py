"""PostgreSQL: an application role that does not own the audit table cannot undo the append-only guard.

The table is given to another role (as docs/audit.md tells operators to deploy), the application role
gets SELECT, INSERT and UPDATE of actor_id only (Django's SET NULL when a user is deleted); then, as
that role: writing audit rows works; UPDATE, DELETE, TRUNCATE, disabling the trigger, dropping it and
switching triggers off for the session are all refused. Everything runs inside the test's transaction,
so the roles and the ownership change roll back.
"""

import os

import pytest
from django.db import DatabaseError, connection, transaction

from accounts.audit import audit_record
from accounts.models import AuditEvent

pytestmark = pytest.mark.django_db
TABLE = AuditEvent._meta.db_table


@pytest.fixture
def app_role():
    if connection.vendor != "postgresql":
        pytest.skip("table ownership and triggers: PostgreSQL only (production profile; SQLite has no roles)")
    owner, app = f"kvm_audit_owner_{os.getpid()}", f"kvm_audit_app_{os.getpid()}"
    with connection.cursor() as cur:
        cur.execute(f"CREATE ROLE {owner} NOLOGIN")
        cur.execute(f"CREATE ROLE {app} NOLOGIN")
        cur.execute(f"ALTER TABLE {TABLE} OWNER TO {owner}")
        cur.execute(f"ALTER FUNCTION accounts_audit_refuse_change() OWNER TO {owner}")
        cur.execute(f"GRANT USAGE ON SCHEMA public TO {app}")
        cur.execute(f"GRANT SELECT, INSERT ON {TABLE} TO {app}")
        cur.execute(f"GRANT UPDATE (actor_id) ON {TABLE} TO {app}")
        cur.execute(f"GRANT USAGE ON SEQUENCE {TABLE}_id_seq TO {app}")
        cur.execute(f"GRANT SELECT ON auth_user TO {app}")
    first = audit_record(action="test.before", message="written by the deploying role")
    with connection.cursor() as cur:
        cur.execute(f"SET ROLE {app}")
    yield app, first
    with connection.cursor() as cur:
        cur.execute("RESET ROLE")


def _refused(sql: str, params=()) -> str:
    with pytest.raises(DatabaseError) as exc, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
    return str(exc.value)


def test_app_role_writes_rows_but_cannot_change_or_unguard_them(app_role):
    app, first = app_role
    with connection.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone()[0] == app
    row = audit_record(action="test.as_app", message="written by the application role")
    assert AuditEvent.objects.filter(pk=row.pk, prev_hash=first.hash).exists()

    assert "permission denied" in _refused(f"UPDATE {TABLE} SET outcome = 'failed' WHERE id = %s", [first.pk])
    assert "permission denied" in _refused(f"DELETE FROM {TABLE} WHERE id = %s", [first.pk])
    assert "permission denied" in _refused(f"TRUNCATE {TABLE}")
    assert "must be owner" in _refused(f"ALTER TABLE {TABLE} DISABLE TRIGGER accounts_audit_no_update_delete")
    assert "must be owner" in _refused(f"ALTER TABLE {TABLE} DISABLE TRIGGER ALL")
    assert "must be owner" in _refused(f"DROP TRIGGER accounts_audit_no_update_delete ON {TABLE}")
    assert "must be owner" in _refused("DROP FUNCTION accounts_audit_refuse_change() CASCADE")
    assert "permission denied" in _refused("SET session_replication_role = replica")
    # The one column it may update is still guarded by the trigger: only the SET NULL of a deleted user.
    assert "append-only" in _refused(f"UPDATE {TABLE} SET actor_id = 1 WHERE id = %s", [first.pk])
    assert AuditEvent.objects.filter(pk=first.pk, outcome="ok", message="written by the deploying role").exists()
