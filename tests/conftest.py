"""Test harness: one migrated database per test process, rolled back per test.

* Server: the one at ``DATABASE_OWNER_URL`` when set (it must be allowed to create
  databases and roles, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``), else
  an embedded PostgreSQL under the system temp folder, shared by xdist workers.
* Each test process (xdist worker) creates its own uniquely named database and
  owner/app/analytics roles, migrates once with the real ``erp db upgrade`` code,
  and drops them all at the end. Nothing else on the server is touched.
* The app connects as the app role, exactly as in production: RLS applies.
* ``db_session`` (and ``client``, which uses it) runs each test inside one outer
  transaction that is rolled back at the end; the app's own commits become
  savepoint releases. Tests that need real commits and several connections
  (concurrency, pool reuse) use ``committed_engine`` instead and pick unique slugs.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app import create_app
from app.db import apply_context, db
from app.security import limiter
from tenants import services
from tenants.context import TenantContext, activate, tenant_scope
from tenants.models import Tenant, User
from tenants.permissions import permissions_for

PASSWORD = "correct horse battery"


# --- server and database --------------------------------------------------------------

from .dbsetup import TestDatabase, scratch_database  # noqa: E402


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    with scratch_database(tmp_path_factory.mktemp("erpdata")) as created:
        yield created


@pytest.fixture(scope="session")
def app(database: TestDatabase) -> Iterator[Flask]:
    application = create_app(database.settings)
    application.config.update(WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=True)
    yield application
    with application.app_context():
        db.engine.dispose()


# --- per-test rollback ------------------------------------------------------------------


def _context_on_savepoint(conn: Connection, _name: str) -> None:
    # Under the harness the app's transactions are savepoints inside one outer
    # transaction; re-applying the context at each savepoint is what the engine's
    # "begin" hook does for a real transaction.
    apply_context(conn)


@pytest.fixture
def db_session(app: Flask) -> Iterator[Session]:
    """A session on one connection whose outer transaction is rolled back at the end.

    Requests made with ``client`` during the test bind their own Flask-SQLAlchemy
    sessions to the same connection (each starts a savepoint), so they see what the
    test wrote and the test sees what they wrote. No app context is held open here:
    Flask would otherwise reuse it, and its ``g``, across test-client requests.
    """
    engines = db._app_engines[app]
    engine = engines[None]
    conn = engine.connect()
    outer = conn.begin()
    event.listen(conn, "savepoint", _context_on_savepoint)
    engines[None] = conn  # Flask-SQLAlchemy sessions now bind to this connection
    session = Session(bind=conn, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        engines[None] = engine
        outer.rollback()
        conn.close()
        activate(None)
        limiter.reset()


@pytest.fixture
def client(app: Flask, db_session: Session) -> FlaskClient:
    return app.test_client()


# --- factories ----------------------------------------------------------------------------


@dataclass
class TenantFixture:
    tenant: Tenant
    owner: User
    ctx: TenantContext

    @property
    def slug(self) -> str:
        return self.tenant.slug

    @property
    def id(self) -> uuid.UUID:
        return self.tenant.id


def make_tenant(session: Session, slug: str | None = None, *, currency: str = "EUR",
                email: str | None = None) -> TenantFixture:
    """Create a tenant with an owner whose password is PASSWORD; flush, never commit."""
    slug = slug or f"t-{secrets.token_hex(4)}"
    result = services.create_tenant(
        session, slug=slug, name=f"Company {slug}", base_currency=currency,
        admin_email=email or f"owner@{slug}.example.com", admin_password=PASSWORD,
        admin_name=f"Owner of {slug}",
    )
    session.flush()
    ctx = TenantContext(tenant_id=result.tenant.id, tenant_slug=slug, user_id=result.admin.id,
                        roles=frozenset({"owner"}), permissions=permissions_for(["owner"]))
    return TenantFixture(result.tenant, result.admin, ctx)


@pytest.fixture
def tenant_factory(db_session: Session):
    def factory(slug: str | None = None, **kwargs) -> TenantFixture:
        return make_tenant(db_session, slug, **kwargs)

    return factory


@pytest.fixture
def two_tenants(tenant_factory) -> tuple[TenantFixture, TenantFixture]:
    return tenant_factory(), tenant_factory()


def login(client: FlaskClient, email: str, password: str = PASSWORD, follow: bool = False):
    """Sign in through the real form, CSRF token included."""
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password,
                                        "csrf_token": token}, follow_redirects=follow)


def csrf_from(html: str) -> str:
    marker = 'name="csrf_token" type="hidden" value="'
    start = html.find(marker)
    if start < 0:
        marker = 'name="csrf_token" value="'
        start = html.find(marker)
    assert start >= 0, "no CSRF token on the page"
    start += len(marker)
    return html[start: html.index('"', start)]


@pytest.fixture
def as_tenant(db_session: Session):
    """``with as_tenant(t.ctx) as s:`` runs a block as tenant t on the test session.

    The session's transaction is ended first (a savepoint release under the
    harness), because the tenant context is written when a transaction begins;
    the block's work is committed (released) at the end, like a request.
    """

    @contextmanager
    def scope(ctx: TenantContext) -> Iterator[Session]:
        db_session.commit()
        with tenant_scope(ctx):
            yield db_session
            db_session.commit()

    return scope


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage_per_module():
    """Collect garbage after each module, so a ResourceWarning for an unclosed
    connection fails the module that leaked it rather than a random later test."""
    yield
    import gc

    gc.collect()
