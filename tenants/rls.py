"""Migration helper that fences a tenant table, in the migration that creates it.

Usage inside an Alembic migration, right after ``op.create_table``::

    from tenants.rls import enable_tenant_rls, disable_tenant_rls
    enable_tenant_rls(op, "crm.accounts")

Two policies, both on the same expression:

* ``tenant_rows`` (PERMISSIVE): PostgreSQL grants nothing unless at least one
  permissive policy passes, so the tenant's own rows are the baseline grant.
* ``tenant_isolation`` (RESTRICTIVE): ANDed with every permissive policy, present
  or added later, so no later "own records" or "team" policy can ever reach across
  tenants.

The function call is wrapped in a sub-select so the planner evaluates it once per
statement (an initplan) instead of once per row.
"""

from __future__ import annotations

from typing import Any

TENANT_PREDICATE = "tenant_id = (SELECT app.current_tenant_id())"
RESTRICTIVE_POLICY = "tenant_isolation"
PERMISSIVE_POLICY = "tenant_rows"


def _quote(qualified: str) -> str:
    schema, _, table = qualified.partition(".")
    if not table:
        raise ValueError(f"use a schema-qualified table name, got {qualified!r}")
    return f'"{schema}"."{table}"'


def tenant_rls_sql(qualified: str) -> list[str]:
    name = _quote(qualified)
    return [
        f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {PERMISSIVE_POLICY} ON {name} AS PERMISSIVE FOR ALL "
        f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})",
        f"CREATE POLICY {RESTRICTIVE_POLICY} ON {name} AS RESTRICTIVE FOR ALL "
        f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})",
    ]


def enable_tenant_rls(op: Any, qualified: str) -> None:
    """Enable and force RLS on ``schema.table`` and add the two tenant policies."""
    for statement in tenant_rls_sql(qualified):
        op.execute(statement)


def disable_tenant_rls(op: Any, qualified: str) -> None:
    """Inverse of enable_tenant_rls, for downgrades that keep the table."""
    name = _quote(qualified)
    op.execute(f"DROP POLICY IF EXISTS {RESTRICTIVE_POLICY} ON {name}")
    op.execute(f"DROP POLICY IF EXISTS {PERMISSIVE_POLICY} ON {name}")
    op.execute(f"ALTER TABLE {name} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {name} DISABLE ROW LEVEL SECURITY")


AUDIT_TRIGGER = "audit_capture"


def enable_audit(op: Any, qualified: str) -> None:
    """Write every change of ``schema.table`` to ``audit.log`` (migration 0402's trigger).

    Call it in the migration that creates a tenant table, next to enable_tenant_rls:
    the catalog check names any business table without it.
    """
    op.execute(f"CREATE TRIGGER {AUDIT_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON "
               f"{_quote(qualified)} FOR EACH ROW EXECUTE FUNCTION audit.capture()")


def disable_audit(op: Any, qualified: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {AUDIT_TRIGGER} ON {_quote(qualified)}")
