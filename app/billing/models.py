"""Schema ``billing``: invoices with their tax lines, credit notes, payments and
their allocations.

One invoice per delivery (``UNIQUE (tenant_id, delivery_id)``): a partial delivery
is invoiced when it leaves, so what the customer owes always matches what they
received. An invoice's open balance is ``total - amount_paid - amount_credited``;
its status follows from it (unpaid, partially paid, paid) unless it is void (fully
credited). A payment's ``allocated`` never exceeds its amount; what is left is the
customer's credit, kept on the receivables account until allocated.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
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
from app.sales.models import LineAmounts
from tenants.models import TenantScoped

Money = Numeric(19, 4)
Percent = Numeric(7, 4)
Rate = Numeric(20, 10)

INVOICE_LABELS = {"unpaid": "Unpaid", "partially_paid": "Partially paid", "paid": "Paid",
                  "void": "Void"}


def _fk(column: str, target: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"])


class Invoice(TenantScoped, Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        UniqueConstraint("tenant_id", "delivery_id"),
        _fk("account_id", "crm.accounts"),
        _fk("sales_order_id", "sales.sales_orders"),
        _fk("delivery_id", "sales.deliveries"),
        _fk("entry_id", "ledger.journal_entries"),
        CheckConstraint("status IN ('unpaid', 'partially_paid', 'paid', 'void')",
                        name="status_known"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("rate > 0", name="rate_positive"),
        CheckConstraint("total = subtotal + tax_total", name="totals"),
        CheckConstraint("amount_paid >= 0 AND amount_credited >= 0"
                        " AND amount_paid + amount_credited <= total", name="settled_range"),
        CheckConstraint("due_date >= invoice_date", name="due_after_invoice"),
        Index("ix_invoices_tenant_id_account_id_status", "tenant_id", "account_id", "status"),
        Index("ix_invoices_tenant_id_sales_order_id", "tenant_id", "sales_order_id"),
        {"schema": "billing"},
    )

    number: Mapped[str] = mapped_column(String(30))
    account_id: Mapped[uuid.UUID]
    sales_order_id: Mapped[uuid.UUID]
    delivery_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(16), server_default="unpaid")
    invoice_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Rate)
    subtotal: Mapped[Decimal] = mapped_column(Money)
    tax_total: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    amount_paid: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    amount_credited: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    entry_id: Mapped[uuid.UUID]
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))

    @property
    def open_amount(self) -> Decimal:
        return self.total - self.amount_paid - self.amount_credited

    @property
    def status_label(self) -> str:
        return INVOICE_LABELS[self.status]


class InvoiceLine(LineAmounts, TenantScoped, Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        UniqueConstraint("tenant_id", "invoice_id", "line_no"),
        _fk("invoice_id", "billing.invoices"),
        _fk("product_id", "inventory.products"),
        _fk("order_line_id", "sales.sales_order_lines"),
        CheckConstraint("quantity > 0 AND unit_price >= 0", name="amounts"),
        {"schema": "billing"},
    )

    invoice_id: Mapped[uuid.UUID]
    order_line_id: Mapped[uuid.UUID]


class InvoiceTax(TenantScoped, Base):
    """One tax line per rate: the taxable base and the tax (sum of the lines' rounded
    taxes, so the tax lines add up to the invoice's tax total exactly)."""

    __tablename__ = "invoice_taxes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "invoice_id", "tax_rate"),
        _fk("invoice_id", "billing.invoices"),
        {"schema": "billing"},
    )

    invoice_id: Mapped[uuid.UUID]
    tax_rate: Mapped[Decimal] = mapped_column(Percent)
    base_amount: Mapped[Decimal] = mapped_column(Money)
    tax_amount: Mapped[Decimal] = mapped_column(Money)


class CreditNote(TenantScoped, Base):
    """Cancels an invoice's open balance by reversing its ledger entry."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        UniqueConstraint("tenant_id", "invoice_id"),
        _fk("invoice_id", "billing.invoices"),
        _fk("account_id", "crm.accounts"),
        _fk("entry_id", "ledger.journal_entries"),
        CheckConstraint("total > 0", name="total_positive"),
        {"schema": "billing"},
    )

    number: Mapped[str] = mapped_column(String(30))
    invoice_id: Mapped[uuid.UUID]
    account_id: Mapped[uuid.UUID]
    credit_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(Money)
    tax_total: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(Text, server_default="")
    entry_id: Mapped[uuid.UUID]
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))


class Payment(TenantScoped, Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        _fk("account_id", "crm.accounts"),
        _fk("entry_id", "ledger.journal_entries"),
        CheckConstraint("amount > 0 AND allocated BETWEEN 0 AND amount", name="amounts"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("rate > 0", name="rate_positive"),
        Index("ix_payments_tenant_id_account_id", "tenant_id", "account_id"),
        {"schema": "billing"},
    )

    number: Mapped[str] = mapped_column(String(30))
    account_id: Mapped[uuid.UUID]
    received_on: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Rate)
    amount: Mapped[Decimal] = mapped_column(Money)
    allocated: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    reference: Mapped[str] = mapped_column(String(100), server_default="")
    entry_id: Mapped[uuid.UUID]
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))

    @property
    def unallocated(self) -> Decimal:
        return self.amount - self.allocated


class PaymentAllocation(TenantScoped, Base):
    __tablename__ = "payment_allocations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "payment_id", "invoice_id"),
        _fk("payment_id", "billing.payments"),
        _fk("invoice_id", "billing.invoices"),
        _fk("entry_id", "ledger.journal_entries"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payment_allocations_tenant_id_invoice_id", "tenant_id", "invoice_id"),
        {"schema": "billing"},
    )

    payment_id: Mapped[uuid.UUID]
    invoice_id: Mapped[uuid.UUID]
    amount: Mapped[Decimal] = mapped_column(Money)
    # Realised exchange difference (invoice rate vs payment rate), when any.
    entry_id: Mapped[uuid.UUID | None]
    note: Mapped[str] = mapped_column(Text, server_default="")
