"""Low stock as a stored column, so the planner knows how few rows are low.

``available < reorder_level`` compares two columns: PostgreSQL cannot estimate it and
assumes a third of the rows match, so the low-stock count joined all of a tenant's
products by hash (a scan of 50,000 products for 2,500 low ones). A stored generated
``is_low`` column has statistics after ANALYZE; the estimate is right and the list
and its count walk the partial index. Measured with ``python -m tests.perf.bench_erp``.

Revision ID: 0206_product_stock_is_low
Revises: 0204_inventory_totals_check
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0206_product_stock_is_low"
down_revision: str | Sequence[str] | None = "0204_inventory_totals_check"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE inventory.product_stock ADD COLUMN is_low boolean"
               " GENERATED ALWAYS AS (on_hand - reserved < reorder_level) STORED")
    op.execute("DROP INDEX inventory.ix_product_stock_tenant_id_low")
    op.execute("CREATE INDEX ix_product_stock_tenant_id_low ON inventory.product_stock"
               " (tenant_id, product_id) WHERE is_low")


def downgrade() -> None:
    op.execute("DROP INDEX inventory.ix_product_stock_tenant_id_low")
    op.execute("ALTER TABLE inventory.product_stock DROP COLUMN is_low")
    op.execute("CREATE INDEX ix_product_stock_tenant_id_low ON inventory.product_stock"
               " (tenant_id, product_id) WHERE available < reorder_level")
