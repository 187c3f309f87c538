"""OAuth 2 API clients and access tokens, scopes on personal tokens, and the
per-tenant security event log.

``core.security_events`` is append-only (``APPEND_ONLY_TABLES``) and not audited:
it is itself a log, and auditing it would copy every row. ``core.oauth_tokens`` is
not audited either: short-lived token bookkeeping, while the clients that may get
tokens are audited and refusals go to the security log.

Revision ID: 0602_oauth_security_log
Revises: 0503_crm_tickets_custom_fields
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0602_oauth_security_log"
down_revision: str | Sequence[str] | None = "0503_crm_tickets_custom_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _scopes(nullable: bool) -> sa.Column:
    return sa.Column("scopes", postgresql.ARRAY(sa.String(40)), nullable=nullable)


def upgrade() -> None:
    op.add_column("api_tokens", _scopes(True), schema="core")

    op.create_table(
        "api_clients",
        *tenant_key_columns(),
        sa.Column("client_id", sa.String(80), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        _scopes(False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_api_clients"),
        sa.UniqueConstraint("tenant_id", "client_id", name="uq_api_clients_tenant_id_client_id"),
        sa.ForeignKeyConstraint(["created_by"], ["core.users.id"],
                                name="fk_api_clients_created_by_users"),
        sa.CheckConstraint("cardinality(scopes) > 0", name="ck_api_clients_has_scopes"),
        tenant_fk("api_clients"),
        schema="core",
    )
    enable_tenant_rls(op, "core.api_clients")
    enable_audit(op, "core.api_clients")

    op.create_table(
        "oauth_tokens",
        *tenant_key_columns(),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        _scopes(False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_oauth_tokens"),
        sa.UniqueConstraint("tenant_id", "token_hash", name="uq_oauth_tokens_tenant_id_token_hash"),
        sa.ForeignKeyConstraint(["tenant_id", "client_id"],
                                ["core.api_clients.tenant_id", "core.api_clients.id"],
                                name="fk_oauth_tokens_tenant_id_api_clients"),
        tenant_fk("oauth_tokens"),
        schema="core",
    )
    op.create_index("ix_oauth_tokens_tenant_id_client_id", "oauth_tokens",
                    ["tenant_id", "client_id"], schema="core")
    enable_tenant_rls(op, "core.oauth_tokens")

    op.create_table(
        "security_events",
        *tenant_key_columns(),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=True),
        sa.Column("detail", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_security_events"),
        sa.ForeignKeyConstraint(["user_id"], ["core.users.id"],
                                name="fk_security_events_user_id_users"),
        tenant_fk("security_events"),
        schema="core",
    )
    op.create_index("ix_security_events_tenant_id_at", "security_events",
                    ["tenant_id", "at"], schema="core")
    op.create_index("ix_security_events_tenant_id_kind_at", "security_events",
                    ["tenant_id", "kind", "at"], schema="core")
    enable_tenant_rls(op, "core.security_events")


def downgrade() -> None:
    op.drop_table("security_events", schema="core")
    op.drop_table("oauth_tokens", schema="core")
    disable_audit(op, "core.api_clients")
    op.drop_table("api_clients", schema="core")
    op.drop_column("api_tokens", "scopes", schema="core")
