"""Inventory: warehouses and bins, products, stock levels and product totals, the
append-only stock move ledger, reservations and reorder events.

The database keeps the stock books consistent by itself:

* moves of one (product, warehouse) form a chain: ``seq`` 1, 2, 3... and each move's
  ``on_hand_after``/``value_after`` equal the previous move's plus its own change;
* at commit, every stock level equals the after-values of its last move (so a level
  is the sum of its moves), no move is ahead of its level, and each product's totals
  equal the sum of its levels;
* quantities on hand never go negative and reservations stay within stock (CHECKs);
* levels and totals are never deleted; moves are append-only (privileges).

Revision ID: 0201_inventory
Revises: 0200_ledger
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.helpers import tenant_fk, tenant_key_columns, timestamp_columns
from tenants.rls import disable_audit, enable_audit, enable_tenant_rls

revision: str = "0201_inventory"
down_revision: str | Sequence[str] | None = "0200_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QTY = sa.Numeric(19, 4)
MONEY = sa.Numeric(19, 4)
UNIT_COST = sa.Numeric(19, 6)
TABLES = ("inventory.warehouses", "inventory.bins", "inventory.products",
          "inventory.stock_levels", "inventory.product_stock", "inventory.stock_moves",
          "inventory.reservations", "inventory.reorder_events")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    name = target.rpartition(".")[2]
    return sa.ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"],
                                   name=f"fk_{table}_tenant_id_{name}")


def upgrade() -> None:
    op.create_table(
        "warehouses",
        *tenant_key_columns(),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_warehouses"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_warehouses_tenant_id_code"),
        tenant_fk("warehouses"),
        schema="inventory",
    )
    op.create_table(
        "bins",
        *tenant_key_columns(),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(30), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_bins"),
        sa.UniqueConstraint("tenant_id", "warehouse_id", "code",
                            name="uq_bins_tenant_id_warehouse_id_code"),
        _fk("bins", "warehouse_id", "inventory.warehouses"),
        tenant_fk("bins"),
        schema="inventory",
    )
    op.create_table(
        "products",
        *tenant_key_columns(),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_translations", pg.JSONB(), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("uom", sa.String(20), server_default="unit", nullable=False),
        sa.Column("category", sa.String(100), server_default="", nullable=False),
        sa.Column("sale_price", MONEY, nullable=True),
        sa.Column("sale_currency", sa.String(3), nullable=True),
        sa.Column("reorder_level", QTY, server_default="0", nullable=False),
        sa.Column("reorder_qty", QTY, server_default="0", nullable=False),
        sa.Column("preferred_supplier_id", sa.Uuid(), nullable=True),
        sa.Column("custom_fields", pg.JSONB(), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_products"),
        sa.UniqueConstraint("tenant_id", "sku", name="uq_products_tenant_id_sku"),
        tenant_fk("products"),
        sa.CheckConstraint("sku ~ '^[^[:space:]]{1,64}$'", name="ck_products_sku_no_spaces"),
        sa.CheckConstraint("(sale_price IS NULL) = (sale_currency IS NULL)",
                           name="ck_products_price_has_currency"),
        sa.CheckConstraint("sale_price IS NULL OR sale_price >= 0",
                           name="ck_products_sale_price_non_negative"),
        sa.CheckConstraint("sale_currency ~ '^[A-Z]{3}$'", name="ck_products_currency_iso"),
        sa.CheckConstraint("reorder_level >= 0 AND reorder_qty >= 0",
                           name="ck_products_reorder_non_negative"),
        sa.CheckConstraint("jsonb_typeof(name_translations) = 'object'",
                           name="ck_products_translations_object"),
        sa.CheckConstraint("jsonb_typeof(custom_fields) = 'object'",
                           name="ck_products_custom_fields_object"),
        schema="inventory",
    )
    op.create_index("ix_products_tenant_id_name", "products", ["tenant_id", "name"],
                    schema="inventory")
    op.create_index("ix_products_tenant_id_category", "products", ["tenant_id", "category"],
                    schema="inventory")

    op.create_table(
        "stock_levels",
        *tenant_key_columns(),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("on_hand", QTY, server_default="0", nullable=False),
        sa.Column("reserved", QTY, server_default="0", nullable=False),
        sa.Column("available", QTY, sa.Computed("on_hand - reserved", persisted=True),
                  nullable=False),
        sa.Column("value", MONEY, server_default="0", nullable=False),
        sa.Column("last_seq", sa.BigInteger(), server_default="0", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_stock_levels"),
        sa.UniqueConstraint("tenant_id", "product_id", "warehouse_id",
                            name="uq_stock_levels_tenant_id_product_id_warehouse_id"),
        _fk("stock_levels", "product_id", "inventory.products"),
        _fk("stock_levels", "warehouse_id", "inventory.warehouses"),
        tenant_fk("stock_levels"),
        sa.CheckConstraint("on_hand >= 0", name="ck_stock_levels_on_hand_non_negative"),
        sa.CheckConstraint("reserved BETWEEN 0 AND on_hand",
                           name="ck_stock_levels_reserved_within_on_hand"),
        sa.CheckConstraint("value >= 0 AND (on_hand > 0 OR value = 0)",
                           name="ck_stock_levels_value_consistent"),
        schema="inventory",
    )
    op.create_index("ix_stock_levels_tenant_id_warehouse_id", "stock_levels",
                    ["tenant_id", "warehouse_id"], schema="inventory")

    op.create_table(
        "product_stock",
        *tenant_key_columns(),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("on_hand", QTY, server_default="0", nullable=False),
        sa.Column("reserved", QTY, server_default="0", nullable=False),
        sa.Column("available", QTY, sa.Computed("on_hand - reserved", persisted=True),
                  nullable=False),
        sa.Column("reorder_level", QTY, server_default="0", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_product_stock"),
        sa.UniqueConstraint("tenant_id", "product_id",
                            name="uq_product_stock_tenant_id_product_id"),
        _fk("product_stock", "product_id", "inventory.products"),
        tenant_fk("product_stock"),
        sa.CheckConstraint("on_hand >= 0", name="ck_product_stock_on_hand_non_negative"),
        sa.CheckConstraint("reserved BETWEEN 0 AND on_hand",
                           name="ck_product_stock_reserved_within_on_hand"),
        schema="inventory",
    )
    # The low-stock list reads only this partial index.
    op.execute("CREATE INDEX ix_product_stock_tenant_id_low ON inventory.product_stock"
               " (tenant_id, product_id) WHERE available < reorder_level")

    op.create_table(
        "stock_moves",
        *tenant_key_columns(),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("bin_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("quantity", QTY, nullable=False),
        sa.Column("unit_cost", UNIT_COST, nullable=False),
        sa.Column("value", MONEY, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("on_hand_after", QTY, nullable=False),
        sa.Column("value_after", MONEY, nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True),
                  server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("reason", sa.String(30), nullable=True),
        sa.Column("note", sa.String(500), server_default="", nullable=False),
        sa.Column("source_type", sa.String(60), nullable=True),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("source_ref", sa.String(60), server_default="", nullable=False),
        sa.Column("transfer_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_stock_moves"),
        sa.UniqueConstraint("tenant_id", "product_id", "warehouse_id", "seq",
                            name="uq_stock_moves_tenant_id_product_id_warehouse_id_seq"),
        _fk("stock_moves", "product_id", "inventory.products"),
        _fk("stock_moves", "warehouse_id", "inventory.warehouses"),
        _fk("stock_moves", "bin_id", "inventory.bins"),
        sa.ForeignKeyConstraint(["created_by"], ["core.users.id"],
                                name="fk_stock_moves_created_by_users"),
        tenant_fk("stock_moves"),
        sa.CheckConstraint("kind IN ('receipt', 'delivery', 'transfer', 'adjustment', 'return')",
                           name="ck_stock_moves_kind_known"),
        sa.CheckConstraint(
            "quantity <> 0 AND (kind IN ('transfer', 'adjustment')"
            " OR (kind IN ('receipt', 'return') AND quantity > 0)"
            " OR (kind = 'delivery' AND quantity < 0))",
            name="ck_stock_moves_quantity_sign"),
        sa.CheckConstraint("value = 0 OR sign(value) = sign(quantity)",
                           name="ck_stock_moves_value_sign"),
        sa.CheckConstraint("unit_cost >= 0", name="ck_stock_moves_unit_cost_non_negative"),
        sa.CheckConstraint("seq > 0 AND on_hand_after >= 0 AND value_after >= 0",
                           name="ck_stock_moves_running_non_negative"),
        sa.CheckConstraint("(kind = 'adjustment') = (reason IS NOT NULL)",
                           name="ck_stock_moves_adjustment_reason"),
        sa.CheckConstraint("(kind = 'transfer') = (transfer_id IS NOT NULL)",
                           name="ck_stock_moves_transfer_paired"),
        schema="inventory",
    )
    op.create_index("ix_stock_moves_tenant_id_product_id_warehouse_id_moved_at", "stock_moves",
                    ["tenant_id", "product_id", "warehouse_id", "moved_at"], schema="inventory")
    op.create_index("ix_stock_moves_tenant_id_moved_at", "stock_moves",
                    ["tenant_id", "moved_at"], schema="inventory")

    op.create_table(
        "reservations",
        *tenant_key_columns(),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", QTY, nullable=False),
        sa.Column("fulfilled", QTY, server_default="0", nullable=False),
        sa.Column("status", sa.String(12), server_default="active", nullable=False),
        sa.Column("source_type", sa.String(60), nullable=True),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("source_ref", sa.String(60), server_default="", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_reservations"),
        _fk("reservations", "product_id", "inventory.products"),
        _fk("reservations", "warehouse_id", "inventory.warehouses"),
        tenant_fk("reservations"),
        sa.CheckConstraint("quantity > 0 AND fulfilled BETWEEN 0 AND quantity",
                           name="ck_reservations_quantities"),
        sa.CheckConstraint("status IN ('active', 'fulfilled', 'released')",
                           name="ck_reservations_status_known"),
        schema="inventory",
    )
    op.create_index("ix_reservations_tenant_id_product_id_status", "reservations",
                    ["tenant_id", "product_id", "status"], schema="inventory")

    op.create_table(
        "reorder_events",
        *tenant_key_columns(),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("available", QTY, nullable=False),
        sa.Column("reorder_level", QTY, nullable=False),
        sa.Column("reorder_qty", QTY, nullable=False),
        sa.Column("preferred_supplier_id", sa.Uuid(), nullable=True),
        sa.Column("move_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(12), server_default="open", nullable=False),
        *timestamp_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_reorder_events"),
        _fk("reorder_events", "product_id", "inventory.products"),
        tenant_fk("reorder_events"),
        sa.CheckConstraint("status IN ('open', 'ordered', 'dismissed')",
                           name="ck_reorder_events_status_known"),
        schema="inventory",
    )
    op.create_index("ix_reorder_events_tenant_id_status_created_at", "reorder_events",
                    ["tenant_id", "status", "created_at"], schema="inventory")

    for table in TABLES:
        enable_tenant_rls(op, table)
        enable_audit(op, table)

    _functions()
    _seed_existing_tenants()


def _functions() -> None:
    # Every product has its totals row from birth; its reorder level is mirrored there
    # so the low-stock filter is one partial index.
    op.execute(
        """
        CREATE FUNCTION inventory.product_stock_row() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO inventory.product_stock (tenant_id, product_id, reorder_level)
                VALUES (NEW.tenant_id, NEW.id, NEW.reorder_level);
            ELSIF NEW.reorder_level IS DISTINCT FROM OLD.reorder_level THEN
                UPDATE inventory.product_stock SET reorder_level = NEW.reorder_level,
                       updated_at = now()
                 WHERE tenant_id = NEW.tenant_id AND product_id = NEW.id;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute("CREATE TRIGGER product_stock_row AFTER INSERT OR UPDATE OF reorder_level"
               " ON inventory.products FOR EACH ROW EXECUTE FUNCTION"
               " inventory.product_stock_row()")

    # The running balance of a (product, warehouse) is a chain: each move follows the
    # previous one exactly.
    op.execute(
        """
        CREATE FUNCTION inventory.chain_move() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            prev_qty numeric := 0;
            prev_value numeric := 0;
        BEGIN
            IF NEW.seq > 1 THEN
                SELECT on_hand_after, value_after INTO prev_qty, prev_value
                  FROM inventory.stock_moves
                 WHERE tenant_id = NEW.tenant_id AND product_id = NEW.product_id
                   AND warehouse_id = NEW.warehouse_id AND seq = NEW.seq - 1;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'stock move % of this product and warehouse has no '
                        'predecessor', NEW.seq USING ERRCODE = 'INVCH';
                END IF;
            END IF;
            IF NEW.on_hand_after <> prev_qty + NEW.quantity
               OR NEW.value_after <> prev_value + NEW.value THEN
                RAISE EXCEPTION 'stock move breaks the running balance: % + % <> %',
                    prev_qty, NEW.quantity, NEW.on_hand_after USING ERRCODE = 'INVCH';
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("CREATE TRIGGER chain_move BEFORE INSERT ON inventory.stock_moves"
               " FOR EACH ROW EXECUTE FUNCTION inventory.chain_move()")

    # At commit: the level equals its last move, and the product's totals equal the
    # sum of its levels.
    op.execute(
        """
        CREATE FUNCTION inventory.check_level() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            move_qty numeric := 0;
            move_value numeric := 0;
            sum_on_hand numeric;
            sum_reserved numeric;
            total_on_hand numeric;
            total_reserved numeric;
        BEGIN
            IF NEW.last_seq > 0 THEN
                SELECT on_hand_after, value_after INTO move_qty, move_value
                  FROM inventory.stock_moves
                 WHERE tenant_id = NEW.tenant_id AND product_id = NEW.product_id
                   AND warehouse_id = NEW.warehouse_id AND seq = NEW.last_seq;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'stock level points at move % which does not exist',
                        NEW.last_seq USING ERRCODE = 'INVCH';
                END IF;
            END IF;
            IF NEW.on_hand <> move_qty OR NEW.value <> move_value THEN
                RAISE EXCEPTION 'stock level (% on hand, value %) differs from its moves '
                    '(%, %): stock changes only through stock moves', NEW.on_hand, NEW.value,
                    move_qty, move_value USING ERRCODE = 'INVCH';
            END IF;
            SELECT sum(on_hand), sum(reserved) INTO sum_on_hand, sum_reserved
              FROM inventory.stock_levels
             WHERE tenant_id = NEW.tenant_id AND product_id = NEW.product_id;
            SELECT on_hand, reserved INTO total_on_hand, total_reserved
              FROM inventory.product_stock
             WHERE tenant_id = NEW.tenant_id AND product_id = NEW.product_id;
            IF total_on_hand IS DISTINCT FROM sum_on_hand
               OR total_reserved IS DISTINCT FROM sum_reserved THEN
                RAISE EXCEPTION 'product totals (% on hand, % reserved) differ from the sum '
                    'of its stock levels (%, %)', total_on_hand, total_reserved, sum_on_hand,
                    sum_reserved USING ERRCODE = 'INVCH';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute("CREATE CONSTRAINT TRIGGER level_matches_moves AFTER INSERT OR UPDATE"
               " ON inventory.stock_levels DEFERRABLE INITIALLY DEFERRED"
               " FOR EACH ROW EXECUTE FUNCTION inventory.check_level()")

    # Totals changed on their own (no level changed with them) are caught too.
    op.execute(
        """
        CREATE FUNCTION inventory.check_totals() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            sum_on_hand numeric;
            sum_reserved numeric;
        BEGIN
            SELECT coalesce(sum(on_hand), 0), coalesce(sum(reserved), 0)
              INTO sum_on_hand, sum_reserved FROM inventory.stock_levels
             WHERE tenant_id = NEW.tenant_id AND product_id = NEW.product_id;
            IF NEW.on_hand <> sum_on_hand OR NEW.reserved <> sum_reserved THEN
                RAISE EXCEPTION 'product totals (% on hand, % reserved) differ from the sum '
                    'of its stock levels (%, %)', NEW.on_hand, NEW.reserved, sum_on_hand,
                    sum_reserved USING ERRCODE = 'INVCH';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute("CREATE CONSTRAINT TRIGGER totals_match_levels AFTER UPDATE"
               " ON inventory.product_stock DEFERRABLE INITIALLY DEFERRED"
               " FOR EACH ROW EXECUTE FUNCTION inventory.check_totals()")

    op.execute(
        """
        CREATE FUNCTION inventory.check_move_applied() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            level_seq bigint;
        BEGIN
            SELECT last_seq INTO level_seq FROM inventory.stock_levels
             WHERE tenant_id = NEW.tenant_id AND product_id = NEW.product_id
               AND warehouse_id = NEW.warehouse_id;
            IF level_seq IS NULL OR level_seq < NEW.seq THEN
                RAISE EXCEPTION 'stock move % was written without updating its stock level',
                    NEW.seq USING ERRCODE = 'INVCH';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute("CREATE CONSTRAINT TRIGGER move_applied AFTER INSERT ON inventory.stock_moves"
               " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION"
               " inventory.check_move_applied()")

    op.execute(
        """
        CREATE FUNCTION inventory.refuse_delete() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'INVCH';
        END
        $$
        """
    )
    for table in ("stock_levels", "product_stock"):
        op.execute(f"CREATE TRIGGER refuse_delete BEFORE DELETE ON inventory.{table}"
                   " FOR EACH ROW EXECUTE FUNCTION inventory.refuse_delete()")


def _seed_existing_tenants() -> None:
    conn = op.get_bind()
    for (tenant_id,) in conn.execute(sa.text("SELECT id FROM core.tenants")).fetchall():
        conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"),
                     {"t": str(tenant_id)})
        conn.execute(sa.text("INSERT INTO inventory.warehouses (tenant_id, code, name)"
                             " VALUES (:t, 'MAIN', 'Main warehouse')"), {"t": tenant_id})
    conn.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    for table in ("stock_levels", "product_stock"):
        op.execute(f"DROP TRIGGER refuse_delete ON inventory.{table}")
    op.execute("DROP TRIGGER move_applied ON inventory.stock_moves")
    op.execute("DROP TRIGGER totals_match_levels ON inventory.product_stock")
    op.execute("DROP TRIGGER level_matches_moves ON inventory.stock_levels")
    op.execute("DROP TRIGGER chain_move ON inventory.stock_moves")
    op.execute("DROP TRIGGER product_stock_row ON inventory.products")
    for table in reversed(TABLES):
        disable_audit(op, table)
    for table in reversed(TABLES):
        op.drop_table(table.partition(".")[2], schema="inventory")
    for fn in ("refuse_delete", "check_move_applied", "check_totals", "check_level",
               "chain_move", "product_stock_row"):
        op.execute(f"DROP FUNCTION inventory.{fn}()")
