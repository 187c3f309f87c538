"""Idempotency keys for API POSTs.

Revision ID: 0404_idempotency
Revises: 0403_api_tokens
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import enable_tenant_rls

revision: str = "0404_idempotency"
down_revision: str | Sequence[str] | None = "0403_api_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        *tenant_key_columns(),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", pg.JSONB(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("tenant_id", "key", name="uq_idempotency_keys_tenant_id_key"),
        tenant_fk("idempotency_keys"),
        schema="core",
    )
    enable_tenant_rls(op, "core.idempotency_keys")


def downgrade() -> None:
    op.drop_table("idempotency_keys", schema="core")
