"""Purchasing: suppliers, purchase orders and lines, goods receipts, supplier bills
matched to receipts; a product's preferred supplier.

The database keeps the purchase order workflow honest: status changes follow the
allowed transitions, and once a PO leaves Pending its terms and lines are frozen
(only the received quantities move, within the ordered quantity).

Revision ID: 0202_purchasing
Revises: 0201_inventory
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0202_purchasing"
down_revision: str | Sequence[str] | None = "0201_inventory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QTY = sa.Numeric(19, 4)
MONEY = sa.Numeric(19, 4)
UNIT_COST = sa.Numeric(19, 6)
RATE = sa.Numeric(20, 10)
TABLES = ("purchasing.suppliers", "purchasing.purchase_orders",
          "purchasing.purchase_order_lines", "purchasing.receipts", "purchasing.receipt_lines",
          "purchasing.bills", "purchasing.bill_lines")
STATUSES = "'pending', 'approved', 'shipped', 'partially_received', 'received', 'cancelled'"
TRANSITIONS = ("pending>approved", "pending>cancelled", "approved>shipped",
               "approved>partially_received", "approved>received", "approved>cancelled",
               "shipped>partially_received", "shipped>received", "shipped>cancelled",
               "partially_received>received")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    name = target.rpartition(".")[2]
    return sa.ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"],
                                   name=f"fk_{table}_tenant_id_{name}")


def upgrade() -> None:
    op.create_table(
        "suppliers",
        *tenant_key_columns(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(50), server_default="", nullable=False),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.Column("tax_id", sa.String(50), server_default="", nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), server_default="30", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_suppliers"),
        tenant_fk("suppliers"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_suppliers_currency_iso"),
        sa.CheckConstraint("payment_terms_days BETWEEN 0 AND 365",
                           name="ck_suppliers_payment_terms_range"),
        schema="purchasing",
    )
    op.execute("CREATE UNIQUE INDEX uq_suppliers_tenant_id_name ON purchasing.suppliers"
               " (tenant_id, lower(name))")

    op.create_table(
        "purchase_orders",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=False),
        sa.Column("supplier_id", sa.Uuid(), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("order_date", sa.Date(), nullable=False),
        sa.Column("expected_date", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("approved_by", sa.Uuid(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_purchase_orders"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_purchase_orders_tenant_id_number"),
        _fk("purchase_orders", "supplier_id", "purchasing.suppliers"),
        _fk("purchase_orders", "warehouse_id", "inventory.warehouses"),
        sa.ForeignKeyConstraint(["created_by"], ["core.users.id"],
                                name="fk_purchase_orders_created_by_users"),
        sa.ForeignKeyConstraint(["approved_by"], ["core.users.id"],
                                name="fk_purchase_orders_approved_by_users"),
        tenant_fk("purchase_orders"),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_purchase_orders_status_known"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_purchase_orders_currency_iso"),
        sa.CheckConstraint("status IN ('pending', 'cancelled') OR approved_at IS NOT NULL",
                           name="ck_purchase_orders_approved_stamped"),
        sa.CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)",
                           name="ck_purchase_orders_cancelled_stamped"),
        schema="purchasing",
    )
    op.create_index("ix_purchase_orders_tenant_id_status_order_date", "purchase_orders",
                    ["tenant_id", "status", "order_date"], schema="purchasing")

    op.create_table(
        "purchase_order_lines",
        *tenant_key_columns(),
        sa.Column("po_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", QTY, nullable=False),
        sa.Column("unit_cost", UNIT_COST, nullable=False),
        sa.Column("quantity_received", QTY, server_default="0", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_purchase_order_lines"),
        sa.UniqueConstraint("tenant_id", "po_id", "line_no",
                            name="uq_purchase_order_lines_tenant_id_po_id_line_no"),
        _fk("purchase_order_lines", "po_id", "purchasing.purchase_orders"),
        _fk("purchase_order_lines", "product_id", "inventory.products"),
        tenant_fk("purchase_order_lines"),
        sa.CheckConstraint("quantity > 0 AND quantity_received BETWEEN 0 AND quantity",
                           name="ck_purchase_order_lines_quantities"),
        sa.CheckConstraint("unit_cost >= 0", name="ck_purchase_order_lines_unit_cost_non_negative"),
        schema="purchasing",
    )

    op.create_table(
        "receipts",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=False),
        sa.Column("po_id", sa.Uuid(), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("note", sa.String(500), server_default="", nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_receipts"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_receipts_tenant_id_number"),
        _fk("receipts", "po_id", "purchasing.purchase_orders"),
        _fk("receipts", "warehouse_id", "inventory.warehouses"),
        _fk("receipts", "entry_id", "ledger.journal_entries"),
        sa.ForeignKeyConstraint(["created_by"], ["core.users.id"],
                                name="fk_receipts_created_by_users"),
        tenant_fk("receipts"),
        sa.CheckConstraint("rate > 0", name="ck_receipts_rate_positive"),
        schema="purchasing",
    )
    op.create_index("ix_receipts_tenant_id_po_id", "receipts", ["tenant_id", "po_id"],
                    schema="purchasing")

    op.create_table(
        "receipt_lines",
        *tenant_key_columns(),
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("po_line_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", QTY, nullable=False),
        sa.Column("unit_cost", UNIT_COST, nullable=False),
        sa.Column("base_value", MONEY, nullable=False),
        sa.Column("move_id", sa.Uuid(), nullable=False),
        sa.Column("quantity_billed", QTY, server_default="0", nullable=False),
        sa.Column("billed_base_value", MONEY, server_default="0", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_receipt_lines"),
        _fk("receipt_lines", "receipt_id", "purchasing.receipts"),
        _fk("receipt_lines", "po_line_id", "purchasing.purchase_order_lines"),
        _fk("receipt_lines", "product_id", "inventory.products"),
        _fk("receipt_lines", "move_id", "inventory.stock_moves"),
        tenant_fk("receipt_lines"),
        sa.CheckConstraint("quantity > 0 AND quantity_billed BETWEEN 0 AND quantity",
                           name="ck_receipt_lines_quantities"),
        sa.CheckConstraint("base_value >= 0 AND billed_base_value BETWEEN 0 AND base_value",
                           name="ck_receipt_lines_values"),
        schema="purchasing",
    )
    op.create_index("ix_receipt_lines_tenant_id_receipt_id", "receipt_lines",
                    ["tenant_id", "receipt_id"], schema="purchasing")

    op.create_table(
        "bills",
        *tenant_key_columns(),
        sa.Column("number", sa.String(30), nullable=False),
        sa.Column("supplier_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_ref", sa.String(60), nullable=False),
        sa.Column("bill_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("subtotal", MONEY, nullable=False),
        sa.Column("tax", MONEY, server_default="0", nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_bills"),
        sa.UniqueConstraint("tenant_id", "number", name="uq_bills_tenant_id_number"),
        sa.UniqueConstraint("tenant_id", "supplier_id", "supplier_ref",
                            name="uq_bills_tenant_id_supplier_id_supplier_ref"),
        _fk("bills", "supplier_id", "purchasing.suppliers"),
        _fk("bills", "entry_id", "ledger.journal_entries"),
        sa.ForeignKeyConstraint(["created_by"], ["core.users.id"],
                                name="fk_bills_created_by_users"),
        tenant_fk("bills"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_bills_currency_iso"),
        sa.CheckConstraint("rate > 0", name="ck_bills_rate_positive"),
        sa.CheckConstraint("subtotal >= 0 AND tax >= 0 AND total = subtotal + tax",
                           name="ck_bills_totals"),
        sa.CheckConstraint("due_date >= bill_date", name="ck_bills_due_after_bill"),
        schema="purchasing",
    )
    op.create_table(
        "bill_lines",
        *tenant_key_columns(),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("receipt_line_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", QTY, nullable=False),
        sa.Column("unit_cost", UNIT_COST, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("cleared_base_value", MONEY, nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_bill_lines"),
        _fk("bill_lines", "bill_id", "purchasing.bills"),
        _fk("bill_lines", "receipt_line_id", "purchasing.receipt_lines"),
        tenant_fk("bill_lines"),
        sa.CheckConstraint("quantity > 0 AND unit_cost >= 0 AND amount >= 0"
                           " AND cleared_base_value >= 0", name="ck_bill_lines_amounts"),
        schema="purchasing",
    )
    op.create_index("ix_bill_lines_tenant_id_bill_id", "bill_lines", ["tenant_id", "bill_id"],
                    schema="purchasing")

    for table in TABLES:
        enable_tenant_rls(op, table)
        enable_audit(op, table)

    # Validating a new foreign key reads every row of products and suppliers; RLS is
    # forced for the owner too and this transaction has no tenant, so lift the force
    # for the length of this statement (same transaction: nobody sees the gap).
    for table in ("inventory.products", "purchasing.suppliers"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.create_foreign_key("fk_products_tenant_id_suppliers", "products", "suppliers",
                          ["tenant_id", "preferred_supplier_id"], ["tenant_id", "id"],
                          source_schema="inventory", referent_schema="purchasing")
    for table in ("inventory.products", "purchasing.suppliers"):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")

    allowed = ", ".join(f"'{t}'" for t in TRANSITIONS)
    op.execute(
        f"""
        CREATE FUNCTION purchasing.guard_po() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.status IN ('received', 'cancelled') THEN
                RAISE EXCEPTION 'purchase order % is %: it cannot change', OLD.number,
                    OLD.status USING ERRCODE = 'POSTA';
            END IF;
            IF NEW.status <> OLD.status
               AND NOT (OLD.status || '>' || NEW.status = ANY (ARRAY[{allowed}])) THEN
                RAISE EXCEPTION 'purchase order % cannot go from % to %', OLD.number,
                    OLD.status, NEW.status USING ERRCODE = 'POSTA';
            END IF;
            IF OLD.status <> 'pending' AND (NEW.number, NEW.supplier_id, NEW.currency,
                                           NEW.warehouse_id, NEW.order_date)
                  IS DISTINCT FROM (OLD.number, OLD.supplier_id, OLD.currency,
                                    OLD.warehouse_id, OLD.order_date) THEN
                RAISE EXCEPTION 'purchase order % is %: its terms are frozen', OLD.number,
                    OLD.status USING ERRCODE = 'POSTA';
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("CREATE TRIGGER guard_po BEFORE UPDATE ON purchasing.purchase_orders"
               " FOR EACH ROW EXECUTE FUNCTION purchasing.guard_po()")
    op.execute(
        """
        CREATE FUNCTION purchasing.guard_po_line() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            state text;
            num text;
        BEGIN
            SELECT status, number INTO state, num FROM purchasing.purchase_orders
             WHERE tenant_id = coalesce(NEW.tenant_id, OLD.tenant_id)
               AND id = coalesce(NEW.po_id, OLD.po_id) FOR SHARE;
            IF state = 'pending' THEN
                IF TG_OP = 'UPDATE' AND NEW.quantity_received <> OLD.quantity_received THEN
                    RAISE EXCEPTION 'purchase order % is not approved: nothing can be received',
                        num USING ERRCODE = 'POSTA';
                END IF;
            ELSIF TG_OP <> 'UPDATE' OR (NEW.po_id, NEW.line_no, NEW.product_id, NEW.quantity,
                                        NEW.unit_cost)
                    IS DISTINCT FROM (OLD.po_id, OLD.line_no, OLD.product_id, OLD.quantity,
                                      OLD.unit_cost) THEN
                RAISE EXCEPTION 'purchase order % is %: its lines are frozen', num, state
                    USING ERRCODE = 'POSTA';
            ELSIF NEW.quantity_received < OLD.quantity_received THEN
                RAISE EXCEPTION 'received quantities never go down' USING ERRCODE = 'POSTA';
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("CREATE TRIGGER guard_po_line BEFORE INSERT OR UPDATE OR DELETE"
               " ON purchasing.purchase_order_lines FOR EACH ROW EXECUTE FUNCTION"
               " purchasing.guard_po_line()")


def downgrade() -> None:
    op.execute("DROP TRIGGER guard_po_line ON purchasing.purchase_order_lines")
    op.execute("DROP TRIGGER guard_po ON purchasing.purchase_orders")
    op.execute("DROP FUNCTION purchasing.guard_po_line()")
    op.execute("DROP FUNCTION purchasing.guard_po()")
    op.drop_constraint("fk_products_tenant_id_suppliers", "products", schema="inventory",
                       type_="foreignkey")
    for table in reversed(TABLES):
        disable_audit(op, table)
    for table in reversed(TABLES):
        op.drop_table(table.rpartition(".")[2], schema="purchasing")
