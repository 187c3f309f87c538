"""Read ``pg_catalog`` and list every way the schema breaks the tenancy rules.

Used by the test suite (which fails on any finding) and by ``erp db check`` (so an
operator can run it against production after a hand-applied hotfix). Each finding
names the table or role, so the fix is obvious.

Rules for every table in a tenant schema that is not in ``GLOBAL_TABLES``:

* ``tenant_id uuid NOT NULL``; the primary key starts with ``tenant_id``;
* row-level security ENABLED and FORCED;
* a RESTRICTIVE policy for ALL commands whose USING and WITH CHECK are the tenant
  predicate;
* every foreign key to another tenant table is composite and led by ``tenant_id``
  on both sides;
* every unique constraint or unique index starts with ``tenant_id``.

And for the runtime roles (app, analytics): not superuser, not BYPASSRLS, owner of
nothing in those schemas, no TRUNCATE/REFERENCES/TRIGGER on any table there. Every
view in those schemas must be ``security_invoker`` (a view otherwise runs with its
owner's rights, and the owner is exempt from RLS unless forced).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

POLICY_FUNCTION = "app.current_tenant_id()"


def _rows(conn: Any, query: str, params: Sequence[Any] = ()) -> list[tuple]:
    return list(conn.execute(query, params).fetchall())


def catalog_problems(
    conn: Any,
    schemas: Iterable[str],
    global_tables: Iterable[str],
    runtime_roles: Iterable[str],
) -> list[str]:
    """Findings as sentences; an empty list means the schema obeys every rule.

    ``conn`` is a psycopg connection (any role may read the catalog).
    """
    schemas = list(schemas)
    allow = set(global_tables)
    problems: list[str] = []

    tables = _rows(
        conn,
        """
        SELECT c.oid, n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
        ORDER BY 2
        """,
        (schemas,),
    )
    tenant_oids = {oid for oid, name, *_ in tables if name not in allow}

    for oid, name, rls, forced in tables:
        if name in allow:
            continue
        col = _rows(
            conn,
            """
            SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull
            FROM pg_attribute a WHERE a.attrelid = %s AND a.attname = 'tenant_id'
              AND NOT a.attisdropped
            """,
            (oid,),
        )
        if not col:
            problems.append(f"{name}: no tenant_id column (tenant tables need tenant_id uuid "
                            "NOT NULL; global tables must be listed in GLOBAL_TABLES)")
        elif col[0][0] != "uuid" or not col[0][1]:
            problems.append(f"{name}: tenant_id must be uuid NOT NULL (is {col[0][0]}"
                            f"{'' if col[0][1] else ', nullable'})")

        pk = _rows(
            conn,
            """
            SELECT (SELECT attname FROM pg_attribute
                    WHERE attrelid = con.conrelid AND attnum = con.conkey[1])
            FROM pg_constraint con WHERE con.conrelid = %s AND con.contype = 'p'
            """,
            (oid,),
        )
        if not pk:
            problems.append(f"{name}: no primary key (must be (tenant_id, id))")
        elif pk[0][0] != "tenant_id":
            problems.append(f"{name}: primary key starts with {pk[0][0]}, not tenant_id")

        if not rls:
            problems.append(f"{name}: row-level security is not enabled")
        if not forced:
            problems.append(f"{name}: row-level security is not forced")

        policies = _rows(
            conn,
            """
            SELECT pol.polname, pol.polpermissive, pol.polcmd,
                   pg_get_expr(pol.polqual, pol.polrelid),
                   pg_get_expr(pol.polwithcheck, pol.polrelid),
                   pol.polroles = '{0}'::oid[]
            FROM pg_policy pol WHERE pol.polrelid = %s
            """,
            (oid,),
        )
        # The policy must apply TO PUBLIC: one scoped to some other role would leave
        # the app role bound by nothing but the permissive policies.
        if not any(
            not permissive and cmd == "*" and to_public and _is_tenant_predicate(qual)
            and _is_tenant_predicate(check)
            for _, permissive, cmd, qual, check, to_public in policies
        ):
            problems.append(f"{name}: no RESTRICTIVE policy FOR ALL TO PUBLIC with USING and "
                            f"WITH CHECK tenant_id = (SELECT {POLICY_FUNCTION})")

        for conname, cols, ref_oid, ref_name, ref_cols in _rows(
            conn,
            """
            SELECT con.conname,
                   ARRAY(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
                         ORDER BY k.i),
                   con.confrelid,
                   (SELECT n.nspname || '.' || c.relname FROM pg_class c
                    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = con.confrelid),
                   ARRAY(SELECT attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
                         ORDER BY k.i)
            FROM pg_constraint con WHERE con.conrelid = %s AND con.contype = 'f'
            """,
            (oid,),
        ):
            if ref_oid not in tenant_oids:
                continue
            if len(cols) < 2 or cols[0] != "tenant_id" or ref_cols[0] != "tenant_id":
                problems.append(
                    f"{name}: foreign key {conname} ({', '.join(cols)}) -> {ref_name} is not "
                    "composite on (tenant_id, ...): a row could point at another tenant's row"
                )

        for idxname, first in _rows(
            conn,
            """
            SELECT ic.relname,
                   CASE WHEN i.indkey[0] = 0 THEN NULL
                        ELSE (SELECT attname FROM pg_attribute
                              WHERE attrelid = i.indrelid AND attnum = i.indkey[0]) END
            FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
            WHERE i.indrelid = %s AND i.indisunique
            """,
            (oid,),
        ):
            if first != "tenant_id":
                problems.append(
                    f"{name}: unique index {idxname} does not start with tenant_id "
                    "(uniqueness must be per tenant, and a global unique check leaks existence)"
                )

    for (view,) in _rows(
        conn,
        """
        SELECT n.nspname || '.' || c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY(%s)
          AND NOT coalesce('security_invoker=true' = ANY(c.reloptions)
                           OR 'security_invoker=on' = ANY(c.reloptions), false)
        ORDER BY 1
        """,
        (schemas,),
    ):
        problems.append(f"{view}: view is not security_invoker (it would bypass RLS)")

    runtime_roles = list(runtime_roles)
    problems.extend(role_problems(conn, schemas, runtime_roles))
    problems.extend(function_problems(conn, runtime_roles))
    return problems


def audit_problems(conn: Any, audited_schemas: Iterable[str],
                   global_tables: Iterable[str]) -> list[str]:
    """Tables in business schemas whose changes would escape the audit trail."""
    allow = set(global_tables)
    rows = _rows(
        conn,
        """
        SELECT n.nspname || '.' || c.relname,
               EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid
                       AND t.tgname = 'audit_capture' AND NOT t.tgisinternal)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) ORDER BY 1
        """,
        (list(audited_schemas),),
    )
    return [f"{name}: changes are not audited (add enable_audit in its migration)"
            for name, audited in rows if not audited and name not in allow]


# How PostgreSQL 15-18 print the predicate of tenants.rls.TENANT_PREDICATE; compared
# whole, so "tenant_id = (SELECT ...) OR true" does not pass for it.
TENANT_PREDICATE_PRINTED = {
    "(tenant_id = ( SELECT app.current_tenant_id() AS current_tenant_id))",
}


def _is_tenant_predicate(expr: str | None) -> bool:
    return " ".join((expr or "").split()) in TENANT_PREDICATE_PRINTED


def function_problems(conn: Any, runtime_roles: Iterable[str]) -> list[str]:
    """``app.current_tenant_id()`` must be what every policy relies on: STABLE, not
    SECURITY DEFINER, and owned by no runtime role (an owner could replace it)."""
    rows = _rows(conn, """
        SELECT p.provolatile, p.prosecdef, pg_get_userbyid(p.proowner)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'app' AND p.proname = 'current_tenant_id'""")
    if len(rows) != 1:
        return ["app.current_tenant_id(): missing or overloaded"]
    volatility, secdef, owner = rows[0]
    problems = []
    if volatility != "s":
        problems.append("app.current_tenant_id(): must be STABLE")
    if secdef:
        problems.append("app.current_tenant_id(): must not be SECURITY DEFINER")
    if owner in set(runtime_roles):
        problems.append(f"app.current_tenant_id(): owned by runtime role {owner}")
    return problems


def role_problems(conn: Any, schemas: Sequence[str], roles: Iterable[str]) -> list[str]:
    problems: list[str] = []
    for role in roles:
        row = _rows(conn, "SELECT rolsuper, rolbypassrls, rolcreaterole, rolreplication"
                          " FROM pg_roles WHERE rolname = %s", (role,))
        if not row:
            problems.append(f"role {role}: does not exist")
            continue
        superuser, bypass, createrole, replication = row[0]
        if superuser:
            problems.append(f"role {role}: is SUPERUSER (bypasses row-level security)")
        if bypass:
            problems.append(f"role {role}: has BYPASSRLS")
        if createrole:
            problems.append(f"role {role}: has CREATEROLE (it could make itself a member of "
                            "the owner)")
        if replication:
            problems.append(f"role {role}: has REPLICATION")
        for (granted,) in _rows(conn, """
                SELECT pg_get_userbyid(m.roleid) FROM pg_auth_members m
                WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = %s)""", (role,)):
            problems.append(f"role {role}: is a member of {granted} (it inherits or can SET "
                            "ROLE to its rights)")
        for (owned,) in _rows(conn, """
                SELECT 'schema ' || nspname FROM pg_namespace
                WHERE nspname = ANY(%s) AND pg_get_userbyid(nspowner) = %s
                UNION ALL
                SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = ANY(%s) AND pg_get_userbyid(p.proowner) = %s""",
                (["app", *schemas], role, ["app", *schemas], role)):
            problems.append(f"role {role}: owns {owned}")
        for (owned,) in _rows(
            conn,
            """
            SELECT n.nspname || '.' || c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY(%s) AND pg_get_userbyid(c.relowner) = %s
            """,
            (list(schemas), role),
        ):
            problems.append(f"role {role}: owns {owned} (owners are exempt from RLS unless "
                            "forced and may disable it)")
        for table, privilege in _rows(
            conn,
            """
            SELECT n.nspname || '.' || c.relname, p.priv
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(priv)
            WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')
              AND has_table_privilege(%s, c.oid, p.priv)
            ORDER BY 1, 2
            """,
            (list(schemas), role),
        ):
            problems.append(f"role {role}: holds {privilege} on {table}")
    return problems
