"""Migrations: models and migrations agree, and every migration can be undone."""

from __future__ import annotations

import uuid

import psycopg
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import app.models  # noqa: F401 - registers every model
from app.database import downgrade, script_heads, upgrade
from app.db import Base
from app.settings import sqlalchemy_url
from tenants.globals import TENANT_SCHEMAS

from .dbsetup import scratch_database


def _include_name(name, type_, parent_names):
    if type_ == "schema":
        return name in TENANT_SCHEMAS
    return True


def _include_object(obj, name, type_, reflected, compare_to):
    # Tables that exist only in a test's scratch schema or the alembic bookkeeping
    # table are not models.
    return not (type_ == "table" and name == "alembic_version")


def test_models_and_migrations_agree(database):
    engine = sa.create_engine(sqlalchemy_url(database.owner_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "include_schemas": True, "include_name": _include_name,
                "include_object": _include_object, "compare_type": True,
                "compare_server_default": False,
            })
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], "models and migrations disagree; write a migration:\n" + "\n".join(
        map(str, diff))


def test_downgrade_to_base_and_upgrade_again(tmp_path):
    """On a database of its own: every migration's downgrade runs and leaves nothing."""
    with scratch_database(tmp_path, "erp_mig", migrate=False) as mine:
        upgrade(mine.settings)
        with psycopg.connect(mine.owner_url) as conn:
            assert {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")} \
                == script_heads()
        downgrade(mine.settings, "base")
        with psycopg.connect(mine.owner_url) as conn:
            left = conn.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'v', 'm', 'p')"
                " AND n.nspname = ANY(%s)", (["app", "dramatiq", *TENANT_SCHEMAS],)).fetchall()
            assert left == []
        upgrade(mine.settings)


def test_database_uuid7_is_version_7_and_time_ordered(db_session):
    ids = [db_session.scalar(sa.text("SELECT app.uuid7()")) for _ in range(5)]
    assert all(isinstance(i, uuid.UUID) and i.version == 7 for i in ids)
    # the first 48 bits are a millisecond timestamp: never decreasing
    stamps = [i.int >> 80 for i in ids]
    assert stamps == sorted(stamps)
    now_ms = db_session.scalar(sa.text("SELECT floor(extract(epoch FROM clock_timestamp())"
                                       " * 1000)::bigint"))
    assert abs(now_ms - stamps[-1]) < 5_000


def test_python_ids_are_uuid7():
    from app.db import new_id

    a, b = new_id(), new_id()
    assert a.version == b.version == 7 and a < b


def test_orm_queries_filter_on_tenant_explicitly(two_tenants, as_tenant):
    """The ORM adds ``tenant_id = :param`` itself; RLS is the guarantee underneath."""
    from sqlalchemy import event, select

    from tenants.models import DocumentCounter

    a, _ = two_tenants
    statements: list[tuple[str, object]] = []
    with as_tenant(a.ctx) as s:
        conn = s.connection()

        def capture(conn, cursor, statement, params, context, executemany):
            statements.append((statement, params))

        event.listen(conn, "before_cursor_execute", capture)
        try:
            s.execute(select(DocumentCounter)).all()
        finally:
            event.remove(conn, "before_cursor_execute", capture)
    select_sql, params = next((st, p) for st, p in statements if "document_counters" in st)
    assert "core.document_counters.tenant_id = %(tenant_id_1)s" in select_sql
    assert params["tenant_id_1"] == a.id
