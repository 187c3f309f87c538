"""Schema ``sales``: quotes, sales orders with their stock reservations, deliveries.

A quote goes Draft -> Sent -> Accepted / Rejected / Expired. A sales order is made
from an accepted quote or a won deal (at most one order per quote and per deal: the
natural keys the chain's consumers rely on) and goes Draft -> Confirmed (credit
checked, every line reserved) -> Partially delivered -> Delivered -> Invoiced; when
confirmation is refused it waits as On hold (credit limit) or Waiting for stock,
with nothing reserved, until a person retries it.
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

Qty = Numeric(19, 4)
Money = Numeric(19, 4)
Price = Numeric(19, 6)
Percent = Numeric(7, 4)

QUOTE_STATUSES = ("draft", "sent", "accepted", "rejected", "expired")
QUOTE_LABELS = {"draft": "Draft", "sent": "Sent", "accepted": "Accepted",
                "rejected": "Rejected", "expired": "Expired"}
ORDER_STATUSES = ("draft", "on_hold", "waiting_for_stock", "confirmed", "partially_delivered",
                  "delivered", "invoiced", "cancelled")
ORDER_LABELS = {"draft": "Draft", "on_hold": "On hold (credit limit)",
                "waiting_for_stock": "Waiting for stock", "confirmed": "Confirmed",
                "partially_delivered": "Partially delivered", "delivered": "Delivered",
                "invoiced": "Invoiced", "cancelled": "Cancelled"}


def _fk(column: str, target: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"])


class LineAmounts:
    """Columns every priced line carries (quote, order and invoice lines)."""

    line_no: Mapped[int]
    product_id: Mapped[uuid.UUID]
    description: Mapped[str] = mapped_column(String(500), server_default="")
    quantity: Mapped[Decimal] = mapped_column(Qty)
    unit_price: Mapped[Decimal] = mapped_column(Price)
    discount_pct: Mapped[Decimal] = mapped_column(Percent, server_default=text("0"))
    tax_rate: Mapped[Decimal] = mapped_column(Percent, server_default=text("0"))
    net_amount: Mapped[Decimal] = mapped_column(Money)
    tax_amount: Mapped[Decimal] = mapped_column(Money)


class Quote(TenantScoped, Base):
    __tablename__ = "quotes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        _fk("account_id", "crm.accounts"),
        CheckConstraint("status IN ('draft', 'sent', 'accepted', 'rejected', 'expired')",
                        name="status_known"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("total = subtotal + tax_total", name="totals"),
        CheckConstraint("valid_until >= quote_date", name="valid_after_date"),
        Index("ix_quotes_tenant_id_account_id", "tenant_id", "account_id"),
        Index("ix_quotes_tenant_id_source_deal_id", "tenant_id", "source_deal_id"),
        {"schema": "sales"},
    )

    number: Mapped[str] = mapped_column(String(30))
    account_id: Mapped[uuid.UUID]
    # The CRM deal this quote belongs to. No foreign key yet: deals arrive with the
    # pipeline module, whose migration adds the constraint.
    source_deal_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(12), server_default="draft")
    currency: Mapped[str] = mapped_column(String(3))
    quote_date: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, server_default="")
    subtotal: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    tax_total: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    total: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def status_label(self) -> str:
        return QUOTE_LABELS[self.status]


class QuoteLine(LineAmounts, TenantScoped, Base):
    __tablename__ = "quote_lines"
    __table_args__ = (
        UniqueConstraint("tenant_id", "quote_id", "line_no"),
        _fk("quote_id", "sales.quotes"),
        _fk("product_id", "inventory.products"),
        CheckConstraint("quantity > 0 AND unit_price >= 0", name="amounts"),
        CheckConstraint("discount_pct BETWEEN 0 AND 100 AND tax_rate BETWEEN 0 AND 100",
                        name="rates"),
        {"schema": "sales"},
    )

    quote_id: Mapped[uuid.UUID]


class SalesOrder(TenantScoped, Base):
    __tablename__ = "sales_orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        UniqueConstraint("tenant_id", "source_quote_id"),
        UniqueConstraint("tenant_id", "source_deal_id"),
        _fk("account_id", "crm.accounts"),
        _fk("source_quote_id", "sales.quotes"),
        CheckConstraint("status IN ('draft', 'on_hold', 'waiting_for_stock', 'confirmed', "
                        "'partially_delivered', 'delivered', 'invoiced', 'cancelled')",
                        name="status_known"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("total = subtotal + tax_total", name="totals"),
        Index("ix_sales_orders_tenant_id_account_id", "tenant_id", "account_id"),
        Index("ix_sales_orders_tenant_id_status", "tenant_id", "status"),
        {"schema": "sales"},
    )

    number: Mapped[str] = mapped_column(String(30))
    account_id: Mapped[uuid.UUID]
    source_quote_id: Mapped[uuid.UUID | None]
    source_deal_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(20), server_default="draft")
    # Why the order waits (credit limit, the SKU short of stock), for the order page.
    hold_reason: Mapped[str] = mapped_column(Text, server_default="")
    currency: Mapped[str] = mapped_column(String(3))
    order_date: Mapped[dt.date] = mapped_column(Date)
    subtotal: Mapped[Decimal] = mapped_column(Money)
    tax_total: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))

    @property
    def status_label(self) -> str:
        return ORDER_LABELS[self.status]


class SalesOrderLine(LineAmounts, TenantScoped, Base):
    __tablename__ = "sales_order_lines"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id", "line_no"),
        _fk("order_id", "sales.sales_orders"),
        _fk("product_id", "inventory.products"),
        _fk("warehouse_id", "inventory.warehouses"),
        _fk("reservation_id", "inventory.reservations"),
        CheckConstraint("quantity > 0 AND unit_price >= 0", name="amounts"),
        CheckConstraint("delivered_qty BETWEEN 0 AND quantity", name="delivered_range"),
        CheckConstraint("discount_pct BETWEEN 0 AND 100 AND tax_rate BETWEEN 0 AND 100",
                        name="rates"),
        Index("ix_sales_order_lines_tenant_id_warehouse_id", "tenant_id", "warehouse_id"),
        {"schema": "sales"},
    )

    order_id: Mapped[uuid.UUID]
    warehouse_id: Mapped[uuid.UUID]
    reservation_id: Mapped[uuid.UUID | None]
    delivered_qty: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))

    @property
    def open_quantity(self) -> Decimal:
        return self.quantity - self.delivered_qty


class Delivery(TenantScoped, Base):
    """Goods that left a warehouse for an order (possibly part of it)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        _fk("order_id", "sales.sales_orders"),
        _fk("warehouse_id", "inventory.warehouses"),
        _fk("entry_id", "ledger.journal_entries"),
        Index("ix_deliveries_tenant_id_order_id", "tenant_id", "order_id"),
        {"schema": "sales"},
    )

    number: Mapped[str] = mapped_column(String(30))
    order_id: Mapped[uuid.UUID]
    warehouse_id: Mapped[uuid.UUID]
    delivered_on: Mapped[dt.date] = mapped_column(Date)
    # The cost-of-goods-sold entry the inventory service posted.
    entry_id: Mapped[uuid.UUID | None]
    automatic: Mapped[bool] = mapped_column(server_default=text("false"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))


class DeliveryLine(TenantScoped, Base):
    __tablename__ = "delivery_lines"
    __table_args__ = (
        _fk("delivery_id", "sales.deliveries"),
        _fk("order_line_id", "sales.sales_order_lines"),
        _fk("move_id", "inventory.stock_moves"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_delivery_lines_tenant_id_delivery_id", "tenant_id", "delivery_id"),
        {"schema": "sales"},
    )

    delivery_id: Mapped[uuid.UUID]
    order_line_id: Mapped[uuid.UUID]
    quantity: Mapped[Decimal] = mapped_column(Qty)
    move_id: Mapped[uuid.UUID]
