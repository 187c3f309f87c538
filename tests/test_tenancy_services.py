"""Tenancy services: provisioning, identities, memberships and gapless numbering."""

from __future__ import annotations

import secrets
import threading

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import ENGINE_OPTIONS, db, install_engine_hooks
from app.settings import sqlalchemy_url
from tenants import services
from tenants.context import tenant_scope
from tenants.models import Membership, Tenant, User

from .conftest import PASSWORD, make_tenant


def test_create_tenant_makes_owner_with_argon2_password(db_session):
    result = services.create_tenant(
        db_session, slug="Acme-Ltd", name=" Acme Ltd ", base_currency="usd",
        admin_email="Boss@Acme.example.com", admin_password=PASSWORD,
    )
    assert result.tenant.slug == "acme-ltd"
    assert result.tenant.name == "Acme Ltd"
    assert result.tenant.base_currency == "USD"
    assert result.password is None
    assert result.admin.password_hash.startswith("$argon2id$")
    membership = services.membership_of(db_session, result.tenant.id, result.admin.id)
    assert membership.roles == ["owner"]


def test_create_tenant_generates_a_password_once(db_session):
    result = services.create_tenant(db_session, slug="gen-pass", name="G", base_currency="EUR",
                                    admin_email="new@gen.example.com")
    assert result.password and len(result.password) >= 12
    assert services.authenticate(db_session, "new@gen.example.com", result.password)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"slug": "a"}, "slug", "3-40 characters"),
        ({"slug": "-bad-"}, "slug", "3-40 characters"),
        ({"slug": "has space"}, "slug", "3-40 characters"),
        ({"name": "  "}, "name", "needs a name"),
        ({"base_currency": "EURO"}, "base_currency", "not an ISO 4217 currency code"),
        ({"base_currency": "XYZ"}, "base_currency", "not an ISO 4217 currency code"),
        ({"admin_email": "not-an-email"}, "email", "not a valid email address"),
        ({"admin_password": "short"}, "password", "at least 10 characters"),
    ],
)
def test_create_tenant_rejects_bad_input_and_writes_nothing(db_session, kwargs, field, message):
    args = {"slug": "valid-slug", "name": "Valid", "base_currency": "EUR",
            "admin_email": "someone@valid.example.com", "admin_password": PASSWORD, **kwargs}
    with pytest.raises(services.TenancyError, match=message) as info:
        services.create_tenant(db_session, **args)
    assert info.value.field == field
    db_session.rollback()
    assert db_session.scalar(select(Tenant).where(Tenant.slug == "valid-slug")) is None
    assert services.find_user_by_email(db_session, "someone@valid.example.com") is None


def test_duplicate_slug_is_refused(db_session):
    make_tenant(db_session, "dupe-slug")
    with pytest.raises(services.TenancyError, match="already exists"):
        make_tenant(db_session, "dupe-slug")


def test_email_is_unique_case_insensitively_in_the_database(db_session):
    db_session.add(User(email="Case@Example.com", password_hash="x"))
    db_session.flush()
    db_session.add(User(email="case@example.COM", password_hash="x"))
    with pytest.raises(IntegrityError, match="uq_users_email_lower"):
        db_session.flush()
    db_session.rollback()


def test_existing_user_joins_a_second_tenant(db_session):
    a = make_tenant(db_session, email="shared@people.example.com")
    b = make_tenant(db_session, email="SHARED@people.example.com")
    assert a.owner.id == b.owner.id
    choices = services.memberships_of_user(db_session, a.owner.id)
    assert {c.slug for c in choices} == {a.slug, b.slug}


def test_authenticate(db_session):
    t = make_tenant(db_session)
    assert services.authenticate(db_session, t.owner.email.upper(), PASSWORD).id == t.owner.id
    assert services.authenticate(db_session, t.owner.email, "wrong password!") is None
    assert services.authenticate(db_session, "nobody@nowhere.example.com", PASSWORD) is None
    t.owner.is_active = False
    db_session.flush()
    assert services.authenticate(db_session, t.owner.email, PASSWORD) is None


def test_tenant_keeps_at_least_one_owner(db_session):
    t = make_tenant(db_session)
    own = services.membership_of(db_session, t.id, t.owner.id)
    with pytest.raises(services.TenancyError, match="at least one active owner"):
        services.change_member_roles(db_session, t.tenant, own.id, ["admin"])
    with pytest.raises(services.TenancyError, match="at least one active owner"):
        services.set_member_active(db_session, t.tenant, own.id, False)
    second, _, _ = services.add_member(db_session, t.tenant, email="co@owner.example.com",
                                       roles=["owner"], password=PASSWORD)
    services.change_member_roles(db_session, t.tenant, own.id, ["admin", "finance"])
    assert own.roles == ["admin", "finance"]
    with pytest.raises(services.TenancyError, match="at least one active owner"):
        services.set_member_active(db_session, t.tenant, second.id, False)


def test_unknown_role_and_duplicate_member_are_refused(db_session):
    t = make_tenant(db_session)
    with pytest.raises(services.TenancyError, match="unknown role 'boss'"):
        services.add_member(db_session, t.tenant, email="x@y.example.com", roles=["boss"])
    with pytest.raises(services.TenancyError, match="already a member"):
        services.add_member(db_session, t.tenant, email=t.owner.email, roles=["viewer"])


def test_roles_are_checked_by_the_database_too(db_session):
    t = make_tenant(db_session)
    user = User(email="raw@roles.example.com")
    db_session.add(user)
    db_session.flush()
    db_session.add(Membership(tenant_id=t.id, user_id=user.id, roles=["superhero"]))
    with pytest.raises(IntegrityError, match="ck_memberships_roles_known"):
        db_session.flush()
    db_session.rollback()


def test_seeders_run_inside_the_new_tenants_context_and_failures_undo_everything(db_session):
    seen = []

    def record(session, tenant):
        seen.append((tenant.id, session.scalar(text("SELECT app.current_tenant_id()"))))

    def explode(session, tenant):
        raise services.TenancyError("seeding failed")

    services.TENANT_SEEDERS.append(record)
    try:
        t = make_tenant(db_session, "seeded-ok")
        assert seen == [(t.id, t.id)]
        services.TENANT_SEEDERS.append(explode)
        with pytest.raises(services.TenancyError, match="seeding failed"):
            make_tenant(db_session, "seeded-bad")
        db_session.rollback()
        assert services.find_tenant_by_slug(db_session, "seeded-bad") is None
    finally:
        services.TENANT_SEEDERS[:] = [s for s in services.TENANT_SEEDERS
                                      if s not in (record, explode)]


# --- numbering ------------------------------------------------------------------------------


def test_numbers_are_sequential_per_tenant_type_and_period(two_tenants, as_tenant):
    a, b = two_tenants
    with as_tenant(a.ctx) as s:
        assert [services.next_number(s, "invoice", "2026") for _ in range(3)] == [1, 2, 3]
        assert services.next_number(s, "order", "2026") == 1
        assert services.next_number(s, "invoice", "2027") == 1
    with as_tenant(b.ctx) as s:
        assert services.next_number(s, "invoice", "2026") == 1
    assert services.format_number("INV", 42, "2026") == "INV-2026-000042"
    assert services.format_number("PO", 7) == "PO-000007"


def test_rolled_back_number_is_given_back(app, database):
    slug = f"num-{secrets.token_hex(3)}"
    with app.app_context():
        t = make_tenant(db.session, slug)
        db.session.commit()
        with tenant_scope(t.ctx):
            assert services.next_number(db.session, "invoice") == 1
            db.session.rollback()  # the invoice was never issued
            assert services.next_number(db.session, "invoice") == 1
            db.session.commit()
            assert services.next_number(db.session, "invoice") == 2
            db.session.commit()
        db.session.remove()


def test_concurrent_issuers_get_distinct_gapless_numbers(app, database):
    with app.app_context():
        t = make_tenant(db.session, f"conc-{secrets.token_hex(3)}")
        db.session.commit()
        db.session.remove()
    engine = create_engine(sqlalchemy_url(database.app_url),
                           **{**ENGINE_OPTIONS, "pool_size": 8, "max_overflow": 0})
    install_engine_hooks(engine)
    numbers: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def issue(n: int) -> None:
        try:
            for i in range(10):
                with tenant_scope(t.ctx), Session(engine) as session:
                    number = services.next_number(session, "invoice", "2026")
                    if (n + i) % 4 == 0:
                        session.rollback()  # some issuers abandon: their number returns
                        continue
                    session.commit()
                with lock:
                    numbers.append(number)
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=issue, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    engine.dispose()
    assert errors == []
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    assert len(numbers) == 60
