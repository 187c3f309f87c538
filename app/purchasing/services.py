"""Purchasing services: suppliers, the purchase order workflow, receiving, bills.

* Purchase orders get a gapless number when created (they are never deleted, only
  cancelled, so the sequence has no holes) and start Pending. Approving needs the
  ``purchasing:approve`` permission, checked here as well as in the views.
* Receiving may be partial. Each receipt converts the PO's unit costs to base
  currency at the receipt date's rate, raises stock through the inventory service
  (which updates the moving average and posts inventory against goods received not
  invoiced) and moves the PO to Partially received or Received.
* A supplier bill is matched to receipt lines: it clears GRNI for exactly the value
  those lines put there, books the difference (price or exchange rate) to purchase
  price variance, recoverable tax to input tax, and credits accounts payable in the
  bill's currency.

Services never commit; on ``PurchasingError`` the caller rolls back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import new_id, utcnow
from app.inventory import services as inventory
from app.ledger import services as ledger
from app.money import CURRENCIES, UnknownCurrency, quantize, validate_currency
from tenants.context import require_context
from tenants.services import format_number, next_number

from .models import (
    Bill,
    BillLine,
    PurchaseOrder,
    PurchaseOrderLine,
    Receipt,
    ReceiptLine,
    Supplier,
)

ZERO = Decimal(0)
RECEIVABLE = ("approved", "shipped", "partially_received")


class PurchasingError(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _currency(code: str | None, field_name: str = "currency") -> str:
    try:
        return validate_currency(code or "")
    except UnknownCurrency as exc:
        raise PurchasingError(str(exc), field_name) from None


def _number(value: Any, field_name: str, places: int, *, positive: bool = False) -> Decimal:
    try:
        return inventory.parse_decimal(value, field_name, places, positive=positive)
    except inventory.InventoryError as exc:
        raise PurchasingError(str(exc), field_name) from None


def _today() -> dt.date:
    return utcnow().date()


# --- suppliers ----------------------------------------------------------------------------


SUPPLIER_FIELDS = ("name", "email", "phone", "address", "tax_id", "currency",
                   "payment_terms_days", "is_active")


def _clean_supplier(data: dict[str, Any]) -> dict[str, Any]:
    clean = {k: v for k, v in data.items() if k in SUPPLIER_FIELDS}
    if "name" in clean:
        clean["name"] = (clean["name"] or "").strip()
        if not clean["name"] or len(clean["name"]) > 200:
            raise PurchasingError("the supplier needs a name (at most 200 characters)", "name")
    if "currency" in clean:
        clean["currency"] = _currency(clean["currency"])
    if "email" in clean:
        clean["email"] = (clean["email"] or "").strip() or None
        if clean["email"] and "@" not in clean["email"]:
            raise PurchasingError(f"{clean['email']!r} is not an email address", "email")
    if "payment_terms_days" in clean:
        try:
            days = int(clean["payment_terms_days"])
        except (TypeError, ValueError):
            raise PurchasingError("payment terms are a number of days", "payment_terms_days"
                                  ) from None
        if not 0 <= days <= 365:
            raise PurchasingError("payment terms are 0 to 365 days", "payment_terms_days")
        clean["payment_terms_days"] = days
    for key in ("phone", "address", "tax_id"):
        if key in clean:
            clean[key] = (clean[key] or "").strip()
    return clean


def _flush_supplier(session: Session, supplier: Supplier, new: bool) -> None:
    clash = select(Supplier.id).where(func.lower(Supplier.name) == supplier.name.lower())
    if not new:
        clash = clash.where(Supplier.id != supplier.id)
    if session.scalar(clash):
        raise PurchasingError(f"a supplier named {supplier.name} exists", "name")
    try:
        with session.begin_nested():
            if new:
                session.add(supplier)
            session.flush()
    except IntegrityError:
        raise PurchasingError(f"a supplier named {supplier.name} exists", "name") from None


def create_supplier(session: Session, data: dict[str, Any]) -> Supplier:
    clean = _clean_supplier({"currency": data.get("currency") or ledger.base_currency(session),
                             **{k: v for k, v in data.items() if k != "currency"}})
    if not clean.get("name"):
        raise PurchasingError("the supplier needs a name", "name")
    supplier = Supplier(**clean)
    _flush_supplier(session, supplier, new=True)
    return supplier


def update_supplier(session: Session, supplier: Supplier, data: dict[str, Any]) -> Supplier:
    for key, value in _clean_supplier(data).items():
        setattr(supplier, key, value)
    _flush_supplier(session, supplier, new=False)
    return supplier


def get_supplier(session: Session, supplier_id: uuid.UUID) -> Supplier | None:
    return session.scalar(select(Supplier).where(Supplier.id == supplier_id))


def list_suppliers(session: Session, *, active_only: bool = False) -> list[Supplier]:
    query = select(Supplier).order_by(func.lower(Supplier.name))
    if active_only:
        query = query.where(Supplier.is_active.is_(True))
    return list(session.scalars(query))


# --- purchase orders ----------------------------------------------------------------------


@dataclass
class POLineInput:
    product_id: uuid.UUID
    quantity: Decimal | str
    unit_cost: Decimal | str


def _po_lines(session: Session, lines: Sequence[POLineInput]) -> list[PurchaseOrderLine]:
    if not lines:
        raise PurchasingError("a purchase order needs at least one line", "lines")
    result = []
    for number, line in enumerate(lines, start=1):
        product = inventory.get_product(session, line.product_id)
        if product is None:
            raise PurchasingError(f"line {number}: no such product", "lines")
        if not product.is_active:
            raise PurchasingError(f"line {number}: {product.sku} is inactive", "lines")
        try:
            qty = inventory.parse_decimal(line.quantity, "lines", 4, positive=True)
            cost = inventory.parse_decimal(line.unit_cost, "lines", 6)
        except inventory.InventoryError as exc:
            raise PurchasingError(f"line {number}: {exc}", "lines") from None
        result.append(PurchaseOrderLine(line_no=number, product_id=product.id, quantity=qty,
                                        unit_cost=cost))
    return result


def _check_parties(session: Session, supplier_id: uuid.UUID, warehouse_id: uuid.UUID
                   ) -> Supplier:
    supplier = get_supplier(session, supplier_id)
    if supplier is None or not supplier.is_active:
        raise PurchasingError("choose an active supplier", "supplier_id")
    warehouse = inventory.get_warehouse(session, warehouse_id)
    if warehouse is None or not warehouse.is_active:
        raise PurchasingError("choose an active warehouse", "warehouse_id")
    return supplier


def create_po(session: Session, *, supplier_id: uuid.UUID, warehouse_id: uuid.UUID,
              lines: Sequence[POLineInput], currency: str | None = None,
              order_date: dt.date | None = None, expected_date: dt.date | None = None,
              notes: str = "") -> PurchaseOrder:
    supplier = _check_parties(session, supplier_id, warehouse_id)
    currency = _currency(currency or supplier.currency)
    order_date = order_date or _today()
    if expected_date is not None and expected_date < order_date:
        raise PurchasingError("the expected date is before the order date", "expected_date")
    prepared = _po_lines(session, lines)
    year = str(order_date.year)
    po = PurchaseOrder(number=format_number("PO", next_number(session, "purchase_order", year),
                                            year),
                       supplier_id=supplier.id, warehouse_id=warehouse_id, status="pending",
                       currency=currency, order_date=order_date, expected_date=expected_date,
                       notes=notes or "", created_by=require_context().user_id)
    session.add(po)
    session.flush()
    for line in prepared:
        line.po_id = po.id
    session.add_all(prepared)
    session.flush()
    return po


def update_po(session: Session, po: PurchaseOrder, *, supplier_id: uuid.UUID,
              warehouse_id: uuid.UUID, lines: Sequence[POLineInput], currency: str | None = None,
              expected_date: dt.date | None = None, notes: str = "") -> PurchaseOrder:
    """Change a pending PO (after approval the database freezes it)."""
    _lock_po(session, po)
    if po.status != "pending":
        raise PurchasingError(f"{po.number} is {po.status_label.lower()}: only pending orders "
                              "can be changed", "lines")
    supplier = _check_parties(session, supplier_id, warehouse_id)
    prepared = _po_lines(session, lines)
    if expected_date is not None and expected_date < po.order_date:
        raise PurchasingError("the expected date is before the order date", "expected_date")
    po.supplier_id, po.warehouse_id = supplier.id, warehouse_id
    po.currency = _currency(currency or supplier.currency)
    po.expected_date, po.notes = expected_date, notes or ""
    for old in po_lines(session, po.id):
        session.delete(old)
    session.flush()
    for line in prepared:
        line.po_id = po.id
    session.add_all(prepared)
    session.flush()
    return po


def _lock_po(session: Session, po: PurchaseOrder) -> PurchaseOrder:
    session.scalar(select(PurchaseOrder).where(PurchaseOrder.id == po.id).with_for_update()
                   .execution_options(populate_existing=True))
    return po


def approve(session: Session, po: PurchaseOrder) -> PurchaseOrder:
    ctx = require_context()
    if not ctx.can("purchasing:approve"):
        raise PurchasingError("approving purchase orders needs the purchasing:approve "
                              "permission", "status")
    _lock_po(session, po)
    if po.status != "pending":
        raise PurchasingError(f"{po.number} is {po.status_label.lower()}, not pending", "status")
    po.status, po.approved_by, po.approved_at = "approved", ctx.user_id, utcnow()
    session.flush()
    return po


def mark_shipped(session: Session, po: PurchaseOrder) -> PurchaseOrder:
    _lock_po(session, po)
    if po.status != "approved":
        raise PurchasingError(f"{po.number} is {po.status_label.lower()}: only approved orders "
                              "can be marked shipped", "status")
    po.status = "shipped"
    session.flush()
    return po


def cancel(session: Session, po: PurchaseOrder) -> PurchaseOrder:
    _lock_po(session, po)
    if po.status not in ("pending", "approved", "shipped"):
        raise PurchasingError(f"{po.number} is {po.status_label.lower()}: goods have arrived, "
                              "it can no longer be cancelled", "status")
    po.status, po.cancelled_at = "cancelled", utcnow()
    session.flush()
    return po


def get_po(session: Session, po_id: uuid.UUID) -> PurchaseOrder | None:
    return session.scalar(select(PurchaseOrder).where(PurchaseOrder.id == po_id))


def po_lines(session: Session, po_id: uuid.UUID) -> list[PurchaseOrderLine]:
    return list(session.scalars(select(PurchaseOrderLine).where(PurchaseOrderLine.po_id == po_id)
                                .order_by(PurchaseOrderLine.line_no)))


def po_total(po: PurchaseOrder, lines: Sequence[PurchaseOrderLine]) -> Decimal:
    return sum((quantize(ln.quantity * ln.unit_cost, po.currency) for ln in lines), ZERO)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int


def list_pos(session: Session, *, status: str | None = None,
             supplier_id: uuid.UUID | None = None, page: int = 1, per_page: int = 50) -> Page:
    query = select(PurchaseOrder, Supplier).join(
        Supplier, (Supplier.tenant_id == PurchaseOrder.tenant_id)
        & (Supplier.id == PurchaseOrder.supplier_id))
    if status:
        query = query.where(PurchaseOrder.status == status)
    if supplier_id:
        query = query.where(PurchaseOrder.supplier_id == supplier_id)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.execute(query.order_by(PurchaseOrder.order_date.desc(),
                                          PurchaseOrder.number.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return Page([(po, supplier) for po, supplier in rows], total or 0, page, per_page)


def po_from_reorder(session: Session, event_id: uuid.UUID) -> PurchaseOrder:
    """Turn a reorder suggestion into a pending PO for the product's preferred supplier
    (reorder quantity at the last price paid to that supplier, if any)."""
    events = {e.id: (e, p) for e, p in inventory.list_reorder_events(session)}
    if event_id not in events:
        raise PurchasingError("no such open reorder suggestion", "status")
    event, product = events[event_id]
    if event.preferred_supplier_id is None:
        raise PurchasingError(f"{product.sku} has no preferred supplier: create the order by "
                              "hand", "supplier_id")
    warehouses = inventory.list_warehouses(session, active_only=True)
    if not warehouses:
        raise PurchasingError("there is no active warehouse to receive into", "warehouse_id")
    last_cost = session.scalar(
        select(PurchaseOrderLine.unit_cost)
        .join(PurchaseOrder, (PurchaseOrder.tenant_id == PurchaseOrderLine.tenant_id)
              & (PurchaseOrder.id == PurchaseOrderLine.po_id))
        .where(PurchaseOrderLine.product_id == product.id,
               PurchaseOrder.supplier_id == event.preferred_supplier_id)
        .order_by(PurchaseOrder.order_date.desc()).limit(1))
    qty = event.reorder_qty if event.reorder_qty > 0 else event.reorder_level - event.available
    po = create_po(session, supplier_id=event.preferred_supplier_id,
                   warehouse_id=warehouses[0].id,
                   lines=[POLineInput(product.id, max(qty, Decimal(1)), last_cost or ZERO)],
                   notes=f"Reorder suggestion for {product.sku}")
    inventory.set_reorder_status(session, event.id, "ordered")
    return po


# --- receiving ----------------------------------------------------------------------------


def receive(session: Session, po: PurchaseOrder, quantities: Mapping[uuid.UUID, Any], *,
            received_on: dt.date | None = None, warehouse_id: uuid.UUID | None = None,
            note: str = "") -> Receipt:
    """Receive some or all of an approved PO's open quantities."""
    _lock_po(session, po)
    if po.status not in RECEIVABLE:
        raise PurchasingError(f"{po.number} is {po.status_label.lower()}: only approved, "
                              "shipped or partially received orders can be received", "status")
    lines = {ln.id: ln for ln in session.scalars(
        select(PurchaseOrderLine).where(PurchaseOrderLine.po_id == po.id).with_for_update()
        .execution_options(populate_existing=True))}
    wanted: list[tuple[PurchaseOrderLine, Decimal]] = []
    for line_id, raw in quantities.items():
        line = lines.get(line_id)
        if line is None:
            raise PurchasingError("a line does not belong to this purchase order", "lines")
        if raw in (None, "", 0, "0"):
            continue
        qty = _number(raw, "lines", 4)
        if qty == 0:
            continue
        if qty > line.open_quantity:
            raise PurchasingError(f"line {line.line_no}: only {_fmt(line.open_quantity)} left to "
                                  f"receive, {_fmt(qty)} entered", "lines")
        wanted.append((line, qty))
    if not wanted:
        raise PurchasingError("enter a quantity for at least one line", "lines")
    warehouse_id = warehouse_id or po.warehouse_id
    received_on = received_on or _today()
    try:
        rate = ledger.rate_for(session, po.currency, received_on)
    except ledger.LedgerError as exc:
        raise PurchasingError(str(exc), "received_on") from None
    year = str(received_on.year)
    receipt = Receipt(number=format_number("GRN", next_number(session, "goods_receipt", year),
                                           year),
                      po_id=po.id, warehouse_id=warehouse_id, received_on=received_on,
                      rate=rate, note=(note or "")[:500], created_by=require_context().user_id)
    session.add(receipt)
    session.flush()
    move_lines = [inventory.MoveLine(line.product_id, warehouse_id, qty,
                                     (line.unit_cost * rate).quantize(Decimal("0.000001")))
                  for line, qty in wanted]
    try:
        result = inventory.receive(session, move_lines, counter_role="grni",
                                   description=f"Goods received {receipt.number} ({po.number})",
                                   entry_date=received_on, source_type="purchasing.receipt",
                                   source_id=receipt.id, source_ref=receipt.number)
    except inventory.InventoryError as exc:
        raise PurchasingError(str(exc), exc.field or "lines") from None
    receipt.entry_id = result.entry_id
    for (line, qty), move in zip(wanted, result.moves, strict=True):
        session.add(ReceiptLine(receipt_id=receipt.id, po_line_id=line.id,
                                product_id=line.product_id, quantity=qty,
                                unit_cost=line.unit_cost, base_value=move.value,
                                move_id=move.id))
        line.quantity_received += qty
    done = all(ln.open_quantity == 0 for ln in lines.values())
    po.status = "received" if done else "partially_received"
    session.flush()
    return receipt


def list_receipts(session: Session, po_id: uuid.UUID | None = None) -> list[Receipt]:
    query = select(Receipt).order_by(Receipt.created_at.desc())
    if po_id is not None:
        query = query.where(Receipt.po_id == po_id)
    return list(session.scalars(query.limit(200)))


def receipt_lines(session: Session, receipt_id: uuid.UUID) -> list[ReceiptLine]:
    return list(session.scalars(select(ReceiptLine).where(ReceiptLine.receipt_id == receipt_id)
                                .order_by(ReceiptLine.created_at)))


def _fmt(quantity: Decimal) -> str:
    return format(quantity.normalize(), "f")


# --- bills --------------------------------------------------------------------------------


@dataclass
class BillLineInput:
    receipt_line_id: uuid.UUID
    quantity: Decimal | str
    unit_cost: Decimal | str | None = None  # bill currency; None: the PO's price


@dataclass(frozen=True)
class OpenReceiptLine:
    line: ReceiptLine
    receipt: Receipt
    po: PurchaseOrder


def open_receipt_lines(session: Session, supplier_id: uuid.UUID) -> list[OpenReceiptLine]:
    """Received but not (fully) billed lines of a supplier: what a bill can match."""
    rows = session.execute(
        select(ReceiptLine, Receipt, PurchaseOrder)
        .join(Receipt, (Receipt.tenant_id == ReceiptLine.tenant_id)
              & (Receipt.id == ReceiptLine.receipt_id))
        .join(PurchaseOrder, (PurchaseOrder.tenant_id == Receipt.tenant_id)
              & (PurchaseOrder.id == Receipt.po_id))
        .where(PurchaseOrder.supplier_id == supplier_id,
               ReceiptLine.quantity_billed < ReceiptLine.quantity)
        .order_by(Receipt.received_on, Receipt.number, ReceiptLine.created_at)).all()
    return [OpenReceiptLine(line, receipt, po) for line, receipt, po in rows]


def create_bill(session: Session, *, supplier_id: uuid.UUID, supplier_ref: str,
                bill_date: dt.date, lines: Sequence[BillLineInput], tax: Decimal | str = ZERO,
                due_date: dt.date | None = None) -> Bill:
    """Record and post a supplier bill matched to receipt lines (accounts payable)."""
    supplier = get_supplier(session, supplier_id)
    if supplier is None:
        raise PurchasingError("no such supplier", "supplier_id")
    supplier_ref = (supplier_ref or "").strip()
    if not supplier_ref or len(supplier_ref) > 60:
        raise PurchasingError("enter the supplier's invoice number (at most 60 characters)",
                              "supplier_ref")
    if session.scalar(select(Bill.number).where(Bill.supplier_id == supplier.id,
                                                Bill.supplier_ref == supplier_ref)):
        raise PurchasingError(f"invoice {supplier_ref} of {supplier.name} is already recorded",
                              "supplier_ref")
    due_date = due_date or bill_date + dt.timedelta(days=supplier.payment_terms_days)
    if due_date < bill_date:
        raise PurchasingError("the due date is before the bill date", "due_date")
    if not lines:
        raise PurchasingError("match the bill to at least one received line", "lines")
    matched = _match(session, supplier, lines)
    currency = matched[0][1].currency
    tax_amount = _number(tax or 0, "tax", CURRENCIES[currency])
    subtotal = sum((amount for *_, amount in matched), ZERO)
    total = subtotal + tax_amount
    if total <= 0:
        raise PurchasingError("the bill total must be greater than zero", "lines")
    try:
        rate = ledger.rate_for(session, currency, bill_date)
        base = ledger.base_currency(session)
        roles = ledger.accounts_for(session, "grni", "payables", "purchase_variance",
                                    "tax_receivable")
    except ledger.LedgerError as exc:
        raise PurchasingError(str(exc), "bill_date") from None

    cleared_total = ZERO
    bill_lines = []
    for (receipt_line, _po, qty, cost, amount) in matched:
        if qty == receipt_line.open_quantity:
            cleared = receipt_line.base_value - receipt_line.billed_base_value
        else:
            cleared = quantize(receipt_line.base_value * qty / receipt_line.quantity, base)
        cleared_total += cleared
        receipt_line.quantity_billed += qty
        receipt_line.billed_base_value += cleared
        bill_lines.append(BillLine(receipt_line_id=receipt_line.id, quantity=qty,
                                   unit_cost=cost, amount=amount, cleared_base_value=cleared))
    payable_base = quantize(total * rate, base)
    tax_base = quantize(tax_amount * rate, base)
    variance = payable_base - tax_base - cleared_total
    partner = {"partner_type": "purchasing.supplier", "partner_id": supplier.id}
    year = str(bill_date.year)
    number = format_number("BILL", next_number(session, "supplier_bill", year), year)
    entry_lines = []
    if cleared_total:
        entry_lines.append(ledger.LineInput(roles["grni"].id, debit=cleared_total,
                                            description="Goods received, now invoiced"))
    if variance:
        entry_lines.append(ledger.LineInput(
            roles["purchase_variance"].id, debit=max(variance, ZERO),
            credit=max(-variance, ZERO), description="Price and exchange rate difference"))
    if tax_amount:
        entry_lines.append(ledger.LineInput(roles["tax_receivable"].id, debit=tax_amount,
                                            currency=currency, rate=rate,
                                            description="Input tax", **partner))
    entry_lines.append(ledger.LineInput(roles["payables"].id, credit=total, currency=currency,
                                        rate=rate, description=f"{supplier.name} {supplier_ref}",
                                        **partner))
    bill = Bill(id=new_id(), number=number, supplier_id=supplier.id, supplier_ref=supplier_ref,
                bill_date=bill_date, due_date=due_date, currency=currency, rate=rate,
                subtotal=subtotal, tax=tax_amount, total=total,
                created_by=require_context().user_id)
    try:
        entry = ledger.post_entry(session, entry_date=bill_date,
                                  description=f"Supplier bill {number} ({supplier.name} "
                                              f"{supplier_ref})",
                                  lines=entry_lines, source_type="purchasing.bill",
                                  source_id=bill.id)
    except ledger.LedgerError as exc:
        raise PurchasingError(str(exc), "bill_date") from None
    bill.entry_id = entry.id
    session.add(bill)
    session.flush()
    for line in bill_lines:
        line.bill_id = bill.id
    session.add_all(bill_lines)
    session.flush()
    return bill


def _match(session: Session, supplier: Supplier, lines: Sequence[BillLineInput]
           ) -> list[tuple[ReceiptLine, PurchaseOrder, Decimal, Decimal, Decimal]]:
    ids = [ln.receipt_line_id for ln in lines]
    if len(set(ids)) != len(ids):
        raise PurchasingError("a received line appears twice on the bill", "lines")
    found = {rl.id: (rl, po) for rl, po in session.execute(
        select(ReceiptLine, PurchaseOrder)
        .join(Receipt, (Receipt.tenant_id == ReceiptLine.tenant_id)
              & (Receipt.id == ReceiptLine.receipt_id))
        .join(PurchaseOrder, (PurchaseOrder.tenant_id == Receipt.tenant_id)
              & (PurchaseOrder.id == Receipt.po_id))
        .where(ReceiptLine.id.in_(ids))
        .order_by(ReceiptLine.id)
        .with_for_update(of=ReceiptLine)
        .execution_options(populate_existing=True)).all()}
    matched = []
    currency = None
    for number, line in enumerate(lines, start=1):
        if line.receipt_line_id not in found:
            raise PurchasingError(f"line {number}: no such received line", "lines")
        receipt_line, po = found[line.receipt_line_id]
        if po.supplier_id != supplier.id:
            raise PurchasingError(f"line {number}: received from another supplier", "lines")
        if currency is not None and po.currency != currency:
            raise PurchasingError("all lines of a bill must be in one currency", "lines")
        currency = po.currency
        try:
            qty = inventory.parse_decimal(line.quantity, "lines", 4, positive=True)
            cost = (receipt_line.unit_cost if line.unit_cost in (None, "")
                    else inventory.parse_decimal(line.unit_cost, "lines", 6))
        except inventory.InventoryError as exc:
            raise PurchasingError(f"line {number}: {exc}", "lines") from None
        if qty > receipt_line.open_quantity:
            raise PurchasingError(f"line {number}: only {_fmt(receipt_line.open_quantity)} "
                                  "received and not yet billed", "lines")
        matched.append((receipt_line, po, qty, cost, quantize(qty * cost, po.currency)))
    return matched


def list_bills(session: Session, limit: int = 200) -> list[tuple[Bill, Supplier]]:
    rows = session.execute(
        select(Bill, Supplier).join(Supplier, (Supplier.tenant_id == Bill.tenant_id)
                                    & (Supplier.id == Bill.supplier_id))
        .order_by(Bill.bill_date.desc(), Bill.number.desc()).limit(limit)).all()
    return [(b, s) for b, s in rows]


def get_bill(session: Session, bill_id: uuid.UUID) -> Bill | None:
    return session.scalar(select(Bill).where(Bill.id == bill_id))


def bill_lines(session: Session, bill_id: uuid.UUID) -> list[BillLine]:
    return list(session.scalars(select(BillLine).where(BillLine.bill_id == bill_id)
                                .order_by(BillLine.created_at)))
