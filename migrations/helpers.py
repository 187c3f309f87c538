"""Column and constraint builders shared by hand-written migrations.

They produce exactly what ``TenantScoped`` and ``Timestamps`` declare in the models,
so a tenant table's key columns read the same in every migration.
"""

from __future__ import annotations

import sqlalchemy as sa


def tenant_key_columns() -> list[sa.Column]:
    """``tenant_id`` and a UUIDv7 ``id``: the composite primary key of tenant tables."""
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("app.uuid7()"), nullable=False),
    ]


def timestamp_columns() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    ]


def tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    """``tenant_id`` -> core.tenants, named by the project's convention."""
    return sa.ForeignKeyConstraint(["tenant_id"], ["core.tenants.id"],
                                   name=f"fk_{table}_tenant_id_tenants")
