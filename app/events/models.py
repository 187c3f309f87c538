"""Schema ``events``: outbox (also the event store), inbox, deliveries, exceptions."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from tenants.models import TenantScoped


class OutboxEvent(TenantScoped, Base):
    """One business event. Kept after publishing: the outbox is the event store."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_tenant_id_unpublished", "tenant_id", "id",
              postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_tenant_id_event_type_created_at", "tenant_id", "event_type",
              "created_at"),
        {"schema": "events"},
    )

    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    correlation_id: Mapped[str] = mapped_column(String(64))
    causation_id: Mapped[uuid.UUID | None]
    # Set on redelivery rows: only this consumer gets the referenced event again.
    target_consumer: Mapped[str | None] = mapped_column(String(100))
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Not before this time (retry backoff); the relay hands the broker the delay.
    deliver_after: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    publish_count: Mapped[int] = mapped_column(server_default=text("0"))


class PendingTenant(Base):
    """Global marker: this tenant has unpublished outbox rows (see tenants.globals)."""

    __tablename__ = "pending_tenants"
    __table_args__ = {"schema": "events"}

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.tenants.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))
    pending_since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                       server_default=text("now()"))


class InboxEntry(TenantScoped, Base):
    """(consumer, event) processed: written in the same transaction as the effect."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("tenant_id", "consumer", "event_id"),
                      {"schema": "events"})

    consumer: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID]


class Delivery(TenantScoped, Base):
    """Attempts per (consumer, event), committed *before* the work starts, so a
    delivery that kills the worker process is still counted (poison guard)."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("tenant_id", "consumer", "event_id"),
                      {"schema": "events"})

    consumer: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID]
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)


class WorkException(TenantScoped, Base):
    """Work that needs a person: shown in the portal with its context, retryable."""

    __tablename__ = "exceptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "consumer", "event_id"),
        Index("ix_exceptions_tenant_id_status_created_at", "tenant_id", "status", "created_at"),
        {"schema": "events"},
    )

    consumer: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # attention | poison | failed
    reason: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(20), server_default="open")
    occurrences: Mapped[int] = mapped_column(server_default=text("1"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ScheduledRun(TenantScoped, Base):
    """(tenant, job, period) claimed once: a doubled scheduler changes nothing."""

    __tablename__ = "scheduled_runs"
    __table_args__ = (UniqueConstraint("tenant_id", "job", "period"), {"schema": "events"})

    job: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(40))


class WebhookEndpoint(TenantScoped, Base):
    """A tenant's HTTPS endpoint subscribed to event types (``crm.*``, ``*``)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint("url ~ '^https?://'", name="url_http"),
        CheckConstraint("cardinality(event_types) > 0", name="event_types_present"),
        {"schema": "events"},
    )

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), server_default="")
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(100)))
    # The signing secret, encrypted at rest (app.crypto); shown once at creation.
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))


class WebhookDelivery(TenantScoped, Base):
    """One event to one endpoint: its attempts, last answer and state (the log)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "endpoint_id", "event_id"),
        ForeignKeyConstraint(["tenant_id", "endpoint_id"],
                             ["events.webhook_endpoints.tenant_id",
                              "events.webhook_endpoints.id"]),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        Index("ix_webhook_deliveries_tenant_id_endpoint_id_created_at", "tenant_id",
              "endpoint_id", "created_at"),
        {"schema": "events"},
    )

    endpoint_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_duration_ms: Mapped[int | None]
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
