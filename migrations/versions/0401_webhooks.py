"""Outbound webhooks (endpoints, deliveries) and delayed outbox events.

Revision ID: 0401_webhooks
Revises: 0400_events
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.helpers import timestamp_columns
from tenants.rls import enable_tenant_rls

revision: str = "0401_webhooks"
down_revision: str | Sequence[str] | None = "0400_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None



def upgrade() -> None:
    # An event may ask to be delivered no earlier than this (retry backoff).
    op.add_column("outbox", sa.Column("deliver_after", sa.DateTime(timezone=True),
                                      nullable=True), schema="events")

    op.create_table(
        "webhook_endpoints",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("app.uuid7()"), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("description", sa.String(200), server_default="", nullable=False),
        sa.Column("event_types", pg.ARRAY(sa.String(100)), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_endpoints"),
        sa.ForeignKeyConstraint(["tenant_id"], ["core.tenants.id"],
                                name="fk_webhook_endpoints_tenant_id_tenants"),
        sa.CheckConstraint("url ~ '^https?://'", name="ck_webhook_endpoints_url_http"),
        sa.CheckConstraint("cardinality(event_types) > 0",
                           name="ck_webhook_endpoints_event_types_present"),
        schema="events",
    )
    enable_tenant_rls(op, "events.webhook_endpoints")

    op.create_table(
        "webhook_deliveries",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("app.uuid7()"), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_duration_ms", sa.Integer(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint("tenant_id", "endpoint_id", "event_id",
                            name="uq_webhook_deliveries_tenant_id_endpoint_id_event_id"),
        sa.ForeignKeyConstraint(["tenant_id", "endpoint_id"],
                                ["events.webhook_endpoints.tenant_id",
                                 "events.webhook_endpoints.id"],
                                name="fk_webhook_deliveries_tenant_id_webhook_endpoints"),
        sa.ForeignKeyConstraint(["tenant_id"], ["core.tenants.id"],
                                name="fk_webhook_deliveries_tenant_id_tenants"),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')",
                           name="ck_webhook_deliveries_status_known"),
        schema="events",
    )
    op.create_index("ix_webhook_deliveries_tenant_id_endpoint_id_created_at",
                    "webhook_deliveries", ["tenant_id", "endpoint_id", "created_at"],
                    schema="events")
    enable_tenant_rls(op, "events.webhook_deliveries")


def downgrade() -> None:
    op.drop_table("webhook_deliveries", schema="events")
    op.drop_table("webhook_endpoints", schema="events")
    op.drop_column("outbox", "deliver_after", schema="events")
