"""Shared set-up of the quote-to-cash tests: a customer, stocked products, quotes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.crm import services as crm
from app.inventory import services as inv
from app.inventory.services import MoveLine
from app.ledger import services as ledger
from app.sales import services as sales

D = Decimal


def account(s: Session, name: str = "Acme Ltd", **extra: Any):
    return crm.create_account(s, {"name": name, "currency": extra.pop("currency", "EUR"),
                                  **extra})


def product(s: Session, sku: str, *, stock: str | None = "100", cost: str = "4.00",
            price: str | None = None):
    p = inv.create_product(s, {"sku": sku, "name": f"Product {sku}",
                               **({"sale_price": price, "sale_currency": "EUR"}
                                  if price else {})})
    if stock:
        warehouse = inv.list_warehouses(s)[0]
        inv.receive(s, [MoveLine(p.id, warehouse.id, D(stock), D(cost))])
    return p


def quote(s: Session, acct, lines: list[dict[str, Any]], **extra: Any):
    return sales.create_quote(s, {"account_id": acct.id, "lines": lines, **extra})


def line(p, qty: str = "1", price: str = "10.00", discount: str = "0", tax: str = "20"):
    return {"product_id": p.id, "quantity": qty, "unit_price": price,
            "discount_pct": discount, "tax_rate": tax}


def balance(s: Session, role: str) -> Decimal:
    """Closing balance of the account with ``role``, on its normal side."""
    acct = ledger.account_for(s, role)
    return ledger.general_ledger(s, acct, dt.date(2000, 1, 1),
                                 dt.date.today() + dt.timedelta(days=400)).closing
