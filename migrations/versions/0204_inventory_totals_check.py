"""Fix the deferred check of product totals: compare the row as it is at commit.

``check_totals`` compared ``NEW`` (the row as it was when that UPDATE ran) with the
current sum of the levels. Two operations on one product in one transaction (two
receipts, a receipt with two lines for the same product) queue two events; the first
one's ``NEW`` is stale at commit, so the commit failed although the books were right.
Found by the property-based tests (tests/test_erp_properties.py). The function now
reads the current totals row; the rule it enforces is unchanged.

Revision ID: 0204_inventory_totals_check
Revises: 0203_hr
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0204_inventory_totals_check"
down_revision: str | Sequence[str] | None = "0203_hr"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BODY = """
CREATE OR REPLACE FUNCTION inventory.check_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sum_on_hand numeric;
    sum_reserved numeric;
    total_on_hand numeric;
    total_reserved numeric;
BEGIN
    SELECT on_hand, reserved INTO total_on_hand, total_reserved
      FROM inventory.product_stock
     WHERE tenant_id = NEW.tenant_id AND product_id = NEW.product_id;
    SELECT coalesce(sum(on_hand), 0), coalesce(sum(reserved), 0)
      INTO sum_on_hand, sum_reserved FROM inventory.stock_levels
     WHERE tenant_id = NEW.tenant_id AND product_id = NEW.product_id;
    IF total_on_hand <> sum_on_hand OR total_reserved <> sum_reserved THEN
        RAISE EXCEPTION 'product totals (% on hand, % reserved) differ from the sum '
            'of its stock levels (%, %)', %s USING ERRCODE = 'INVCH';
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.execute(BODY.replace("%s", "total_on_hand, total_reserved, sum_on_hand, sum_reserved"))


def downgrade() -> None:
    op.execute(BODY.replace(
        "SELECT on_hand, reserved INTO total_on_hand, total_reserved\n"
        "      FROM inventory.product_stock\n"
        "     WHERE tenant_id = NEW.tenant_id AND product_id = NEW.product_id;\n", "")
        .replace("IF total_on_hand <> sum_on_hand OR total_reserved <> sum_reserved",
                 "IF NEW.on_hand <> sum_on_hand OR NEW.reserved <> sum_reserved")
        .replace("%s", "NEW.on_hand, NEW.reserved, sum_on_hand, sum_reserved"))
