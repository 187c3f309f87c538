"""The audit trail: written by triggers, append-only, sealed into a verifiable chain."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.audit import services as audit
from app.audit.models import AuditEntry
from app.cli import main
from app.db import db
from tenants import services
from tenants.catalog import audit_problems
from tenants.context import tenant_scope
from tenants.globals import AUDITED_SCHEMAS, UNAUDITED_TABLES

from .conftest import PASSWORD, csrf_from, login, make_tenant


def test_every_business_table_is_audited(database):
    with database.owner_connect() as conn:
        assert audit_problems(conn, AUDITED_SCHEMAS, UNAUDITED_TABLES) == []


def test_unaudited_table_is_named(database):
    with database.owner_connect() as conn:
        conn.execute("CREATE SCHEMA scratch_audit")
        try:
            conn.execute("CREATE TABLE scratch_audit.silent (tenant_id uuid, id uuid)")
            assert audit_problems(conn, ["scratch_audit"], {}) == [
                "scratch_audit.silent: changes are not audited (add enable_audit in its "
                "migration)"]
        finally:
            conn.execute("DROP SCHEMA scratch_audit CASCADE")


def test_role_change_in_the_portal_is_audited_with_user_and_request(
        client, tenant_factory, db_session, as_tenant):
    t = tenant_factory()
    member, _, _ = services.add_member(db_session, t.tenant, email="a@audit.example.com",
                                       roles=["viewer"], password=PASSWORD)
    db_session.commit()
    login(client, t.owner.email)
    token = csrf_from(client.get(f"/t/{t.slug}/settings").get_data(as_text=True))
    resp = client.post(f"/t/{t.slug}/settings/members/{member.id}/roles",
                       data={f"m{member.id.hex}-roles": ["sales"]},
                       headers={"HX-Request": "true", "X-CSRFToken": token,
                                "X-Request-ID": "audit-req-0001"})
    assert resp.status_code == 200
    with as_tenant(t.ctx) as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.row_id == member.id,
                                                  AuditEntry.op == "U"))
        assert entry.table_name == "core.memberships"
        assert entry.old["roles"] == ["viewer"] and entry.new["roles"] == ["sales"]
        assert entry.user_id == t.owner.id
        assert entry.request_id == "audit-req-0001"


def test_audit_log_is_append_only_for_the_app(app, database):
    with app.app_context():
        t = make_tenant(db.session, f"aud-{secrets.token_hex(3)}")
        db.session.commit()
        db.session.remove()
    with database.app_connect() as conn:
        for statement in ("UPDATE audit.log SET op = 'D'", "DELETE FROM audit.log",
                          "DELETE FROM audit.seals"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(t.id),))
                conn.execute(statement)


def test_seal_verify_and_detect_tampering(app, database):
    with app.app_context():
        engine = db.engine
    with Session(engine, expire_on_commit=False) as session:
        t = make_tenant(session, f"seal-{secrets.token_hex(3)}")
        session.commit()
    with tenant_scope(t.ctx), Session(engine) as session:
        for _ in range(5):
            services.next_number(session, "invoice")
            session.commit()
        assert audit.seal(session) >= 6  # membership + counter insert + 4 updates
        session.commit()
        assert audit.seal(session) == 0
        services.next_number(session, "invoice")
        session.commit()
        result = audit.verify(session)
        assert result.ok and result.unsealed == 1 and result.sealed >= 6
        victim = session.execute(text(
            "SELECT l.id FROM audit.seals s JOIN audit.log l ON l.id = s.log_id"
            " WHERE s.seq = 3")).scalar_one()
        session.rollback()
    # someone with owner rights edits history
    with database.owner_connect() as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(t.id),))
        conn.execute("UPDATE audit.log SET new = jsonb_set(new, '{last_value}', '999')"
                     " WHERE id = %s", (victim,))
    with tenant_scope(t.ctx), Session(engine) as session:
        result = audit.verify(session)
    assert not result.ok and result.broken_at == 3 and result.broken_log_id == victim
    env = {"DATABASE_URL": database.app_url, "DATABASE_OWNER_URL": database.owner_url,
           "SECRET_KEY": "s" * 40, "LOG_LEVEL": "WARNING"}
    out = CliRunner().invoke(main, ["audit", "verify", "--tenant", t.slug], env=env)
    assert out.exit_code == 1 and "TAMPERED: seal 3" in out.output


def test_cli_seals_and_verifies(app, database, tmp_path):
    with app.app_context():
        t = make_tenant(db.session, f"cliaud-{secrets.token_hex(3)}")
        db.session.commit()
        db.session.remove()
    # Provisioning writes the owner's membership and whatever the domains seed.
    with database.app_connect() as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(t.id),))
        written = conn.execute("SELECT count(*) FROM audit.log").fetchone()[0]
    assert written >= 1
    env = {"DATABASE_URL": database.app_url, "DATABASE_OWNER_URL": database.owner_url,
           "SECRET_KEY": "s" * 40, "LOG_LEVEL": "WARNING", "ERP_DATA_DIR": str(tmp_path)}
    out = CliRunner().invoke(main, ["audit", "verify", "--tenant", t.slug, "--seal"], env=env)
    assert out.exit_code == 0, out.output
    assert (f"audit chain of {t.slug} verifies: {written} sealed entries, 0 not sealed yet"
            in out.output)
