"""Schema ``purchasing``: suppliers, purchase orders, goods receipts, supplier bills.

A purchase order goes Pending -> Approved -> (Shipped) -> Partially received ->
Received, or to Cancelled before anything arrives. Migration ``0202_purchasing``
has triggers that refuse any other transition and freeze a PO's terms and lines
once it is approved. Receipts raise stock through the inventory service and post
inventory against goods-received-not-invoiced; a bill clears GRNI for the receipt
lines it matches and credits accounts payable.
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
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from tenants.models import TenantScoped

Qty = Numeric(19, 4)
Money = Numeric(19, 4)
UnitCost = Numeric(19, 6)
Rate = Numeric(20, 10)

PO_STATUSES = ("pending", "approved", "shipped", "partially_received", "received", "cancelled")
STATUS_LABELS = {"pending": "Pending", "approved": "Approved", "shipped": "Shipped",
                 "partially_received": "Partially received", "received": "Received",
                 "cancelled": "Cancelled"}


def _fk(column: str, target: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"])


class Supplier(TenantScoped, Base):
    __tablename__ = "suppliers"
    __table_args__ = (
        Index("uq_suppliers_tenant_id_name", "tenant_id", func.lower(text("name")), unique=True),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("payment_terms_days BETWEEN 0 AND 365", name="payment_terms_range"),
        {"schema": "purchasing"},
    )

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(50), server_default="")
    address: Mapped[str] = mapped_column(Text, server_default="")
    tax_id: Mapped[str] = mapped_column(String(50), server_default="")
    currency: Mapped[str] = mapped_column(String(3))
    payment_terms_days: Mapped[int] = mapped_column(server_default=text("30"))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))


class PurchaseOrder(TenantScoped, Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        _fk("supplier_id", "purchasing.suppliers"),
        _fk("warehouse_id", "inventory.warehouses"),
        CheckConstraint("status IN ('pending', 'approved', 'shipped', 'partially_received', "
                        "'received', 'cancelled')", name="status_known"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("status IN ('pending', 'cancelled') OR approved_at IS NOT NULL",
                        name="approved_stamped"),
        CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)",
                        name="cancelled_stamped"),
        Index("ix_purchase_orders_tenant_id_status_order_date", "tenant_id", "status",
              "order_date"),
        {"schema": "purchasing"},
    )

    number: Mapped[str] = mapped_column(String(30))
    supplier_id: Mapped[uuid.UUID]
    warehouse_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    currency: Mapped[str] = mapped_column(String(3))
    order_date: Mapped[dt.date] = mapped_column(Date)
    expected_date: Mapped[dt.date | None] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    approved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


class PurchaseOrderLine(TenantScoped, Base):
    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        UniqueConstraint("tenant_id", "po_id", "line_no"),
        _fk("po_id", "purchasing.purchase_orders"),
        _fk("product_id", "inventory.products"),
        CheckConstraint("quantity > 0 AND quantity_received BETWEEN 0 AND quantity",
                        name="quantities"),
        CheckConstraint("unit_cost >= 0", name="unit_cost_non_negative"),
        {"schema": "purchasing"},
    )

    po_id: Mapped[uuid.UUID]
    line_no: Mapped[int]
    product_id: Mapped[uuid.UUID]
    quantity: Mapped[Decimal] = mapped_column(Qty)
    unit_cost: Mapped[Decimal] = mapped_column(UnitCost)
    quantity_received: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))

    @property
    def open_quantity(self) -> Decimal:
        return self.quantity - self.quantity_received


class Receipt(TenantScoped, Base):
    """Goods received against a purchase order (possibly part of it)."""

    __tablename__ = "receipts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        _fk("po_id", "purchasing.purchase_orders"),
        _fk("warehouse_id", "inventory.warehouses"),
        _fk("entry_id", "ledger.journal_entries"),
        CheckConstraint("rate > 0", name="rate_positive"),
        Index("ix_receipts_tenant_id_po_id", "tenant_id", "po_id"),
        {"schema": "purchasing"},
    )

    number: Mapped[str] = mapped_column(String(30))
    po_id: Mapped[uuid.UUID]
    warehouse_id: Mapped[uuid.UUID]
    received_on: Mapped[dt.date] = mapped_column(Date)
    # PO currency -> base currency on the receipt date: what the goods cost in stock.
    rate: Mapped[Decimal] = mapped_column(Rate)
    note: Mapped[str] = mapped_column(String(500), server_default="")
    entry_id: Mapped[uuid.UUID | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))


class ReceiptLine(TenantScoped, Base):
    __tablename__ = "receipt_lines"
    __table_args__ = (
        _fk("receipt_id", "purchasing.receipts"),
        _fk("po_line_id", "purchasing.purchase_order_lines"),
        _fk("product_id", "inventory.products"),
        _fk("move_id", "inventory.stock_moves"),
        CheckConstraint("quantity > 0 AND quantity_billed BETWEEN 0 AND quantity",
                        name="quantities"),
        CheckConstraint("base_value >= 0 AND billed_base_value BETWEEN 0 AND base_value",
                        name="values"),
        Index("ix_receipt_lines_tenant_id_receipt_id", "tenant_id", "receipt_id"),
        {"schema": "purchasing"},
    )

    receipt_id: Mapped[uuid.UUID]
    po_line_id: Mapped[uuid.UUID]
    product_id: Mapped[uuid.UUID]
    quantity: Mapped[Decimal] = mapped_column(Qty)
    unit_cost: Mapped[Decimal] = mapped_column(UnitCost)  # PO currency
    base_value: Mapped[Decimal] = mapped_column(Money)  # what went into stock and GRNI
    move_id: Mapped[uuid.UUID]
    quantity_billed: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))
    billed_base_value: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))

    @property
    def open_quantity(self) -> Decimal:
        return self.quantity - self.quantity_billed


class Bill(TenantScoped, Base):
    """A supplier's invoice, matched to receipt lines and posted to payables."""

    __tablename__ = "bills"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        UniqueConstraint("tenant_id", "supplier_id", "supplier_ref"),
        _fk("supplier_id", "purchasing.suppliers"),
        _fk("entry_id", "ledger.journal_entries"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("rate > 0", name="rate_positive"),
        CheckConstraint("subtotal >= 0 AND tax >= 0 AND total = subtotal + tax", name="totals"),
        CheckConstraint("due_date >= bill_date", name="due_after_bill"),
        {"schema": "purchasing"},
    )

    number: Mapped[str] = mapped_column(String(30))
    supplier_id: Mapped[uuid.UUID]
    supplier_ref: Mapped[str] = mapped_column(String(60))
    bill_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Rate)
    subtotal: Mapped[Decimal] = mapped_column(Money)
    tax: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    total: Mapped[Decimal] = mapped_column(Money)
    entry_id: Mapped[uuid.UUID]
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))


class BillLine(TenantScoped, Base):
    __tablename__ = "bill_lines"
    __table_args__ = (
        _fk("bill_id", "purchasing.bills"),
        _fk("receipt_line_id", "purchasing.receipt_lines"),
        CheckConstraint("quantity > 0 AND unit_cost >= 0 AND amount >= 0"
                        " AND cleared_base_value >= 0", name="amounts"),
        Index("ix_bill_lines_tenant_id_bill_id", "tenant_id", "bill_id"),
        {"schema": "purchasing"},
    )

    bill_id: Mapped[uuid.UUID]
    receipt_line_id: Mapped[uuid.UUID]
    quantity: Mapped[Decimal] = mapped_column(Qty)
    unit_cost: Mapped[Decimal] = mapped_column(UnitCost)  # bill currency
    amount: Mapped[Decimal] = mapped_column(Money)  # bill currency
    cleared_base_value: Mapped[Decimal] = mapped_column(Money)  # GRNI taken off
