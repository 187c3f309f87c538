"""The typed SQLAlchemy base, the Flask-SQLAlchemy handle and the engine hooks.

Three things live here because every domain leans on them:

* ``Base``: SQLAlchemy 2 ``DeclarativeBase`` with a naming convention, so every
  constraint has a predictable name that migrations and the catalog test can name.
* ``db``: the Flask-SQLAlchemy handle. ``join_transaction_mode="create_savepoint"``
  only matters when a session is bound to a connection that already has a
  transaction open (the test harness does that); with an engine it changes nothing.
* ``install_engine_hooks``: the tenant context is written into every transaction
  with ``set_config(..., true)`` when it begins, and a connection returned to the
  pool is rolled back and ``RESET ALL`` before anyone else gets it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

import uuid_utils.compat as uuid_utils
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, Numeric, String, event, func, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> uuid.UUID:
    """UUIDv7: time-ordered, so new rows land at the right edge of the primary key index."""
    return uuid_utils.uuid7()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Annotated column types shared by every domain.
uuid_pk = Annotated[
    uuid.UUID,
    mapped_column(primary_key=True, default=new_id, server_default=text("app.uuid7()")),
]
str_short = Annotated[str, mapped_column(String(200))]
currency_code = Annotated[str, mapped_column(String(3))]
# Money: NUMERIC, never float. 19 digits, 4 decimals covers every ISO 4217 minor unit
# (max 4, CLF) with room for totals; rounding to the currency's minor unit is explicit
# in the services that compute documents.
money = Annotated[Decimal, mapped_column(Numeric(19, 4))]
timestamp = Annotated[dt.datetime, mapped_column(DateTime(timezone=True))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamps:
    """created_at / updated_at, set by the database clock so all writers agree."""

    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), sort_order=900
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), sort_order=901
    )


db = SQLAlchemy(
    model_class=Base,
    session_options={"join_transaction_mode": "create_savepoint", "expire_on_commit": False},
)


# --- engine hooks ---------------------------------------------------------------

TXN_TENANT = "erp_transaction_tenant"

CONTEXT_SQL = (
    "SELECT set_config('app.tenant_id', %(t)s, true),"
    " set_config('app.user_id', %(u)s, true),"
    " set_config('app.request_id', %(r)s, true)"
)


def apply_context(conn: Connection) -> None:
    """Write the current tenant context into the transaction that is beginning.

    Local to the transaction (third argument ``true``), so when it ends the settings
    are gone: a pooled connection cannot carry one tenant into the next request.
    With no tenant context the settings are written as '' and
    ``app.current_tenant_id()`` raises on any tenant table.
    """
    from tenants.context import current_context, current_request_id

    ctx = current_context()
    if ctx is None and not conn.info.get(TXN_TENANT):
        # Nothing to write: a transaction-local setting from before is gone, and an
        # unset tenant raises in app.current_tenant_id() exactly as '' does.
        conn.info[TXN_TENANT] = None
        return
    params = {
        "t": str(ctx.tenant_id) if ctx else "",
        "u": str(ctx.user_id) if ctx and ctx.user_id else "",
        "r": current_request_id() or "",
    }
    conn.exec_driver_sql(CONTEXT_SQL, params)
    # Remembered so the ORM guard can refuse a query whose context differs from the
    # tenant this transaction was begun under (it would silently see no rows).
    conn.info[TXN_TENANT] = ctx.tenant_id if ctx else None


def _reset_connection(dbapi_connection: Any, _record: Any, reset_state: Any) -> None:
    """Replace the pool's reset: roll back, then drop any session-level setting.

    ``RESET ALL`` is belt and braces: no code sets tenant settings at session level,
    and a test greps for that, but a connection coming back must be clean whatever
    a future bug did.
    """
    dbapi_connection.rollback()
    if reset_state.terminate_only:  # the connection is being discarded anyway
        return
    # In autocommit, RESET ALL is one round trip instead of BEGIN / RESET / COMMIT.
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute("RESET ALL")
    finally:
        dbapi_connection.autocommit = False


def install_engine_hooks(engine: Engine) -> None:
    """Attach the tenant-context and pool-reset hooks to an engine (idempotent)."""
    if not event.contains(engine, "begin", apply_context):
        event.listen(engine, "begin", apply_context)
    if not event.contains(engine.pool, "reset", _reset_connection):
        event.listen(engine.pool, "reset", _reset_connection)


ENGINE_OPTIONS = {
    "pool_pre_ping": True,
    # the "reset" hook above does rollback + RESET ALL itself
    "pool_reset_on_return": None,
    "pool_size": 10,
    "max_overflow": 10,
}
