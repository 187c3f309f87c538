"""Billing: invoices (one per delivery) with lines and tax lines, credit notes,
payments and their allocations to invoices.

Revision ID: 0301_billing
Revises: 0300_sales
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0301_billing"
down_revision: str | Sequence[str] | None = "0300_sales"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QTY = sa.Numeric(19, 4)
MONEY = sa.Numeric(19, 4)
PRICE = sa.Numeric(19, 6)
PERCENT = sa.Numeric(7, 4)
RATE = sa.Numeric(20, 10)
TABLES = ("billing.invoices", "billing.invoice_lines", "billing.invoice_taxes",
          "billing.credit_notes", "billing.payments", "billing.payment_allocations")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    name = target.rpartition(".")[2]
    return sa.ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"],
                                   name=f"fk_{table}_tenant_id_{column}_{name}")


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["created_by"], ["core.users.id"],
                                   name=f"fk_{table}_created_by_users")


def upgrade() -> None:
    op.create_table(
        "invoices",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("sales_order_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), server_default="unpaid", nullable=False),
        sa.Column("invoice_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("subtotal", MONEY, nullable=False),
        sa.Column("tax_total", MONEY, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("amount_paid", MONEY, server_default="0", nullable=False),
        sa.Column("amount_credited", MONEY, server_default="0", nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_invoices"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_invoices_tenant_id_number"),
        sa.UniqueConstraint("tenant_id", "delivery_id", name="uq_invoices_tenant_id_delivery_id"),
        _fk("invoices", "account_id", "crm.accounts"),
        _fk("invoices", "sales_order_id", "sales.sales_orders"),
        _fk("invoices", "delivery_id", "sales.deliveries"),
        _fk("invoices", "entry_id", "ledger.journal_entries"),
        _user_fk("invoices"),
        tenant_fk("invoices"),
        sa.CheckConstraint("status IN ('unpaid', 'partially_paid', 'paid', 'void')",
                           name="ck_invoices_status_known"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_invoices_currency_iso"),
        sa.CheckConstraint("rate > 0", name="ck_invoices_rate_positive"),
        sa.CheckConstraint("total = subtotal + tax_total", name="ck_invoices_totals"),
        sa.CheckConstraint("amount_paid >= 0 AND amount_credited >= 0"
                           " AND amount_paid + amount_credited <= total",
                           name="ck_invoices_settled_range"),
        sa.CheckConstraint("due_date >= invoice_date", name="ck_invoices_due_after_invoice"),
        schema="billing",
    )
    op.create_index("ix_invoices_tenant_id_account_id_status", "invoices",
                    ["tenant_id", "account_id", "status"], schema="billing")
    op.create_index("ix_invoices_tenant_id_sales_order_id", "invoices",
                    ["tenant_id", "sales_order_id"], schema="billing")

    op.create_table(
        "invoice_lines",
        *tenant_key_columns(),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("order_line_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("description", sa.String(500), server_default="", nullable=False),
        sa.Column("quantity", QTY, nullable=False),
        sa.Column("unit_price", PRICE, nullable=False),
        sa.Column("discount_pct", PERCENT, server_default="0", nullable=False),
        sa.Column("tax_rate", PERCENT, server_default="0", nullable=False),
        sa.Column("net_amount", MONEY, nullable=False),
        sa.Column("tax_amount", MONEY, nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_invoice_lines"),
        sa.UniqueConstraint("tenant_id", "invoice_id", "line_no",
                            name="uq_invoice_lines_tenant_id_invoice_id_line_no"),
        _fk("invoice_lines", "invoice_id", "billing.invoices"),
        _fk("invoice_lines", "product_id", "inventory.products"),
        _fk("invoice_lines", "order_line_id", "sales.sales_order_lines"),
        tenant_fk("invoice_lines"),
        sa.CheckConstraint("quantity > 0 AND unit_price >= 0", name="ck_invoice_lines_amounts"),
        schema="billing",
    )

    op.create_table(
        "invoice_taxes",
        *tenant_key_columns(),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("tax_rate", PERCENT, nullable=False),
        sa.Column("base_amount", MONEY, nullable=False),
        sa.Column("tax_amount", MONEY, nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_invoice_taxes"),
        sa.UniqueConstraint("tenant_id", "invoice_id", "tax_rate",
                            name="uq_invoice_taxes_tenant_id_invoice_id_tax_rate"),
        _fk("invoice_taxes", "invoice_id", "billing.invoices"),
        tenant_fk("invoice_taxes"),
        schema="billing",
    )

    op.create_table(
        "credit_notes",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("credit_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subtotal", MONEY, nullable=False),
        sa.Column("tax_total", MONEY, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_credit_notes"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_credit_notes_tenant_id_number"),
        sa.UniqueConstraint("tenant_id", "invoice_id",
                            name="uq_credit_notes_tenant_id_invoice_id"),
        _fk("credit_notes", "invoice_id", "billing.invoices"),
        _fk("credit_notes", "account_id", "crm.accounts"),
        _fk("credit_notes", "entry_id", "ledger.journal_entries"),
        _user_fk("credit_notes"),
        tenant_fk("credit_notes"),
        sa.CheckConstraint("total > 0", name="ck_credit_notes_total_positive"),
        schema="billing",
    )

    op.create_table(
        "payments",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("allocated", MONEY, server_default="0", nullable=False),
        sa.Column("reference", sa.String(100), server_default="", nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_payments"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_payments_tenant_id_number"),
        _fk("payments", "account_id", "crm.accounts"),
        _fk("payments", "entry_id", "ledger.journal_entries"),
        _user_fk("payments"),
        tenant_fk("payments"),
        sa.CheckConstraint("amount > 0 AND allocated BETWEEN 0 AND amount",
                           name="ck_payments_amounts"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_payments_currency_iso"),
        sa.CheckConstraint("rate > 0", name="ck_payments_rate_positive"),
        schema="billing",
    )
    op.create_index("ix_payments_tenant_id_account_id", "payments", ["tenant_id", "account_id"],
                    schema="billing")

    op.create_table(
        "payment_allocations",
        *tenant_key_columns(),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_payment_allocations"),
        sa.UniqueConstraint("tenant_id", "payment_id", "invoice_id",
                            name="uq_payment_allocations_tenant_id_payment_id_invoice_id"),
        _fk("payment_allocations", "payment_id", "billing.payments"),
        _fk("payment_allocations", "invoice_id", "billing.invoices"),
        _fk("payment_allocations", "entry_id", "ledger.journal_entries"),
        tenant_fk("payment_allocations"),
        sa.CheckConstraint("amount > 0", name="ck_payment_allocations_amount_positive"),
        schema="billing",
    )
    op.create_index("ix_payment_allocations_tenant_id_invoice_id", "payment_allocations",
                    ["tenant_id", "invoice_id"], schema="billing")

    for table in TABLES:
        enable_tenant_rls(op, table)
        enable_audit(op, table)


def downgrade() -> None:
    for table in reversed(TABLES):
        disable_audit(op, table)
    for table in reversed(TABLES):
        op.drop_table(table.rpartition(".")[2], schema="billing")
