"""Valuation as of a date from an index alone.

The valuation reads, for every stock level, its last move before a date. The old
index (tenant, product, warehouse, moved_at) needed an incremental sort on ``seq`` and
a heap visit per level; this one is ordered exactly like the query (moved_at and seq
descending) and carries the running balances, so each probe is an index-only read.
It replaces the old index, which served nothing this one does not (move history by
product and warehouse reads it as well).

Measured with ``python -m tests.perf.bench_erp`` (see the ERP issue's closing note).

Revision ID: 0205_stock_moves_valuation_index
Revises: 0204_inventory_totals_check
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0205_stock_moves_valuation_index"
down_revision: str | Sequence[str] | None = "0204_inventory_totals_check"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = "ix_stock_moves_tenant_id_product_id_warehouse_id_moved_at_seq"
OLD = "ix_stock_moves_tenant_id_product_id_warehouse_id_moved_at"


def upgrade() -> None:
    op.create_index(NEW, "stock_moves",
                    ["tenant_id", "product_id", "warehouse_id", sa.text("moved_at DESC"),
                     sa.text("seq DESC")],
                    postgresql_include=["on_hand_after", "value_after"], schema="inventory")
    op.drop_index(OLD, table_name="stock_moves", schema="inventory")


def downgrade() -> None:
    op.create_index(OLD, "stock_moves", ["tenant_id", "product_id", "warehouse_id", "moved_at"],
                    schema="inventory")
    op.drop_index(NEW, table_name="stock_moves", schema="inventory")
