"""Events: transactional outbox, consumer inbox, delivery attempts, exceptions queue,
scheduled runs, and the PostgreSQL message transport's tables.

Revision ID: 0400_events
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import enable_tenant_rls

revision: str = "0400_events"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None





def upgrade() -> None:
    # --- outbox: the business change and its events commit together ---------------
    op.create_table(
        "outbox",
        *tenant_key_columns(),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=False),
        sa.Column("causation_id", sa.Uuid(), nullable=True),
        sa.Column("target_consumer", sa.String(100), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publish_count", sa.Integer(), server_default="0", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_outbox"),
        tenant_fk("outbox"),
        schema="events",
    )
    # The relay's hot path: this tenant's unpublished rows in id (= time) order.
    op.create_index("ix_outbox_tenant_id_unpublished", "outbox", ["tenant_id", "id"],
                    schema="events", postgresql_where=sa.text("published_at IS NULL"))
    # Replay and history: a tenant's events of a type over time.
    op.create_index("ix_outbox_tenant_id_event_type_created_at", "outbox",
                    ["tenant_id", "event_type", "created_at"], schema="events")
    enable_tenant_rls(op, "events.outbox")

    # Which tenants have unpublished events. Global (the relay reads it before it
    # can choose a tenant context) but holds no business data: a tenant id, a
    # version bumped by every insert, and since when the tenant has a backlog.
    op.create_table(
        "pending_tenants",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("pending_since", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_pending_tenants"),
        tenant_fk("pending_tenants"),
        schema="events",
    )
    op.execute(
        """
        CREATE FUNCTION events.outbox_inserted() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO events.pending_tenants AS p (tenant_id) VALUES (NEW.tenant_id)
            ON CONFLICT (tenant_id) DO UPDATE SET version = p.version + 1;
            -- Delivered at commit, never for a rolled-back insert: the relay's doorbell.
            PERFORM pg_notify('erp_outbox', NEW.tenant_id::text);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_inserted AFTER INSERT ON events.outbox "
        "FOR EACH ROW EXECUTE FUNCTION events.outbox_inserted()"
    )

    # --- consumers ----------------------------------------------------------------
    op.create_table(
        "inbox",
        *tenant_key_columns(),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_inbox"),
        sa.UniqueConstraint("tenant_id", "consumer", "event_id",
                            name="uq_inbox_tenant_id_consumer_event_id"),
        tenant_fk("inbox"),
        schema="events",
    )
    enable_tenant_rls(op, "events.inbox")

    op.create_table(
        "deliveries",
        *tenant_key_columns(),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_deliveries"),
        sa.UniqueConstraint("tenant_id", "consumer", "event_id",
                            name="uq_deliveries_tenant_id_consumer_event_id"),
        sa.CheckConstraint("attempts >= 0", name="ck_deliveries_attempts_non_negative"),
        tenant_fk("deliveries"),
        schema="events",
    )
    enable_tenant_rls(op, "events.deliveries")

    op.create_table(
        "exceptions",
        *tenant_key_columns(),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("context", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("status", sa.String(20), server_default="open", nullable=False),
        sa.Column("occurrences", sa.Integer(), server_default="1", nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_exceptions"),
        sa.UniqueConstraint("tenant_id", "consumer", "event_id",
                            name="uq_exceptions_tenant_id_consumer_event_id"),
        sa.CheckConstraint("kind IN ('attention', 'poison', 'failed')",
                           name="ck_exceptions_kind_known"),
        sa.CheckConstraint("status IN ('open', 'retrying', 'resolved')",
                           name="ck_exceptions_status_known"),
        tenant_fk("exceptions"),
        schema="events",
    )
    op.create_index("ix_exceptions_tenant_id_status_created_at", "exceptions",
                    ["tenant_id", "status", "created_at"], schema="events")
    enable_tenant_rls(op, "events.exceptions")

    op.create_table(
        "scheduled_runs",
        *tenant_key_columns(),
        sa.Column("job", sa.String(100), nullable=False),
        sa.Column("period", sa.String(40), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_scheduled_runs"),
        sa.UniqueConstraint("tenant_id", "job", "period",
                            name="uq_scheduled_runs_tenant_id_job_period"),
        tenant_fk("scheduled_runs"),
        schema="events",
    )
    enable_tenant_rls(op, "events.scheduled_runs")

    # --- PostgreSQL message transport (dramatiq-postgres 1.x table layout) ------------
    # Written out here rather than created by the library at run time: DDL lives in
    # migrations, and the app role may not create tables.
    op.execute("CREATE SCHEMA IF NOT EXISTS dramatiq")
    op.execute("CREATE TYPE dramatiq.state AS ENUM ('queued', 'consumed', 'rejected')")
    op.execute(
        """
        CREATE TABLE dramatiq.queue (
            message_id uuid PRIMARY KEY,
            queue_name text NOT NULL DEFAULT 'default',
            state dramatiq.state,
            mtime timestamptz DEFAULT now(),
            message jsonb,
            position bigint GENERATED BY DEFAULT AS IDENTITY,
            available_at timestamptz NOT NULL DEFAULT now(),
            worker_id uuid,
            consumed_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX ix_queue_claim ON dramatiq.queue (queue_name, available_at, position)"
               " WHERE state = 'queued'")
    op.execute("CREATE INDEX ix_queue_state_mtime ON dramatiq.queue (state, mtime)")
    op.execute("CREATE TABLE dramatiq.worker (worker_id uuid PRIMARY KEY,"
               " heartbeat_at timestamptz NOT NULL)")
    op.execute("CREATE TABLE dramatiq.result (message_id uuid PRIMARY KEY, result jsonb,"
               " expires_at timestamptz)")


def downgrade() -> None:
    op.execute("DROP SCHEMA dramatiq CASCADE")
    for table in ("scheduled_runs", "exceptions", "deliveries", "inbox"):
        op.drop_table(table, schema="events")
    op.execute("DROP TRIGGER outbox_inserted ON events.outbox")
    op.execute("DROP FUNCTION events.outbox_inserted()")
    op.drop_table("pending_tenants", schema="events")
    op.drop_table("outbox", schema="events")
