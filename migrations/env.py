"""Alembic environment: runs as the owner role, one migration run at a time.

* An advisory lock serialises concurrent ``erp db upgrade`` runs (two web nodes
  starting together must not both migrate).
* ``lock_timeout`` makes a migration that waits behind live traffic fail fast
  instead of queueing every request behind its ACCESS EXCLUSIVE lock.
* Models are imported so ``alembic check``/autogenerate can compare them with the
  database; migrations themselves are written by hand.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

import app.models  # noqa: F401 - registers every model on Base.metadata
from app.db import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = 72_201_001  # arbitrary, fixed: pg_advisory_lock key for migrations


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    if type_ == "schema":
        from tenants.globals import TENANT_SCHEMAS

        return name in TENANT_SCHEMAS
    return True


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
        with engine.connect() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    connection.execute(text("SET lock_timeout = '10s'"))
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
    connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_schemas=True,
            include_name=include_name,
            compare_type=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run erp db upgrade")
run_migrations_online()
