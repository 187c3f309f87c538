"""The schema obeys the tenancy rules, read straight from pg_catalog.

The first test is the guard every future migration passes through; the others
prove the guard can fail, by building each kind of mistake in a scratch schema and
asserting the check names the table (or role) at fault.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tenants.catalog import catalog_problems, role_problems
from tenants.globals import GLOBAL_TABLES, TENANT_SCHEMAS
from tenants.rls import tenant_rls_sql


def test_schema_obeys_tenancy_rules(database):
    with database.owner_connect() as conn:
        problems = catalog_problems(
            conn, TENANT_SCHEMAS, GLOBAL_TABLES, [database.app_role, database.analytics_role]
        )
    assert problems == []


def test_every_tenant_schema_table_is_checked(database):
    """Guard against the check silently checking nothing."""
    with database.owner_connect() as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname = ANY(%s)",
                (list(TENANT_SCHEMAS),),
            )
        }
    assert "core.document_counters" in tables
    unlisted_globals = {t for t in tables if t in GLOBAL_TABLES}
    assert unlisted_globals == {"core.tenants", "core.users", "core.memberships",
                                "events.pending_tenants"}


def test_global_tables_have_reasons():
    for table, reason in GLOBAL_TABLES.items():
        assert "." in table
        assert len(reason) > 20, f"{table} needs a reason for being outside RLS"


# --- the check can fail ------------------------------------------------------------------

GOOD = """
CREATE TABLE {s}.parents (
    tenant_id uuid NOT NULL, id uuid NOT NULL, code text NOT NULL,
    PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, code)
)
"""


@pytest.fixture
def scratch(database):
    """A scratch schema (not a tenant schema) that each test fills with mistakes."""
    schema = "scratch_catalog"
    with database.owner_connect() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(GOOD.format(s=schema))
        for stmt in tenant_rls_sql(f"{schema}.parents"):
            conn.execute(stmt)
        yield conn, schema
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _problems(conn: psycopg.Connection, schema: str) -> list[str]:
    return catalog_problems(conn, [schema], {}, [])


def _fence(conn, qualified):
    for stmt in tenant_rls_sql(qualified):
        conn.execute(stmt)


def test_good_scratch_table_passes(scratch):
    conn, schema = scratch
    assert _problems(conn, schema) == []


def test_names_table_without_tenant_id(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE TABLE {schema}.loose (id uuid PRIMARY KEY, note text)")
    problems = _problems(conn, schema)
    assert any(p.startswith(f"{schema}.loose: no tenant_id column") for p in problems)
    assert any(p.startswith(f"{schema}.loose: row-level security is not enabled") for p in problems)


def test_names_nullable_tenant_id_and_wrong_pk(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE TABLE {schema}.badpk (id uuid PRIMARY KEY, tenant_id uuid)")
    _fence(conn, f"{schema}.badpk")
    problems = _problems(conn, schema)
    assert f"{schema}.badpk: tenant_id must be uuid NOT NULL (is uuid, nullable)" in problems
    assert f"{schema}.badpk: primary key starts with id, not tenant_id" in problems


def test_names_rls_not_forced(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE TABLE {schema}.unforced (tenant_id uuid NOT NULL, id uuid NOT NULL,"
                 " PRIMARY KEY (tenant_id, id))")
    _fence(conn, f"{schema}.unforced")
    conn.execute(f"ALTER TABLE {schema}.unforced NO FORCE ROW LEVEL SECURITY")
    assert _problems(conn, schema) == [f"{schema}.unforced: row-level security is not forced"]


def test_names_permissive_only_policy(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE TABLE {schema}.permissive (tenant_id uuid NOT NULL, id uuid NOT NULL,"
                 " PRIMARY KEY (tenant_id, id))")
    _fence(conn, f"{schema}.permissive")
    conn.execute(f"DROP POLICY tenant_isolation ON {schema}.permissive")
    problems = _problems(conn, schema)
    assert len(problems) == 1
    assert problems[0].startswith(f"{schema}.permissive: no RESTRICTIVE policy")


def test_names_restrictive_policy_with_wrong_predicate(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE TABLE {schema}.wrongpol (tenant_id uuid NOT NULL, id uuid NOT NULL,"
                 " PRIMARY KEY (tenant_id, id))")
    _fence(conn, f"{schema}.wrongpol")
    conn.execute(f"DROP POLICY tenant_isolation ON {schema}.wrongpol")
    conn.execute(f"CREATE POLICY tenant_isolation ON {schema}.wrongpol AS RESTRICTIVE "
                 "USING (true) WITH CHECK (true)")
    assert any(p.startswith(f"{schema}.wrongpol: no RESTRICTIVE policy")
               for p in _problems(conn, schema))


def test_names_non_composite_foreign_key(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE TABLE {schema}.children (tenant_id uuid NOT NULL, id uuid NOT NULL,"
                 " parent_id uuid NOT NULL, PRIMARY KEY (tenant_id, id))")
    # a single-column FK needs a unique target: give parents a (bad) global unique id
    conn.execute(f"ALTER TABLE {schema}.parents ADD CONSTRAINT parents_id_key UNIQUE (id)")
    conn.execute(f"ALTER TABLE {schema}.children ADD CONSTRAINT fk_bad FOREIGN KEY (parent_id)"
                 f" REFERENCES {schema}.parents (id)")
    _fence(conn, f"{schema}.children")
    problems = _problems(conn, schema)
    assert any(p.startswith(f"{schema}.children: foreign key fk_bad (parent_id) -> "
                            f"{schema}.parents is not composite") for p in problems)
    assert f"{schema}.parents: unique index parents_id_key does not start with tenant_id " \
           "(uniqueness must be per tenant, and a global unique check leaks existence)" in problems


def test_composite_foreign_key_passes(scratch):
    conn, schema = scratch
    conn.execute(
        f"CREATE TABLE {schema}.kids (tenant_id uuid NOT NULL, id uuid NOT NULL,"
        f" parent_id uuid NOT NULL, PRIMARY KEY (tenant_id, id),"
        f" FOREIGN KEY (tenant_id, parent_id) REFERENCES {schema}.parents (tenant_id, id))"
    )
    _fence(conn, f"{schema}.kids")
    assert _problems(conn, schema) == []


def test_names_unique_index_without_tenant(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE UNIQUE INDEX parents_code_global ON {schema}.parents (lower(code))")
    problems = _problems(conn, schema)
    assert len(problems) == 1
    assert problems[0].startswith(f"{schema}.parents: unique index parents_code_global")


def test_names_view_without_security_invoker(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE VIEW {schema}.leaky AS SELECT * FROM {schema}.parents")
    conn.execute(f"CREATE VIEW {schema}.safe WITH (security_invoker = true) AS "
                 f"SELECT * FROM {schema}.parents")
    assert _problems(conn, schema) == [
        f"{schema}.leaky: view is not security_invoker (it would bypass RLS)"
    ]


def test_allowlisted_global_table_is_skipped(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE TABLE {schema}.registry (id uuid PRIMARY KEY)")
    assert catalog_problems(conn, [schema], {f"{schema}.registry": "reason"}, []) == []


def test_names_dangerous_runtime_roles(database, scratch):
    conn, schema = scratch
    role = f"{database.name}_bad"
    admin = database.admin_connect()
    try:
        admin.execute(sql.SQL("CREATE ROLE {} BYPASSRLS").format(sql.Identifier(role)))
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.Identifier(schema), sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT TRUNCATE, TRIGGER ON {}.parents TO {}").format(
            sql.Identifier(schema), sql.Identifier(role)))
        admin.execute(sql.SQL("CREATE TABLE {}.owned (tenant_id uuid)").format(
            sql.Identifier(schema)))
        admin.execute(sql.SQL("ALTER TABLE {}.owned OWNER TO {}").format(
            sql.Identifier(schema), sql.Identifier(role)))
        problems = role_problems(conn, [schema], [role])
        assert f"role {role}: has BYPASSRLS" in problems
        assert f"role {role}: holds TRUNCATE on {schema}.parents" in problems
        assert f"role {role}: holds TRIGGER on {schema}.parents" in problems
        assert any(p.startswith(f"role {role}: owns {schema}.owned") for p in problems)
        admin.execute(sql.SQL("ALTER ROLE {} SUPERUSER").format(sql.Identifier(role)))
        assert f"role {role}: is SUPERUSER (bypasses row-level security)" in role_problems(
            conn, [schema], [role])
    finally:
        admin.execute(sql.SQL("DROP TABLE IF EXISTS {}.owned").format(sql.Identifier(schema)))
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()


def test_runtime_roles_attributes(database):
    """The app and analytics roles are plain logins: the check above would say otherwise."""
    with database.owner_connect() as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
            " WHERE rolname = ANY(%s) ORDER BY rolname",
            ([database.app_role, database.analytics_role],),
        ).fetchall()
    assert len(rows) == 2
    for _name, superuser, bypass, createrole, createdb in rows:
        assert (superuser, bypass, createrole, createdb) == (False, False, False, False)


def test_analytics_role_is_read_only(database):
    with psycopg.connect(database.analytics_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO core.users (email) VALUES ('x@y.example.com')")


def test_names_restrictive_policy_scoped_to_another_role(database, scratch):
    """A restrictive policy TO some other role binds nobody else (review finding)."""
    conn, schema = scratch
    conn.execute(f"CREATE TABLE {schema}.scoped (tenant_id uuid NOT NULL, id uuid NOT NULL,"
                 " PRIMARY KEY (tenant_id, id))")
    conn.execute(f"ALTER TABLE {schema}.scoped ENABLE ROW LEVEL SECURITY")
    conn.execute(f"ALTER TABLE {schema}.scoped FORCE ROW LEVEL SECURITY")
    conn.execute(f"CREATE POLICY open ON {schema}.scoped USING (true)")
    conn.execute(sql.SQL(
        "CREATE POLICY tenant_isolation ON {}.scoped AS RESTRICTIVE FOR ALL TO {} "
        "USING (tenant_id = (SELECT app.current_tenant_id())) "
        "WITH CHECK (tenant_id = (SELECT app.current_tenant_id()))").format(
        sql.Identifier(schema), sql.Identifier(database.analytics_role)))
    assert any(p.startswith(f"{schema}.scoped: no RESTRICTIVE policy FOR ALL TO PUBLIC")
               for p in _problems(conn, schema))


def test_names_predicate_with_a_loophole(scratch):
    conn, schema = scratch
    conn.execute(f"CREATE TABLE {schema}.loophole (tenant_id uuid NOT NULL, id uuid NOT NULL,"
                 " PRIMARY KEY (tenant_id, id))")
    _fence(conn, f"{schema}.loophole")
    conn.execute(f"DROP POLICY tenant_isolation ON {schema}.loophole")
    conn.execute(f"CREATE POLICY tenant_isolation ON {schema}.loophole AS RESTRICTIVE "
                 "USING (tenant_id = (SELECT app.current_tenant_id()) OR true) "
                 "WITH CHECK (tenant_id = (SELECT app.current_tenant_id()) OR true)")
    assert any(p.startswith(f"{schema}.loophole: no RESTRICTIVE policy")
               for p in _problems(conn, schema))


def test_names_createrole_membership_and_ownership_of_runtime_roles(database, scratch):
    conn, schema = scratch
    role = f"{database.name}_sly"
    admin = database.admin_connect()
    try:
        admin.execute(sql.SQL("CREATE ROLE {} CREATEROLE REPLICATION").format(
            sql.Identifier(role)))
        admin.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("CREATE FUNCTION {}.helper() RETURNS int LANGUAGE sql "
                              "AS 'SELECT 1'").format(sql.Identifier(schema)))
        admin.execute(sql.SQL("ALTER FUNCTION {}.helper() OWNER TO {}").format(
            sql.Identifier(schema), sql.Identifier(role)))
        problems = role_problems(conn, [schema], [role])
        assert any("has CREATEROLE" in p for p in problems)
        assert f"role {role}: has REPLICATION" in problems
        assert any(p.startswith(f"role {role}: is a member of pg_read_all_data")
                   for p in problems)
        assert f"role {role}: owns function {schema}.helper" in problems
    finally:
        admin.execute(sql.SQL("DROP FUNCTION IF EXISTS {}.helper()").format(
            sql.Identifier(schema)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()


def test_current_tenant_id_function_is_checked(database):
    from tenants.catalog import function_problems

    with database.owner_connect() as conn:
        assert function_problems(conn, [database.app_role]) == []
        with conn.transaction():
            conn.execute("ALTER FUNCTION app.current_tenant_id() VOLATILE SECURITY DEFINER")
            problems = function_problems(conn, [database.app_role])
            assert problems == ["app.current_tenant_id(): must be STABLE",
                                "app.current_tenant_id(): must not be SECURITY DEFINER"]
            raise psycopg.Rollback()  # undo the ALTER


def test_upgrade_refuses_a_runtime_role_with_createrole(database):
    from app.database import DatabaseSetupError, RoleSpec, ensure_runtime_roles

    role = f"{database.name}_cr"
    admin = database.admin_connect()
    try:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(role)))
        with database.owner_connect() as conn, pytest.raises(DatabaseSetupError,
                                                             match="CREATEROLE"):
            ensure_runtime_roles(conn, (RoleSpec(role, None, "app"),))
    finally:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()
