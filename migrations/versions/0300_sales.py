"""Sales: quotes and their lines, sales orders with per-line warehouse and stock
reservation, deliveries and their lines.

One order per accepted quote and one per won deal (``UNIQUE (tenant_id,
source_quote_id)``, ``UNIQUE (tenant_id, source_deal_id)``): the natural keys that
make the quote-to-cash consumers idempotent behind their inbox. ``source_deal_id``
has no foreign key yet; the CRM pipeline's migration adds it with the deals table.

Revision ID: 0300_sales
Revises: 0502_crm_pipeline
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0300_sales"
down_revision: str | Sequence[str] | None = "0502_crm_pipeline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QTY = sa.Numeric(19, 4)
MONEY = sa.Numeric(19, 4)
PRICE = sa.Numeric(19, 6)
PERCENT = sa.Numeric(7, 4)
TABLES = ("sales.quotes", "sales.quote_lines", "sales.sales_orders",
          "sales.sales_order_lines", "sales.deliveries", "sales.delivery_lines")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    name = target.rpartition(".")[2]
    return sa.ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"],
                                   name=f"fk_{table}_tenant_id_{column}_{name}")


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["core.users.id"],
                                   name=f"fk_{table}_{column}_users")


def line_columns(table: str) -> list:
    """The priced-line columns shared by quote, order and invoice lines."""
    return [
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("description", sa.String(500), server_default="", nullable=False),
        sa.Column("quantity", QTY, nullable=False),
        sa.Column("unit_price", PRICE, nullable=False),
        sa.Column("discount_pct", PERCENT, server_default="0", nullable=False),
        sa.Column("tax_rate", PERCENT, server_default="0", nullable=False),
        sa.Column("net_amount", MONEY, nullable=False),
        sa.Column("tax_amount", MONEY, nullable=False),
        _fk(table, "product_id", "inventory.products"),
        sa.CheckConstraint("quantity > 0 AND unit_price >= 0", name=f"ck_{table}_amounts"),
        sa.CheckConstraint("discount_pct BETWEEN 0 AND 100 AND tax_rate BETWEEN 0 AND 100",
                           name=f"ck_{table}_rates"),
    ]


def upgrade() -> None:
    op.create_table(
        "quotes",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("source_deal_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(12), server_default="draft", nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("quote_date", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("subtotal", MONEY, server_default="0", nullable=False),
        sa.Column("tax_total", MONEY, server_default="0", nullable=False),
        sa.Column("total", MONEY, server_default="0", nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_quotes"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_quotes_tenant_id_number"),
        _fk("quotes", "account_id", "crm.accounts"),
        _user_fk("quotes", "created_by"),
        tenant_fk("quotes"),
        sa.CheckConstraint("status IN ('draft', 'sent', 'accepted', 'rejected', 'expired')",
                           name="ck_quotes_status_known"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_quotes_currency_iso"),
        sa.CheckConstraint("total = subtotal + tax_total", name="ck_quotes_totals"),
        sa.CheckConstraint("valid_until >= quote_date", name="ck_quotes_valid_after_date"),
        schema="sales",
    )
    op.create_index("ix_quotes_tenant_id_account_id", "quotes", ["tenant_id", "account_id"],
                    schema="sales")
    op.create_index("ix_quotes_tenant_id_source_deal_id", "quotes",
                    ["tenant_id", "source_deal_id"], schema="sales")

    op.create_table(
        "quote_lines",
        *tenant_key_columns(),
        sa.Column("quote_id", sa.Uuid(), nullable=False),
        *line_columns("quote_lines"),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_quote_lines"),
        sa.UniqueConstraint("tenant_id", "quote_id", "line_no",
                            name="uq_quote_lines_tenant_id_quote_id_line_no"),
        _fk("quote_lines", "quote_id", "sales.quotes"),
        tenant_fk("quote_lines"),
        schema="sales",
    )

    op.create_table(
        "sales_orders",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("source_quote_id", sa.Uuid(), nullable=True),
        sa.Column("source_deal_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(20), server_default="draft", nullable=False),
        sa.Column("hold_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("order_date", sa.Date(), nullable=False),
        sa.Column("subtotal", MONEY, nullable=False),
        sa.Column("tax_total", MONEY, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_sales_orders"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_sales_orders_tenant_id_number"),
        sa.UniqueConstraint("tenant_id", "source_quote_id",
                            name="uq_sales_orders_tenant_id_source_quote_id"),
        sa.UniqueConstraint("tenant_id", "source_deal_id",
                            name="uq_sales_orders_tenant_id_source_deal_id"),
        _fk("sales_orders", "account_id", "crm.accounts"),
        _fk("sales_orders", "source_quote_id", "sales.quotes"),
        _user_fk("sales_orders", "created_by"),
        tenant_fk("sales_orders"),
        sa.CheckConstraint("status IN ('draft', 'on_hold', 'waiting_for_stock', 'confirmed', "
                           "'partially_delivered', 'delivered', 'invoiced', 'cancelled')",
                           name="ck_sales_orders_status_known"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_sales_orders_currency_iso"),
        sa.CheckConstraint("total = subtotal + tax_total", name="ck_sales_orders_totals"),
        schema="sales",
    )
    op.create_index("ix_sales_orders_tenant_id_account_id", "sales_orders",
                    ["tenant_id", "account_id"], schema="sales")
    op.create_index("ix_sales_orders_tenant_id_status", "sales_orders",
                    ["tenant_id", "status"], schema="sales")

    op.create_table(
        "sales_order_lines",
        *tenant_key_columns(),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        *line_columns("sales_order_lines"),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("reservation_id", sa.Uuid(), nullable=True),
        sa.Column("delivered_qty", QTY, server_default="0", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_sales_order_lines"),
        sa.UniqueConstraint("tenant_id", "order_id", "line_no",
                            name="uq_sales_order_lines_tenant_id_order_id_line_no"),
        _fk("sales_order_lines", "order_id", "sales.sales_orders"),
        _fk("sales_order_lines", "warehouse_id", "inventory.warehouses"),
        _fk("sales_order_lines", "reservation_id", "inventory.reservations"),
        tenant_fk("sales_order_lines"),
        sa.CheckConstraint("delivered_qty BETWEEN 0 AND quantity",
                           name="ck_sales_order_lines_delivered_range"),
        schema="sales",
    )
    op.create_index("ix_sales_order_lines_tenant_id_warehouse_id", "sales_order_lines",
                    ["tenant_id", "warehouse_id"], schema="sales")

    op.create_table(
        "deliveries",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("delivered_on", sa.Date(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("automatic", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_deliveries"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_deliveries_tenant_id_number"),
        _fk("deliveries", "order_id", "sales.sales_orders"),
        _fk("deliveries", "warehouse_id", "inventory.warehouses"),
        _fk("deliveries", "entry_id", "ledger.journal_entries"),
        _user_fk("deliveries", "created_by"),
        tenant_fk("deliveries"),
        schema="sales",
    )
    op.create_index("ix_deliveries_tenant_id_order_id", "deliveries", ["tenant_id", "order_id"],
                    schema="sales")

    op.create_table(
        "delivery_lines",
        *tenant_key_columns(),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("order_line_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", QTY, nullable=False),
        sa.Column("move_id", sa.Uuid(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_delivery_lines"),
        _fk("delivery_lines", "delivery_id", "sales.deliveries"),
        _fk("delivery_lines", "order_line_id", "sales.sales_order_lines"),
        _fk("delivery_lines", "move_id", "inventory.stock_moves"),
        tenant_fk("delivery_lines"),
        sa.CheckConstraint("quantity > 0", name="ck_delivery_lines_quantity_positive"),
        schema="sales",
    )
    op.create_index("ix_delivery_lines_tenant_id_delivery_id", "delivery_lines",
                    ["tenant_id", "delivery_id"], schema="sales")

    for table in TABLES:
        enable_tenant_rls(op, table)
        enable_audit(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        disable_audit(op, table)
    for table in reversed(TABLES):
        op.drop_table(table.rpartition(".")[2], schema="sales")
