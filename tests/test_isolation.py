"""Attacks on tenant isolation, run as the application role.

Two tenants are seeded with colliding natural keys (both have a parent coded
``P-1``, both have an ``invoice`` counter). Every attack is made the way a bug or an
attacker would make it, and must fail at the database, not only in the app.
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from app import create_app
from app.db import ENGINE_OPTIONS, db, install_engine_hooks
from app.settings import sqlalchemy_url
from tenants import services
from tenants.context import NoTenantContext, tenant_scope
from tenants.models import DocumentCounter
from tenants.rls import tenant_rls_sql

from .conftest import TenantFixture, make_tenant

SCHEMA = "scratch_iso"
TNCTX = "TNCTX"


@pytest.fixture(scope="module")
def seeded(app, database) -> Iterator[tuple[TenantFixture, TenantFixture, dict]]:
    """Two committed tenants, each with a parent P-1, a child and a counter."""
    suffix = secrets.token_hex(3)
    with app.app_context():
        a = make_tenant(db.session, f"iso-a-{suffix}")
        b = make_tenant(db.session, f"iso-b-{suffix}")
        db.session.commit()
        for t in (a, b):
            with tenant_scope(t.ctx):
                services.next_number(db.session, "invoice", "2026")
                db.session.commit()
        db.session.remove()

    with database.owner_connect() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        conn.execute(
            f"CREATE TABLE {SCHEMA}.parents (tenant_id uuid NOT NULL, id uuid NOT NULL,"
            " code text NOT NULL, PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, code))"
        )
        conn.execute(
            f"CREATE TABLE {SCHEMA}.children (tenant_id uuid NOT NULL, id uuid NOT NULL,"
            " parent_id uuid NOT NULL, PRIMARY KEY (tenant_id, id),"
            f" FOREIGN KEY (tenant_id, parent_id) REFERENCES {SCHEMA}.parents (tenant_id, id))"
        )
        for table in ("parents", "children"):
            for stmt in tenant_rls_sql(f"{SCHEMA}.{table}"):
                conn.execute(stmt)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.Identifier(SCHEMA), sql.Identifier(database.app_role)))
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} "
                             "TO {}").format(sql.Identifier(SCHEMA),
                                             sql.Identifier(database.app_role)))

    ids: dict = {}
    with database.app_connect() as conn:
        for t in (a, b):
            with conn.transaction():
                _as(conn, t.id)
                parent, child = uuid.uuid4(), uuid.uuid4()
                conn.execute(f"INSERT INTO {SCHEMA}.parents VALUES (%s, %s, 'P-1')",
                             (t.id, parent))
                conn.execute(f"INSERT INTO {SCHEMA}.children VALUES (%s, %s, %s)",
                             (t.id, child, parent))
                ids[t.slug] = {"parent": parent, "child": child}
    yield a, b, ids
    with database.owner_connect() as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))


def _as(conn: psycopg.Connection, tenant_id: uuid.UUID) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))


@pytest.fixture
def app_conn(database) -> Iterator[psycopg.Connection]:
    with database.app_connect() as conn:
        yield conn


# --- reads, writes, forgery -------------------------------------------------------------


def test_reads_of_other_tenants_ids_return_nothing(seeded, app_conn):
    a, b, ids = seeded
    with app_conn.transaction():
        _as(app_conn, a.id)
        assert app_conn.execute(f"SELECT * FROM {SCHEMA}.parents WHERE id = %s",
                                (ids[b.slug]["parent"],)).fetchall() == []
        # the colliding natural key resolves to this tenant's row only
        rows = app_conn.execute(f"SELECT tenant_id FROM {SCHEMA}.parents WHERE code = 'P-1'"
                                ).fetchall()
        assert rows == [(a.id,)]
        counters = app_conn.execute("SELECT tenant_id FROM core.document_counters").fetchall()
        assert {r[0] for r in counters} == {a.id}
        # even naming the other tenant explicitly returns nothing
        assert app_conn.execute(f"SELECT count(*) FROM {SCHEMA}.parents WHERE tenant_id = %s",
                                (b.id,)).fetchone() == (0,)


def test_update_and_delete_of_other_tenants_rows_affect_nothing(seeded, app_conn):
    a, b, ids = seeded
    with app_conn.transaction():
        _as(app_conn, a.id)
        cur = app_conn.execute(f"UPDATE {SCHEMA}.parents SET code = 'hacked' WHERE id = %s",
                               (ids[b.slug]["parent"],))
        assert cur.rowcount == 0
        cur = app_conn.execute(f"DELETE FROM {SCHEMA}.children WHERE id = %s",
                               (ids[b.slug]["child"],))
        assert cur.rowcount == 0
        cur = app_conn.execute("UPDATE core.document_counters SET last_value = 999"
                               " WHERE tenant_id = %s", (b.id,))
        assert cur.rowcount == 0
    with app_conn.transaction():
        _as(app_conn, b.id)
        assert app_conn.execute(f"SELECT code FROM {SCHEMA}.parents").fetchall() == [("P-1",)]
        assert app_conn.execute(f"SELECT count(*) FROM {SCHEMA}.children").fetchone() == (1,)


def test_insert_with_other_tenants_id_fails(seeded, app_conn):
    a, b, _ = seeded
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        with app_conn.transaction():
            _as(app_conn, a.id)
            app_conn.execute(f"INSERT INTO {SCHEMA}.parents VALUES (%s, %s, 'X')",
                             (b.id, uuid.uuid4()))


def test_moving_a_row_to_another_tenant_fails(seeded, app_conn):
    a, b, ids = seeded
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        with app_conn.transaction():
            _as(app_conn, a.id)
            app_conn.execute(f"UPDATE {SCHEMA}.children SET tenant_id = %s WHERE id = %s",
                             (b.id, ids[a.slug]["child"]))


def test_composite_fk_to_other_tenants_row_fails(seeded, app_conn):
    a, b, ids = seeded
    with pytest.raises(psycopg.errors.ForeignKeyViolation), app_conn.transaction():
        _as(app_conn, a.id)
        app_conn.execute(f"INSERT INTO {SCHEMA}.children VALUES (%s, %s, %s)",
                         (a.id, uuid.uuid4(), ids[b.slug]["parent"]))


def test_query_without_context_raises(seeded, app_conn):
    for table in (f"{SCHEMA}.parents", "core.document_counters"):
        with pytest.raises(psycopg.Error, match="no tenant context") as info:
            with app_conn.transaction():
                app_conn.execute(f"SELECT * FROM {table}").fetchall()
        assert info.value.sqlstate == TNCTX


def test_orm_query_without_context_raises_even_when_empty(app):
    """RLS only evaluates its predicate per row; the ORM guard closes that gap."""
    with app.app_context():
        try:
            with pytest.raises(NoTenantContext, match="DocumentCounter"):
                db.session.execute(
                    select(DocumentCounter).where(DocumentCounter.id == uuid.uuid4()))
        finally:
            db.session.remove()


# --- connections reused ---------------------------------------------------------------------


def test_pooled_connection_reused_after_a_failed_request_carries_no_context(seeded, database):
    a, _, _ = seeded
    app = create_app(database.settings)
    seen: dict = {}

    def boom(slug: str):
        tenant = services.find_tenant_by_slug(db.session, slug)
        membership = services.membership_of(db.session, tenant.id, a.owner.id)
        services.bind_session_context(db.session, services.context_for(tenant, membership))
        seen["pid"] = db.session.scalar(text("SELECT pg_backend_pid()"))
        seen["tenant"] = db.session.scalar(text("SELECT current_setting('app.tenant_id')"))
        raise RuntimeError("request failed half way")

    def after():
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        setting = db.session.scalar(text("SELECT current_setting('app.tenant_id', true)"))
        db.session.rollback()
        try:
            db.session.execute(text("SELECT count(*) FROM core.document_counters")).all()
            outcome = "rows visible"
        except Exception as exc:  # the database must refuse
            outcome = getattr(getattr(exc, "orig", None), "sqlstate", repr(exc))
        return {"pid": pid, "setting": setting, "outcome": outcome}

    app.add_url_rule("/test/boom/<slug>", view_func=boom)
    app.add_url_rule("/test/after", view_func=after)
    with app.app_context():
        opts = {**ENGINE_OPTIONS, "pool_size": 1, "max_overflow": 0}
        small = create_engine(sqlalchemy_url(database.app_url), **opts)
        install_engine_hooks(small)
        db.engines[None].dispose()
        db._app_engines[app][None] = small
    try:
        client = app.test_client()
        assert client.get(f"/test/boom/{a.slug}").status_code == 500
        assert seen["tenant"] == str(a.id)
        # the connection as the pool hands it out, before any transaction hook
        raw = small.raw_connection()
        try:
            with raw.cursor() as cur:
                cur.execute("SELECT pg_backend_pid(), current_setting('app.tenant_id', true)")
                assert cur.fetchone() == (seen["pid"], "")
            raw.rollback()
        finally:
            raw.close()
        body = client.get("/test/after").get_json()
        assert body["pid"] == seen["pid"], "pool size 1 must hand back the same backend"
        assert body["setting"] == ""
        assert body["outcome"] == TNCTX
    finally:
        small.dispose()


def test_session_level_set_is_wiped_when_connection_returns_to_pool(seeded, database):
    """Nobody may SET app.tenant_id at session level; if a bug did, the pool resets it."""
    a, _, _ = seeded
    engine = create_engine(sqlalchemy_url(database.app_url), **{**ENGINE_OPTIONS,
                                                                "pool_size": 1,
                                                                "max_overflow": 0})
    install_engine_hooks(engine)
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            conn.exec_driver_sql(f"SET app.tenant_id = '{a.id}'")  # the bug
            conn.commit()
        # The raw pooled connection, before any transaction hook runs: the pool's
        # reset (rollback + RESET ALL) must have removed the session-level value.
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur:
                cur.execute("SELECT pg_backend_pid(), current_setting('app.tenant_id', true)")
                assert cur.fetchone() == (pid, "")
            raw.rollback()
        finally:
            raw.close()
        # And through SQLAlchemy the begin hook writes '' for the transaction anyway.
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid
            assert conn.exec_driver_sql(
                "SELECT current_setting('app.tenant_id', true)").scalar() == ""
    finally:
        engine.dispose()


def test_threads_alternating_tenants_over_a_small_pool_never_see_foreign_rows(seeded, database):
    a, b, _ = seeded
    engine = create_engine(sqlalchemy_url(database.app_url),
                           **{**ENGINE_OPTIONS, "pool_size": 4, "max_overflow": 0})
    install_engine_hooks(engine)
    threads, rounds = 16, 30
    errors: list[str] = []
    checks = [0]
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(rounds):
                t = (a, b)[(n + i) % 2]
                with tenant_scope(t.ctx), Session(engine) as session:
                    orm_rows = session.scalars(select(DocumentCounter.tenant_id)).all()
                    raw_rows = session.execute(
                        text(f"SELECT tenant_id FROM {SCHEMA}.parents")).scalars().all()
                    current = session.scalar(text("SELECT app.current_tenant_id()"))
                    session.commit()
                bad = [r for r in [*orm_rows, *raw_rows, current] if r != t.id]
                if bad or not orm_rows or not raw_rows:
                    errors.append(f"thread {n} round {i} as {t.slug}: saw {bad or 'nothing'}")
                with lock:
                    checks[0] += 1
        except Exception as exc:
            errors.append(f"thread {n}: {exc!r}")

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout=120)
    engine.dispose()
    assert errors == []
    assert checks[0] == threads * rounds


# --- portal -------------------------------------------------------------------------------


def test_portal_answers_404_for_another_tenants_slug_and_member(client, two_tenants, db_session):
    from .conftest import csrf_from, login

    a, b = two_tenants
    login(client, a.owner.email)
    assert client.get(f"/t/{a.slug}/").status_code == 200
    assert client.get(f"/t/{b.slug}/").status_code == 404
    assert client.get(f"/t/{b.slug}/settings").status_code == 404
    assert client.get("/t/no-such-tenant/").status_code == 404

    b_members = services.tenant_members(db_session, b.id)
    token = csrf_from(client.get(f"/t/{a.slug}/settings").get_data(as_text=True))
    mid = b_members[0][0].id
    resp = client.post(f"/t/{a.slug}/settings/members/{mid}/roles",
                       data={"csrf_token": token, f"m{mid.hex}-roles": ["viewer"]})
    assert resp.status_code == 404
    resp = client.post(f"/t/{a.slug}/settings/members/{mid}/active",
                       data={"csrf_token": token, "active": "0"})
    assert resp.status_code == 404
    db_session.expire_all()
    membership = services.membership_of(db_session, b.id, b.owner.id)
    assert membership.roles == ["owner"] and membership.is_active


# --- no session-level tenant settings anywhere ------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = [
    re.compile(r"\bSET\s+(SESSION\s+|LOCAL\s+)?app\.", re.IGNORECASE),
    re.compile(r"set_config\(\s*'app\.[a-z_]+'\s*,[^)]*,\s*false\s*\)", re.IGNORECASE),
]


def test_no_plain_set_of_tenant_settings_in_the_code():
    offenders = []
    for folder in ("app", "tenants", "workers", "analytics", "migrations"):
        for path in (ROOT / folder).rglob("*.py"):
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if any(p.search(line) for p in FORBIDDEN):
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert offenders == []


def test_identity_map_does_not_serve_another_tenants_object_after_a_switch(
        two_tenants, db_session):
    """Session.get() answers from the identity map without SQL, so neither RLS nor the
    ORM filter would see it: switching tenants must drop the other tenant's objects."""
    a, b = two_tenants
    services.bind_session_context(db_session, a.ctx)
    services.next_number(db_session, "invoice")
    counter = db_session.scalar(select(DocumentCounter))
    key = (a.id, counter.id)
    services.bind_session_context(db_session, b.ctx)
    assert db_session.get(DocumentCounter, key) is None
    services.bind_session_context(db_session, None)


def test_switching_context_inside_an_open_transaction_is_refused(two_tenants, db_session):
    """The ORM filter would use the new tenant, RLS the old one: silently no rows.
    It must be an error instead (review finding)."""
    a, b = two_tenants
    services.bind_session_context(db_session, a.ctx)
    db_session.scalars(select(DocumentCounter)).all()  # transaction begun under A
    try:
        with tenant_scope(b.ctx), pytest.raises(NoTenantContext, match="began under tenant"):
            db_session.scalars(select(DocumentCounter)).all()
    finally:
        db_session.rollback()
        services.bind_session_context(db_session, None)
