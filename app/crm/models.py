"""Schema ``crm``: customer accounts and their contacts. Both are soft-deleted."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from tenants.models import TenantKey, TenantScoped


class Account(TenantScoped, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("payment_terms_days BETWEEN 0 AND 365", name="payment_terms_range"),
        CheckConstraint("credit_limit IS NULL OR credit_limit >= 0",
                        name="credit_limit_non_negative"),
        Index("uq_accounts_tenant_id_normalized_name_domain", "tenant_id", "normalized_name",
              func.coalesce(text("domain"), ""), unique=True,
              postgresql_where=text("deleted_at IS NULL")),
        Index("ix_accounts_tenant_id_updated_at", "tenant_id", "updated_at"),
        CheckConstraint("jsonb_typeof(custom) = 'object'", name="custom_object"),
        Index("ix_accounts_custom", "custom", postgresql_using="gin",
              postgresql_ops={"custom": "jsonb_path_ops"}),
        {"schema": "crm"},
    )

    name: Mapped[str] = mapped_column(String(200))
    normalized_name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253))
    industry: Mapped[str] = mapped_column(String(100), server_default="")
    website: Mapped[str] = mapped_column(String(500), server_default="")
    billing_address: Mapped[str] = mapped_column(Text, server_default="")
    shipping_address: Mapped[str] = mapped_column(Text, server_default="")
    payment_terms_days: Mapped[int] = mapped_column(server_default=text("30"))
    credit_limit: Mapped[Decimal | None] = mapped_column(Numeric(19, 4))
    currency: Mapped[str] = mapped_column(String(3))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Tenant-defined fields, validated by app.crm.custom_fields on every write.
    custom: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"),
                                                   default=dict)


class Contact(TenantScoped, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "account_id"],
                             ["crm.accounts.tenant_id", "crm.accounts.id"]),
        Index("uq_contacts_tenant_id_email", "tenant_id", func.lower(text("email")),
              unique=True, postgresql_where=text("deleted_at IS NULL AND email IS NOT NULL")),
        Index("ix_contacts_tenant_id_account_id", "tenant_id", "account_id"),
        Index("ix_contacts_tenant_id_updated_at", "tenant_id", "updated_at"),
        CheckConstraint("jsonb_typeof(custom) = 'object'", name="custom_object"),
        Index("ix_contacts_custom", "custom", postgresql_using="gin",
              postgresql_ops={"custom": "jsonb_path_ops"}),
        {"schema": "crm"},
    )

    account_id: Mapped[uuid.UUID | None]
    first_name: Mapped[str] = mapped_column(String(100), server_default="")
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(50), server_default="")
    title: Mapped[str] = mapped_column(String(100), server_default="")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Tenant-defined fields, validated by app.crm.custom_fields on every write.
    custom: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"),
                                                   default=dict)


# --- pipeline (migration 0502) ------------------------------------------------------------

LEAD_STATUSES = ("new", "contacted", "qualified", "unqualified", "converted")
ACTIVITY_KINDS = ("email", "call", "meeting", "note", "task")


class DealStage(TenantScoped, Base):
    """A tenant's pipeline stage. Exactly the stages marked won or lost are terminal."""

    __tablename__ = "deal_stages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint("probability BETWEEN 0 AND 100", name="probability_range"),
        CheckConstraint("NOT (is_won AND is_lost)", name="won_or_lost"),
        {"schema": "crm"},
    )

    name: Mapped[str] = mapped_column(String(60))
    position: Mapped[int]
    probability: Mapped[int]
    is_won: Mapped[bool] = mapped_column(server_default=text("false"))
    is_lost: Mapped[bool] = mapped_column(server_default=text("false"))

    @property
    def terminal(self) -> bool:
        return self.is_won or self.is_lost


class Lead(TenantScoped, Base):
    __tablename__ = "leads"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "converted_account_id"],
                             ["crm.accounts.tenant_id", "crm.accounts.id"]),
        ForeignKeyConstraint(["tenant_id", "converted_contact_id"],
                             ["crm.contacts.tenant_id", "crm.contacts.id"]),
        ForeignKeyConstraint(["tenant_id", "converted_deal_id"],
                             ["crm.deals.tenant_id", "crm.deals.id"],
                             use_alter=True),
        CheckConstraint("status IN ('new', 'contacted', 'qualified', 'unqualified',"
                        " 'converted')", name="status_known"),
        CheckConstraint("(status = 'converted') = (converted_at IS NOT NULL)",
                        name="converted_consistent"),
        Index("ix_leads_tenant_id_status_updated_at", "tenant_id", "status", "updated_at"),
        {"schema": "crm"},
    )

    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str] = mapped_column(String(200), server_default="")
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(50), server_default="")
    source: Mapped[str] = mapped_column(String(60), server_default="Web Page Form")
    status: Mapped[str] = mapped_column(String(20), server_default="new")
    notes: Mapped[str] = mapped_column(Text, server_default="")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    converted_account_id: Mapped[uuid.UUID | None]
    converted_contact_id: Mapped[uuid.UUID | None]
    converted_deal_id: Mapped[uuid.UUID | None]
    converted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Deal(TenantScoped, Base):
    __tablename__ = "deals"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "account_id"],
                             ["crm.accounts.tenant_id", "crm.accounts.id"]),
        ForeignKeyConstraint(["tenant_id", "contact_id"],
                             ["crm.contacts.tenant_id", "crm.contacts.id"]),
        ForeignKeyConstraint(["tenant_id", "stage_id"],
                             ["crm.deal_stages.tenant_id", "crm.deal_stages.id"]),
        CheckConstraint("value >= 0", name="value_non_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        Index("ix_deals_tenant_id_stage_id_updated_at", "tenant_id", "stage_id", "updated_at"),
        Index("ix_deals_tenant_id_account_id", "tenant_id", "account_id"),
        Index("ix_deals_tenant_id_contact_id", "tenant_id", "contact_id"),
        {"schema": "crm"},
    )

    name: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[uuid.UUID]
    contact_id: Mapped[uuid.UUID | None]
    stage_id: Mapped[uuid.UUID]
    value: Mapped[Decimal] = mapped_column(Numeric(19, 4), server_default=text("0"))
    currency: Mapped[str] = mapped_column(String(3))
    expected_close: Mapped[dt.date | None] = mapped_column(Date)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    lost_reason: Mapped[str] = mapped_column(String(500), server_default="")
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    source_lead_id: Mapped[uuid.UUID | None]
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class DealStageHistory(TenantKey, Base):
    """Who moved a deal from which stage to which, when. Append-only."""

    __tablename__ = "deal_stage_history"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "deal_id"], ["crm.deals.tenant_id", "crm.deals.id"]),
        ForeignKeyConstraint(["tenant_id", "from_stage_id"],
                             ["crm.deal_stages.tenant_id", "crm.deal_stages.id"]),
        ForeignKeyConstraint(["tenant_id", "to_stage_id"],
                             ["crm.deal_stages.tenant_id", "crm.deal_stages.id"]),
        Index("ix_deal_stage_history_tenant_id_deal_id_changed_at", "tenant_id", "deal_id",
              "changed_at"),
        {"schema": "crm"},
    )

    deal_id: Mapped[uuid.UUID]
    from_stage_id: Mapped[uuid.UUID | None]
    to_stage_id: Mapped[uuid.UUID]
    changed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())


class Activity(TenantScoped, Base):
    __tablename__ = "activities"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "deal_id"], ["crm.deals.tenant_id", "crm.deals.id"]),
        ForeignKeyConstraint(["tenant_id", "contact_id"],
                             ["crm.contacts.tenant_id", "crm.contacts.id"]),
        ForeignKeyConstraint(["tenant_id", "account_id"],
                             ["crm.accounts.tenant_id", "crm.accounts.id"]),
        CheckConstraint("kind IN ('email', 'call', 'meeting', 'note', 'task')",
                        name="kind_known"),
        CheckConstraint("num_nonnulls(deal_id, contact_id, account_id) > 0", name="linked"),
        Index("ix_activities_tenant_id_deal_id_created_at", "tenant_id", "deal_id",
              "created_at"),
        Index("ix_activities_tenant_id_contact_id_created_at", "tenant_id", "contact_id",
              "created_at"),
        Index("ix_activities_tenant_id_account_id_created_at", "tenant_id", "account_id",
              "created_at"),
        {"schema": "crm"},
    )

    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, server_default="")
    deal_id: Mapped[uuid.UUID | None]
    contact_id: Mapped[uuid.UUID | None]
    account_id: Mapped[uuid.UUID | None]
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
