"""Per-user API tokens.

Revision ID: 0403_api_tokens
Revises: 0402_audit
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0403_api_tokens"
down_revision: str | Sequence[str] | None = "0402_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        *tenant_key_columns(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        # the first characters of the token, to recognise it in lists; never enough
        # to use it
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_api_tokens"),
        sa.UniqueConstraint("tenant_id", "token_hash", name="uq_api_tokens_tenant_id_token_hash"),
        sa.ForeignKeyConstraint(["user_id"], ["core.users.id"],
                                name="fk_api_tokens_user_id_users"),
        tenant_fk("api_tokens"),
        schema="core",
    )
    enable_tenant_rls(op, "core.api_tokens")
    enable_audit(op, "core.api_tokens")


def downgrade() -> None:
    disable_audit(op, "core.api_tokens")
    op.drop_table("api_tokens", schema="core")
