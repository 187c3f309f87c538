"""Schema ``inventory``: warehouses, bins, products, stock and its move ledger.

Stock is kept at two grains, both changed only by ``services.apply_moves``:

* ``StockLevel`` per product and warehouse: on hand, reserved, value (moving average
  cost = value / on hand) and ``last_seq``, the number of its latest move;
* ``ProductStock`` per product: the totals over all warehouses, with the product's
  reorder level mirrored beside them so "low stock" is one partial index.

``StockMove`` rows are append-only (the app role has no UPDATE or DELETE) and carry
the running balance after each move, so a level as of any moment is one index probe.
Migration ``0201_inventory`` has the triggers that keep all three consistent.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from tenants.models import TenantKey, TenantScoped

Qty = Numeric(19, 4)
Money = Numeric(19, 4)
UnitCost = Numeric(19, 6)

MOVE_KINDS = ("receipt", "delivery", "transfer", "adjustment", "return")


def _fk(column: str, target: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"])


class Warehouse(TenantScoped, Base):
    __tablename__ = "warehouses"
    __table_args__ = (UniqueConstraint("tenant_id", "code"), {"schema": "inventory"})

    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text, server_default="")
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))


class Bin(TenantScoped, Base):
    """A place inside a warehouse; moves may say which bin they used."""

    __tablename__ = "bins"
    __table_args__ = (
        UniqueConstraint("tenant_id", "warehouse_id", "code"),
        _fk("warehouse_id", "inventory.warehouses"),
        {"schema": "inventory"},
    )

    warehouse_id: Mapped[uuid.UUID]
    code: Mapped[str] = mapped_column(String(30))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))


class Product(TenantScoped, Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sku"),
        _fk("preferred_supplier_id", "purchasing.suppliers"),
        CheckConstraint("sku ~ '^[^[:space:]]{1,64}$'", name="sku_no_spaces"),
        CheckConstraint("(sale_price IS NULL) = (sale_currency IS NULL)",
                        name="price_has_currency"),
        CheckConstraint("sale_price IS NULL OR sale_price >= 0", name="sale_price_non_negative"),
        CheckConstraint("sale_currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("reorder_level >= 0 AND reorder_qty >= 0", name="reorder_non_negative"),
        CheckConstraint("jsonb_typeof(name_translations) = 'object'",
                        name="translations_object"),
        CheckConstraint("jsonb_typeof(custom_fields) = 'object'", name="custom_fields_object"),
        Index("ix_products_tenant_id_name", "tenant_id", "name"),
        Index("ix_products_tenant_id_category", "tenant_id", "category"),
        {"schema": "inventory"},
    )

    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    # {"fr": "Vis à bois", "de": "Holzschraube"}: shown when the reader's language matches.
    name_translations: Mapped[dict[str, str]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb"))
    description: Mapped[str] = mapped_column(Text, server_default="")
    uom: Mapped[str] = mapped_column(String(20), server_default="unit")
    category: Mapped[str] = mapped_column(String(100), server_default="")
    sale_price: Mapped[Decimal | None] = mapped_column(Money)
    sale_currency: Mapped[str | None] = mapped_column(String(3))
    reorder_level: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))
    reorder_qty: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))
    preferred_supplier_id: Mapped[uuid.UUID | None]
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONB,
                                                          server_default=text("'{}'::jsonb"))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))

    def display_name(self, lang: str | None = None) -> str:
        if lang:
            names = self.name_translations or {}
            return names.get(lang) or names.get(lang.split("-")[0]) or self.name
        return self.name


class StockLevel(TenantScoped, Base):
    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("tenant_id", "product_id", "warehouse_id"),
        _fk("product_id", "inventory.products"),
        _fk("warehouse_id", "inventory.warehouses"),
        CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
        CheckConstraint("reserved BETWEEN 0 AND on_hand", name="reserved_within_on_hand"),
        CheckConstraint("value >= 0 AND (on_hand > 0 OR value = 0)", name="value_consistent"),
        Index("ix_stock_levels_tenant_id_warehouse_id", "tenant_id", "warehouse_id"),
        {"schema": "inventory"},
    )

    product_id: Mapped[uuid.UUID]
    warehouse_id: Mapped[uuid.UUID]
    on_hand: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))
    reserved: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))
    available: Mapped[Decimal] = mapped_column(Qty, Computed("on_hand - reserved",
                                                             persisted=True))
    value: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class ProductStock(TenantScoped, Base):
    __tablename__ = "product_stock"
    __table_args__ = (
        UniqueConstraint("tenant_id", "product_id"),
        _fk("product_id", "inventory.products"),
        CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
        CheckConstraint("reserved BETWEEN 0 AND on_hand", name="reserved_within_on_hand"),
        Index("ix_product_stock_tenant_id_low", "tenant_id", "product_id",
              postgresql_where=text("is_low")),
        {"schema": "inventory"},
    )

    product_id: Mapped[uuid.UUID]
    on_hand: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))
    reserved: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))
    available: Mapped[Decimal] = mapped_column(Qty, Computed("on_hand - reserved",
                                                             persisted=True))
    reorder_level: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))
    # A stored column (not just the expression) so the planner has statistics for it:
    # see migration 0206.
    is_low: Mapped[bool] = mapped_column(Computed("on_hand - reserved < reorder_level",
                                                  persisted=True))


class StockMove(TenantKey, Base):
    """One change of stock. Quantity and value are signed (+ in, - out); value is in
    base currency, rounded to its minor unit, so the inventory account in the ledger
    and the sum of move values agree to the cent."""

    __tablename__ = "stock_moves"
    __table_args__ = (
        UniqueConstraint("tenant_id", "product_id", "warehouse_id", "seq"),
        _fk("product_id", "inventory.products"),
        _fk("warehouse_id", "inventory.warehouses"),
        _fk("bin_id", "inventory.bins"),
        CheckConstraint("kind IN ('receipt', 'delivery', 'transfer', 'adjustment', 'return')",
                        name="kind_known"),
        CheckConstraint(
            "quantity <> 0 AND (kind IN ('transfer', 'adjustment')"
            " OR (kind IN ('receipt', 'return') AND quantity > 0)"
            " OR (kind = 'delivery' AND quantity < 0))", name="quantity_sign"),
        CheckConstraint("value = 0 OR sign(value) = sign(quantity)", name="value_sign"),
        CheckConstraint("unit_cost >= 0", name="unit_cost_non_negative"),
        CheckConstraint("seq > 0 AND on_hand_after >= 0 AND value_after >= 0",
                        name="running_non_negative"),
        CheckConstraint("(kind = 'adjustment') = (reason IS NOT NULL)",
                        name="adjustment_reason"),
        CheckConstraint("(kind = 'transfer') = (transfer_id IS NOT NULL)",
                        name="transfer_paired"),
        Index("ix_stock_moves_tenant_id_product_id_warehouse_id_moved_at", "tenant_id",
              "product_id", "warehouse_id", "moved_at"),
        Index("ix_stock_moves_tenant_id_moved_at", "tenant_id", "moved_at"),
        {"schema": "inventory"},
    )
    # moved_at comes from the database clock: fetch it with the INSERT's RETURNING.
    __mapper_args__ = {"eager_defaults": True}

    product_id: Mapped[uuid.UUID]
    warehouse_id: Mapped[uuid.UUID]
    bin_id: Mapped[uuid.UUID | None]
    kind: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[Decimal] = mapped_column(Qty)
    unit_cost: Mapped[Decimal] = mapped_column(UnitCost)
    value: Mapped[Decimal] = mapped_column(Money)
    seq: Mapped[int] = mapped_column(BigInteger)
    on_hand_after: Mapped[Decimal] = mapped_column(Qty)
    value_after: Mapped[Decimal] = mapped_column(Money)
    # The database clock, read under the level's row lock: never earlier than the
    # previous move of the same level.
    moved_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()"))
    reason: Mapped[str | None] = mapped_column(String(30))
    note: Mapped[str] = mapped_column(String(500), server_default="")
    source_type: Mapped[str | None] = mapped_column(String(60))
    source_id: Mapped[uuid.UUID | None]
    source_ref: Mapped[str] = mapped_column(String(60), server_default="")
    transfer_id: Mapped[uuid.UUID | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))


class Reservation(TenantScoped, Base):
    """Stock set aside for a document (a sales order) until delivered or released."""

    __tablename__ = "reservations"
    __table_args__ = (
        _fk("product_id", "inventory.products"),
        _fk("warehouse_id", "inventory.warehouses"),
        CheckConstraint("quantity > 0 AND fulfilled BETWEEN 0 AND quantity", name="quantities"),
        CheckConstraint("status IN ('active', 'fulfilled', 'released')", name="status_known"),
        Index("ix_reservations_tenant_id_product_id_status", "tenant_id", "product_id",
              "status"),
        {"schema": "inventory"},
    )

    product_id: Mapped[uuid.UUID]
    warehouse_id: Mapped[uuid.UUID]
    quantity: Mapped[Decimal] = mapped_column(Qty)
    fulfilled: Mapped[Decimal] = mapped_column(Qty, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(12), server_default="active")
    source_type: Mapped[str | None] = mapped_column(String(60))
    source_id: Mapped[uuid.UUID | None]
    source_ref: Mapped[str] = mapped_column(String(60), server_default="")

    @property
    def open_quantity(self) -> Decimal:
        return self.quantity - self.fulfilled


class ReorderEvent(TenantScoped, Base):
    """Available stock of a product fell below its reorder level: a purchase
    suggestion until someone orders or dismisses it. Also published to the outbox
    as ``inventory.reorder_needed``."""

    __tablename__ = "reorder_events"
    __table_args__ = (
        _fk("product_id", "inventory.products"),
        CheckConstraint("status IN ('open', 'ordered', 'dismissed')", name="status_known"),
        Index("ix_reorder_events_tenant_id_status_created_at", "tenant_id", "status",
              "created_at"),
        {"schema": "inventory"},
    )

    product_id: Mapped[uuid.UUID]
    available: Mapped[Decimal] = mapped_column(Qty)
    reorder_level: Mapped[Decimal] = mapped_column(Qty)
    reorder_qty: Mapped[Decimal] = mapped_column(Qty)
    preferred_supplier_id: Mapped[uuid.UUID | None]
    move_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(12), server_default="open")
