"""The default chart of accounts every new tenant starts with.

Codes follow the common 1xxx assets / 2xxx liabilities / 3xxx equity / 4xxx revenue /
5xxx cost of sales / 6xxx expenses layout, so an accountant recognises it at once and
can add or renumber accounts. Services never look accounts up by code: they use the
``role`` (``inventory``, ``grni``...), which stays put when a tenant renumbers.
"""

from __future__ import annotations

# (code, name, type, role)
DEFAULT_CHART: tuple[tuple[str, str, str, str | None], ...] = (
    ("1000", "Cash", "asset", "cash"),
    ("1010", "Bank", "asset", "bank"),
    ("1100", "Accounts receivable", "asset", "receivables"),
    ("1200", "Inventory", "asset", "inventory"),
    ("1300", "Input tax (recoverable)", "asset", "tax_receivable"),
    ("1500", "Equipment and machinery", "asset", None),
    ("2000", "Accounts payable", "liability", "payables"),
    ("2100", "Goods received not invoiced", "liability", "grni"),
    ("2200", "Sales tax payable", "liability", "tax_payable"),
    ("2300", "Payroll liabilities", "liability", "payroll"),
    ("3000", "Share capital", "equity", "capital"),
    ("3100", "Retained earnings", "equity", "retained_earnings"),
    ("3900", "Opening balance equity", "equity", "opening_balance"),
    ("4000", "Sales of goods", "revenue", "sales"),
    ("4100", "Services revenue", "revenue", None),
    ("4900", "Exchange rate gains", "revenue", "fx_gain"),
    ("5000", "Cost of goods sold", "cogs", "cogs"),
    ("5100", "Inventory adjustments", "cogs", "inventory_adjustment"),
    ("5200", "Purchase price variance", "cogs", "purchase_variance"),
    ("6000", "Salaries and wages", "expense", "wages"),
    ("6100", "Rent", "expense", None),
    ("6200", "Utilities", "expense", None),
    ("6300", "Repairs and maintenance", "expense", None),
    ("6400", "Office supplies", "expense", None),
    ("6800", "Bank charges", "expense", None),
    ("6900", "Exchange rate losses", "expense", "fx_loss"),
)
