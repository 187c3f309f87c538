"""Schema ``crm``: customer accounts and their contacts. Both are soft-deleted."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from tenants.models import TenantScoped


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
