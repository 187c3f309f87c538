"""Foundation: schemas, tenant-context functions, core tenancy tables.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from tenants.rls import enable_tenant_rls

revision: str = "0001_foundation"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMAS = (
    "app", "core", "crm", "sales", "inventory", "purchasing", "ledger", "billing", "hr",
    "audit", "events",
)
ROLES = "ARRAY['owner','admin','sales','finance','warehouse','hr','viewer']::varchar[]"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    ]


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    # The tenant of the current transaction. STABLE: constant within a statement.
    # Raises rather than returning NULL, so a query without a tenant is an error and
    # never "no rows". SQLSTATE TNCTX lets the app recognise it.
    op.execute(
        """
        CREATE FUNCTION app.current_tenant_id() RETURNS uuid
        LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
        DECLARE
            raw text := NULLIF(current_setting('app.tenant_id', true), '');
        BEGIN
            IF raw IS NULL THEN
                RAISE EXCEPTION 'no tenant context: app.tenant_id is not set in this transaction'
                    USING ERRCODE = 'TNCTX';
            END IF;
            RETURN raw::uuid;
        END
        $$
        """
    )
    # The acting user, or NULL for system work (workers without a user, provisioning).
    op.execute(
        """
        CREATE FUNCTION app.current_user_id() RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT NULLIF(current_setting('app.user_id', true), '')::uuid
        $$
        """
    )
    # UUIDv7 on PostgreSQL 15 (uuidv7() is 18+): 48-bit millisecond timestamp over
    # gen_random_uuid()'s random bits, version nibble set to 7.
    op.execute(
        """
        CREATE FUNCTION app.uuid7() RETURNS uuid
        LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
            SELECT encode(
                set_bit(set_bit(
                    overlay(uuid_send(gen_random_uuid())
                            PLACING substring(int8send(
                                floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
                            ) FROM 3)
                            FROM 1 FOR 6),
                    52, 1), 53, 1),
                'hex')::uuid
        $$
        """
    )

    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), server_default=sa.text("app.uuid7()"), nullable=False),
        sa.Column("slug", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("base_currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), server_default="active", nullable=False),
        sa.Column("settings", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
        sa.CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$'",
                           name="ck_tenants_slug_format"),
        sa.CheckConstraint("base_currency ~ '^[A-Z]{3}$'", name="ck_tenants_base_currency_iso"),
        sa.CheckConstraint("status IN ('active', 'suspended')", name="ck_tenants_status_known"),
        schema="core",
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=sa.text("app.uuid7()"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("full_name", sa.String(200), server_default="", nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("is_platform_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.CheckConstraint("position('@' in email) > 1", name="ck_users_email_has_at"),
        schema="core",
    )
    op.execute("CREATE UNIQUE INDEX uq_users_email_lower ON core.users (lower(email))")

    op.create_table(
        "memberships",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("app.uuid7()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("roles", pg.ARRAY(sa.String(20)), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_memberships"),
        sa.UniqueConstraint("tenant_id", "user_id", name="uq_memberships_tenant_id_user_id"),
        sa.ForeignKeyConstraint(["tenant_id"], ["core.tenants.id"],
                                name="fk_memberships_tenant_id_tenants"),
        sa.ForeignKeyConstraint(["user_id"], ["core.users.id"],
                                name="fk_memberships_user_id_users"),
        sa.CheckConstraint(f"cardinality(roles) > 0 AND roles <@ {ROLES}",
                           name="ck_memberships_roles_known"),
        schema="core",
    )
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"], schema="core")

    op.create_table(
        "document_counters",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("app.uuid7()"), nullable=False),
        sa.Column("doc_type", sa.String(40), nullable=False),
        sa.Column("period", sa.String(20), server_default="", nullable=False),
        sa.Column("last_value", sa.BigInteger(), server_default="0", nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_document_counters"),
        sa.UniqueConstraint("tenant_id", "doc_type", "period",
                            name="uq_document_counters_tenant_id_doc_type_period"),
        sa.ForeignKeyConstraint(["tenant_id"], ["core.tenants.id"],
                                name="fk_document_counters_tenant_id_tenants"),
        sa.CheckConstraint("last_value >= 0", name="ck_document_counters_last_value_non_negative"),
        schema="core",
    )
    enable_tenant_rls(op, "core.document_counters")


def downgrade() -> None:
    op.drop_table("document_counters", schema="core")
    op.drop_table("memberships", schema="core")
    op.drop_table("users", schema="core")
    op.drop_table("tenants", schema="core")
    op.execute("DROP FUNCTION app.uuid7()")
    op.execute("DROP FUNCTION app.current_user_id()")
    op.execute("DROP FUNCTION app.current_tenant_id()")
    for schema in reversed(SCHEMAS):
        op.execute(f"DROP SCHEMA IF EXISTS {schema}")
