"""Audit trail: a trigger writes every change of tenant data; workers seal it.

Revision ID: 0402_audit
Revises: 0401_webhooks
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.helpers import tenant_fk, tenant_key_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0402_audit"
down_revision: str | Sequence[str] | None = "0401_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "log",
        *tenant_key_columns(),
        sa.Column("table_name", sa.String(130), nullable=False),
        sa.Column("row_id", sa.Uuid(), nullable=True),
        sa.Column("op", sa.String(1), nullable=False),
        sa.Column("old", pg.JSONB(), nullable=True),
        sa.Column("new", pg.JSONB(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_log"),
        tenant_fk("log"),
        sa.CheckConstraint("op IN ('I', 'U', 'D')", name="ck_log_op_known"),
        schema="audit",
    )
    op.create_index("ix_log_tenant_id_table_name_row_id", "log",
                    ["tenant_id", "table_name", "row_id"], schema="audit")
    enable_tenant_rls(op, "audit.log")

    # The hash chain: seq n covers log row log_id with
    # hash = sha256(prev_hash || canonical text of the row). Append-only for the app.
    op.create_table(
        "seals",
        *tenant_key_columns(),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("log_id", sa.Uuid(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_seals"),
        sa.UniqueConstraint("tenant_id", "seq", name="uq_seals_tenant_id_seq"),
        sa.UniqueConstraint("tenant_id", "log_id", name="uq_seals_tenant_id_log_id"),
        sa.ForeignKeyConstraint(["tenant_id", "log_id"], ["audit.log.tenant_id", "audit.log.id"],
                                name="fk_seals_tenant_id_log"),
        tenant_fk("seals"),
        schema="audit",
    )
    enable_tenant_rls(op, "audit.seals")

    # Runs as the role that made the change (the app role), inside its transaction:
    # the audit row commits or rolls back with the change it describes.
    op.execute(
        """
        CREATE FUNCTION audit.capture() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
            new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
            subject jsonb := coalesce(new_row, old_row);
        BEGIN
            IF TG_OP = 'UPDATE' AND old_row = new_row THEN
                RETURN NULL;
            END IF;
            INSERT INTO audit.log (tenant_id, table_name, row_id, op, old, new, user_id,
                                   request_id)
            VALUES ((subject->>'tenant_id')::uuid, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
                    (subject->>'id')::uuid, left(TG_OP, 1), old_row, new_row,
                    app.current_user_id(),
                    NULLIF(current_setting('app.request_id', true), ''));
            RETURN NULL;
        END
        $$
        """
    )
    for table in AUDITED:
        enable_audit(op, table)


AUDITED = ("core.memberships", "core.document_counters", "events.webhook_endpoints")


def downgrade() -> None:
    for table in AUDITED:
        disable_audit(op, table)
    op.execute("DROP FUNCTION audit.capture()")
    op.drop_table("seals", schema="audit")
    op.drop_table("log", schema="audit")
