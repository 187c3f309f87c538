"""Schema ``ledger``: chart of accounts, exchange rates, periods, journal entries.

The rules an accountant relies on are enforced by PostgreSQL (migration
``0200_ledger``), not only by ``services``:

* a line is a debit or a credit, never both, never negative (CHECKs);
* a posted entry balances in base currency: a DEFERRABLE INITIALLY DEFERRED
  constraint trigger re-adds its lines at commit and raises if they do not;
* posted entries and their lines refuse UPDATE and DELETE (triggers), whoever asks;
* an entry cannot be posted into a month whose period is closed; the period row is
  share-locked by the posting, so a concurrent close waits for it (and vice versa).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from tenants.models import TenantScoped

ACCOUNT_TYPES = ("asset", "liability", "equity", "revenue", "cogs", "expense")
# Debit-normal types: a positive balance is debits minus credits.
DEBIT_NORMAL = frozenset({"asset", "cogs", "expense"})

# Exchange rates: units of base currency for one unit of the foreign currency.
Rate = Numeric(20, 10)


class Account(TenantScoped, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        Index("uq_accounts_tenant_id_role", "tenant_id", "role", unique=True,
              postgresql_where=text("role IS NOT NULL")),
        CheckConstraint("type IN ('asset', 'liability', 'equity', 'revenue', 'cogs', 'expense')",
                        name="type_known"),
        CheckConstraint("code ~ '^[0-9A-Za-z][0-9A-Za-z.-]{0,19}$'", name="code_format"),
        {"schema": "ledger"},
    )

    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    # What the system uses the account for (inventory, grni, payables, cogs...):
    # services find accounts by role, so a tenant may renumber its chart freely.
    role: Mapped[str | None] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text, server_default="")
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))

    @property
    def debit_normal(self) -> bool:
        return self.type in DEBIT_NORMAL


class ExchangeRate(TenantScoped, Base):
    __tablename__ = "exchange_rates"
    __table_args__ = (
        UniqueConstraint("tenant_id", "currency", "rate_date"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("rate > 0", name="rate_positive"),
        {"schema": "ledger"},
    )

    currency: Mapped[str] = mapped_column(String(3))
    rate_date: Mapped[dt.date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(Rate)


class Period(TenantScoped, Base):
    """One calendar month. A missing row means an open month; the posting trigger
    creates the row (open) so that it has something to lock."""

    __tablename__ = "periods"
    __table_args__ = (
        UniqueConstraint("tenant_id", "period_start"),
        CheckConstraint("period_start = date_trunc('month', period_start)::date",
                        name="first_of_month"),
        CheckConstraint("status IN ('open', 'closed')", name="status_known"),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_stamped"),
        {"schema": "ledger"},
    )

    period_start: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), server_default="open")
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))


class JournalEntry(TenantScoped, Base):
    __tablename__ = "journal_entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        # An entry is reversed at most once; the reversal points at the original.
        UniqueConstraint("tenant_id", "reverses_id"),
        ForeignKeyConstraint(["tenant_id", "reverses_id"],
                             ["ledger.journal_entries.tenant_id", "ledger.journal_entries.id"]),
        CheckConstraint("status IN ('draft', 'posted')", name="status_known"),
        CheckConstraint(
            "(status = 'draft' AND number IS NULL AND posted_at IS NULL)"
            " OR (status = 'posted' AND number IS NOT NULL AND posted_at IS NOT NULL)",
            name="posted_numbered"),
        Index("ix_journal_entries_tenant_id_entry_date", "tenant_id", "entry_date"),
        Index("ix_journal_entries_tenant_id_source_type_source_id", "tenant_id", "source_type",
              "source_id"),
        {"schema": "ledger"},
    )

    number: Mapped[str | None] = mapped_column(String(30))
    entry_date: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(500), server_default="")
    status: Mapped[str] = mapped_column(String(10), server_default="draft")
    posted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    posted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    reverses_id: Mapped[uuid.UUID | None]
    # The business document that caused the entry ("inventory.stock_move", id).
    source_type: Mapped[str | None] = mapped_column(String(60))
    source_id: Mapped[uuid.UUID | None]


class JournalLine(TenantScoped, Base):
    """One side of an entry: the amount in its own currency and in base currency."""

    __tablename__ = "journal_lines"
    __table_args__ = (
        UniqueConstraint("tenant_id", "entry_id", "line_no"),
        ForeignKeyConstraint(["tenant_id", "entry_id"],
                             ["ledger.journal_entries.tenant_id", "ledger.journal_entries.id"]),
        ForeignKeyConstraint(["tenant_id", "account_id"],
                             ["ledger.accounts.tenant_id", "ledger.accounts.id"]),
        CheckConstraint("debit >= 0 AND credit >= 0 AND base_debit >= 0 AND base_credit >= 0",
                        name="amounts_non_negative"),
        CheckConstraint("(debit = 0) <> (credit = 0)", name="debit_xor_credit"),
        CheckConstraint("(debit = 0) = (base_debit = 0) AND (credit = 0) = (base_credit = 0)",
                        name="base_same_side"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("rate > 0", name="rate_positive"),
        CheckConstraint("line_no > 0", name="line_no_positive"),
        Index("ix_journal_lines_tenant_id_account_id_entry_id", "tenant_id", "account_id",
              "entry_id"),
        {"schema": "ledger"},
    )

    entry_id: Mapped[uuid.UUID]
    line_no: Mapped[int]
    account_id: Mapped[uuid.UUID]
    description: Mapped[str] = mapped_column(String(500), server_default="")
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Rate)
    debit: Mapped[Decimal] = mapped_column(Numeric(19, 4), server_default=text("0"))
    credit: Mapped[Decimal] = mapped_column(Numeric(19, 4), server_default=text("0"))
    base_debit: Mapped[Decimal] = mapped_column(Numeric(19, 4), server_default=text("0"))
    base_credit: Mapped[Decimal] = mapped_column(Numeric(19, 4), server_default=text("0"))
    # Optional counterparty (customer, supplier, employee), kept loose on purpose:
    # it may live in another domain's schema.
    partner_type: Mapped[str | None] = mapped_column(String(40))
    partner_id: Mapped[uuid.UUID | None]
