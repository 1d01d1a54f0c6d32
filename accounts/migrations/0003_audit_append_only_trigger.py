"""PostgreSQL only: refuse UPDATE, DELETE and TRUNCATE on the audit table.

The one UPDATE let through is Django's SET NULL of actor_id when a user is deleted (every other column
unchanged); the hash does not cover actor_id, so the chain stays valid. TRUNCATE is let through only
in Django's own test databases (named test_*), which the test runner empties between tests. SQLite has no such guard: there
`manage.py audit verify` is the check (docs/audit.md).
"""

from django.db import migrations

TABLE = "accounts_auditevent"

FORWARD = rf"""
CREATE OR REPLACE FUNCTION accounts_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    -- Django's test runner empties its own test_* databases with TRUNCATE between transactional tests.
    IF TG_OP = 'TRUNCATE' AND current_database() LIKE 'test\_%' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit trail is append-only: % on {TABLE} refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS accounts_audit_no_update_delete ON {TABLE};
CREATE TRIGGER accounts_audit_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION accounts_audit_refuse_change();
DROP TRIGGER IF EXISTS accounts_audit_no_truncate ON {TABLE};
CREATE TRIGGER accounts_audit_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_audit_refuse_change();
"""

BACKWARD = f"""
DROP TRIGGER IF EXISTS accounts_audit_no_update_delete ON {TABLE};
DROP TRIGGER IF EXISTS accounts_audit_no_truncate ON {TABLE};
DROP FUNCTION IF EXISTS accounts_audit_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_role_groups")]

    operations = [migrations.RunPython(forward, backward)]
