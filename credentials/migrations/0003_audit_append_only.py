"""Make the audit table append-only in the database itself, below the ORM.

PostgreSQL rejects UPDATE and DELETE on audit rows with a trigger. SQLite rejects UPDATE; it
keeps DELETE open because Django's test flush empties tables with DELETE there (TRUNCATE on
PostgreSQL does not fire row triggers). The chain catches a deletion either way.
"""

from django.db import migrations

TABLE = "credentials_auditevent"

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION keyturn_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'audit events are append-only (' || TG_OP || ' refused)',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER keyturn_audit_append_only
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION keyturn_audit_append_only();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS keyturn_audit_append_only ON {TABLE};
DROP FUNCTION IF EXISTS keyturn_audit_append_only();
"""
SQLITE_UP = f"""
CREATE TRIGGER keyturn_audit_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS keyturn_audit_no_update;"


def forwards(apps, schema_editor):
    sql = {"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql)


def backwards(apps, schema_editor):
    sql = {"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("credentials", "0002_roles")]

    operations = [migrations.RunPython(forwards, backwards)]
