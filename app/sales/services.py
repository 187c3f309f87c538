"""Sales services: quotes, sales orders (credit check and reservations), deliveries.

Amounts are computed once, here, and stored: each line's net amount is
``quantity * unit_price * (1 - discount/100)`` rounded half-up to the document
currency's minor unit, its tax is ``net * tax_rate/100`` rounded the same way, and
the document's subtotal and tax are the sums of the rounded line amounts (so the
printed lines always add up to the printed totals, to the cent).

Confirming an order either fully happens or not at all: the credit check comes
first; then every line is reserved inside a savepoint, and if any line is short
the savepoint is rolled back, so no reservation of the attempt survives. A refused
confirmation is not an error: the order is kept, complete, as *On hold* (credit
limit) or *Waiting for stock* with the reason, and can be retried.

Services never commit; they raise ``SalesError`` (a ValueError) for bad input.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.crm.models import Account
from app.db import utcnow
from app.events.services import publish
from app.inventory import services as inventory
from app.inventory.models import Product, Warehouse
from app.ledger import services as ledger
from app.money import UnknownCurrency, quantize, validate_currency
from tenants.context import require_context
from tenants.models import Tenant
from tenants.services import format_number, next_number

from .models import (
    Delivery,
    DeliveryLine,
    Quote,
    QuoteLine,
    SalesOrder,
    SalesOrderLine,
)

ZERO = Decimal(0)
HUNDRED = Decimal(100)
QTY_PLACES = 4
PRICE_PLACES = 6
DEFAULT_VALIDITY_DAYS = 30
# Events of the chain (payloads carry ids only).
QUOTE_ACCEPTED = "sales.quote.accepted"
ORDER_CONFIRMED = "sales.order.confirmed"
DELIVERY_DONE = "sales.delivery.done"
OPEN_ORDER_STATES = ("confirmed", "partially_delivered")
WAITING_STATES = ("draft", "on_hold", "waiting_for_stock")


class SalesError(ValueError):
    """Refused input; the message is a sentence for the user, ``field`` its form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- amounts ------------------------------------------------------------------------------


def _decimal(value: Any, field_name: str, places: int, *, low: Decimal = ZERO,
             high: Decimal | None = None, positive: bool = False) -> Decimal:
    if isinstance(value, float):
        raise SalesError("use an exact decimal, not a floating point number", field_name)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise SalesError(f"{value!r} is not a number", field_name) from None
    if not number.is_finite():
        raise SalesError(f"{value!r} is not a number", field_name)
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise SalesError(f"at most {places} decimal places", field_name)
    if number < low or (positive and number == 0):
        raise SalesError("must be greater than zero" if positive else
                         f"cannot be less than {low}", field_name)
    if high is not None and number > high:
        raise SalesError(f"cannot be more than {high}", field_name)
    if abs(number) >= Decimal("1e13"):
        raise SalesError("the number is too large", field_name)
    return number


def line_amounts(quantity: Decimal, unit_price: Decimal, discount_pct: Decimal,
                 tax_rate: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """(net, tax) of one line, each rounded half-up to the currency's minor unit."""
    gross = quantity * unit_price
    net = quantize(gross - gross * discount_pct / HUNDRED, currency)
    tax = quantize(net * tax_rate / HUNDRED, currency)
    return net, tax


def document_totals(lines: Sequence[Any]) -> tuple[Decimal, Decimal, Decimal]:
    """(subtotal, tax, total): sums of the lines' rounded amounts."""
    subtotal = sum((ln.net_amount for ln in lines), ZERO)
    tax = sum((ln.tax_amount for ln in lines), ZERO)
    return subtotal, tax, subtotal + tax


@dataclass
class LineData:
    product: Product
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_pct: Decimal
    tax_rate: Decimal


def _clean_lines(session: Session, raw_lines: Sequence[dict[str, Any]], currency: str
                 ) -> list[LineData]:
    if not raw_lines:
        raise SalesError("add at least one line", "lines")
    ids = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            ids.append(uuid.UUID(str(raw.get("product_id"))))
        except ValueError:
            raise SalesError(f"line {number}: choose a product", "lines") from None
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(ids)))}
    clean = []
    for number, (raw, product_id) in enumerate(zip(raw_lines, ids, strict=True), start=1):
        where = f"line {number}"
        product = products.get(product_id)
        if product is None:
            raise SalesError(f"{where}: no such product", "lines")
        if not product.is_active:
            raise SalesError(f"{where}: {product.sku} is inactive", "lines")
        price = raw.get("unit_price")
        if price in (None, ""):
            if product.sale_price is None or (product.sale_currency or currency) != currency:
                raise SalesError(f"{where}: give a unit price for {product.sku} in {currency}",
                                 "lines")
            price = product.sale_price
        try:
            clean.append(LineData(
                product=product,
                description=str(raw.get("description") or product.name)[:500],
                quantity=_decimal(raw.get("quantity"), "quantity", QTY_PLACES, positive=True),
                unit_price=_decimal(price, "unit_price", PRICE_PLACES),
                discount_pct=_decimal(raw.get("discount_pct") or 0, "discount_pct", 4,
                                      high=HUNDRED),
                tax_rate=_decimal(raw.get("tax_rate") or 0, "tax_rate", 4, high=HUNDRED),
            ))
        except SalesError as exc:
            raise SalesError(f"{where}: {exc.field.replace('_', ' ')} {exc}",  # type: ignore[union-attr]
                             "lines") from None
    return clean


def _currency(code: str | None, default: str) -> str:
    try:
        return validate_currency(code or default)
    except UnknownCurrency as exc:
        raise SalesError(str(exc), "currency") from None


def _date(value: Any, field_name: str, default: dt.date) -> dt.date:
    if value in (None, ""):
        return default
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise SalesError("use a date like 2026-12-31", field_name) from None


def today() -> dt.date:
    return utcnow().date()


# --- quotes -------------------------------------------------------------------------------


def sellable_products(session: Session, limit: int = 1000) -> list[Product]:
    """Active products for the quote form's line rows, by SKU."""
    return list(session.scalars(select(Product).where(Product.is_active.is_(True))
                                .order_by(Product.sku).limit(limit)))


def products_by_id(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Product]:
    return {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(set(ids))))}


def get_account(session: Session, account_id: Any) -> Account:
    try:
        key = account_id if isinstance(account_id, uuid.UUID) else uuid.UUID(str(account_id))
    except ValueError:
        raise SalesError("choose an account", "account_id") from None
    account = session.scalar(select(Account).where(Account.id == key,
                                                   Account.deleted_at.is_(None)))
    if account is None:
        raise SalesError("no such account", "account_id")
    return account


def _write_quote(session: Session, quote: Quote, data: dict[str, Any]) -> Quote:
    lines = _clean_lines(session, data.get("lines") or [], quote.currency)
    for old in session.scalars(select(QuoteLine).where(QuoteLine.quote_id == quote.id)):
        session.delete(old)
    session.flush()
    rows = []
    for number, line in enumerate(lines, start=1):
        net, tax = line_amounts(line.quantity, line.unit_price, line.discount_pct,
                                line.tax_rate, quote.currency)
        rows.append(QuoteLine(quote_id=quote.id, line_no=number, product_id=line.product.id,
                              description=line.description, quantity=line.quantity,
                              unit_price=line.unit_price, discount_pct=line.discount_pct,
                              tax_rate=line.tax_rate, net_amount=net, tax_amount=tax))
    session.add_all(rows)
    quote.subtotal, quote.tax_total, quote.total = document_totals(rows)
    session.flush()
    return quote


def create_quote(session: Session, data: dict[str, Any]) -> Quote:
    """A draft quote with its gapless number (the number is taken now: a rolled-back
    creation gives it back, so the sequence has no holes)."""
    account = get_account(session, data.get("account_id"))
    quote_date = _date(data.get("quote_date"), "quote_date", today())
    valid_until = _date(data.get("valid_until"), "valid_until",
                        quote_date + dt.timedelta(days=DEFAULT_VALIDITY_DAYS))
    if valid_until < quote_date:
        raise SalesError("the quote cannot expire before its date", "valid_until")
    deal_id = data.get("source_deal_id") or None
    if deal_id is not None and not isinstance(deal_id, uuid.UUID):
        try:
            deal_id = uuid.UUID(str(deal_id))
        except ValueError:
            raise SalesError("not a deal id", "source_deal_id") from None
    year = str(quote_date.year)
    quote = Quote(number=format_number("QT", next_number(session, "quote", year), year),
                  account_id=account.id, source_deal_id=deal_id,
                  currency=_currency(data.get("currency"), account.currency),
                  quote_date=quote_date, valid_until=valid_until,
                  notes=(data.get("notes") or "").strip(), status="draft",
                  created_by=require_context().user_id)
    session.add(quote)
    session.flush()
    return _write_quote(session, quote, data)


def update_quote(session: Session, quote: Quote, data: dict[str, Any]) -> Quote:
    """Change a draft quote (terms and lines); sent and decided quotes are frozen."""
    if quote.status != "draft":
        raise SalesError(f"quote {quote.number} is {quote.status_label.lower()}: only drafts "
                         "can be changed", "status")
    if data.get("account_id"):
        quote.account_id = get_account(session, data["account_id"]).id
    if data.get("currency"):
        quote.currency = _currency(data["currency"], quote.currency)
    quote.quote_date = _date(data.get("quote_date"), "quote_date", quote.quote_date)
    quote.valid_until = _date(data.get("valid_until"), "valid_until", quote.valid_until)
    if quote.valid_until < quote.quote_date:
        raise SalesError("the quote cannot expire before its date", "valid_until")
    if "notes" in data and data["notes"] is not None:
        quote.notes = data["notes"].strip()
    if data.get("lines") is not None:
        return _write_quote(session, quote, data)
    if data.get("currency"):  # amounts are rounded to the currency: recompute
        existing = quote_lines(session, quote.id)
        return _write_quote(session, quote, {"lines": [
            {"product_id": ln.product_id, "description": ln.description,
             "quantity": ln.quantity, "unit_price": ln.unit_price,
             "discount_pct": ln.discount_pct, "tax_rate": ln.tax_rate} for ln in existing]})
    session.flush()
    return quote


def _lock_quote(session: Session, quote: Quote) -> Quote:
    session.execute(select(Quote.id).where(Quote.id == quote.id).with_for_update())
    session.refresh(quote)
    return quote


def send_quote(session: Session, quote: Quote) -> Quote:
    _lock_quote(session, quote)
    if quote.status != "draft":
        raise SalesError(f"quote {quote.number} is already {quote.status_label.lower()}",
                         "status")
    quote.status, quote.sent_at = "sent", utcnow()
    session.flush()
    return quote


def accept_quote(session: Session, quote: Quote, *, on: dt.date | None = None,
                 publish_event: bool = True) -> Quote:
    """The customer accepted: the quote is frozen and ``sales.quote.accepted`` is
    published in the same transaction (the chain makes the order from it)."""
    _lock_quote(session, quote)
    on = on or today()
    if quote.status not in ("draft", "sent"):
        raise SalesError(f"quote {quote.number} is {quote.status_label.lower()}: it cannot be "
                         "accepted", "status")
    if on > quote.valid_until:
        quote.status, quote.decided_at = "expired", utcnow()
        session.flush()
        raise SalesError(f"quote {quote.number} expired on {quote.valid_until.isoformat()}: "
                         "make a new quote", "status")
    quote.status, quote.decided_at = "accepted", utcnow()
    quote.sent_at = quote.sent_at or quote.decided_at
    session.flush()
    if publish_event:
        publish(session, QUOTE_ACCEPTED, {"quote_id": str(quote.id),
                                          "account_id": str(quote.account_id),
                                          "deal_id": str(quote.source_deal_id)
                                          if quote.source_deal_id else None})
    return quote


def reject_quote(session: Session, quote: Quote) -> Quote:
    _lock_quote(session, quote)
    if quote.status not in ("draft", "sent"):
        raise SalesError(f"quote {quote.number} is {quote.status_label.lower()}: it cannot be "
                         "rejected", "status")
    quote.status, quote.decided_at = "rejected", utcnow()
    session.flush()
    return quote


def expire_quotes(session: Session, on: dt.date) -> int:
    """Mark sent and draft quotes past their validity as expired (scheduler work)."""
    stale = list(session.scalars(select(Quote).where(Quote.status.in_(("draft", "sent")),
                                                     Quote.valid_until < on)
                                 .with_for_update()))
    for quote in stale:
        quote.status, quote.decided_at = "expired", utcnow()
    session.flush()
    return len(stale)


def get_quote(session: Session, quote_id: uuid.UUID) -> Quote | None:
    return session.scalar(select(Quote).where(Quote.id == quote_id))


def quote_lines(session: Session, quote_id: uuid.UUID) -> list[QuoteLine]:
    return list(session.scalars(select(QuoteLine).where(QuoteLine.quote_id == quote_id)
                                .order_by(QuoteLine.line_no)))


def list_quotes(session: Session, *, status: str | None = None,
                account_id: uuid.UUID | None = None, limit: int = 200
                ) -> list[tuple[Quote, str]]:
    query = (select(Quote, Account.name).join(Account, Account.id == Quote.account_id)
             .order_by(Quote.number.desc()).limit(limit))
    if status:
        query = query.where(Quote.status == status)
    if account_id:
        query = query.where(Quote.account_id == account_id)
    return [(q, name) for q, name in session.execute(query)]


def latest_quote_for_deal(session: Session, deal_id: uuid.UUID) -> Quote | None:
    """The deal's quote an order is made from: the latest accepted one, else the
    latest sent one."""
    return session.scalar(
        select(Quote).where(Quote.source_deal_id == deal_id,
                            Quote.status.in_(("accepted", "sent")))
        .order_by((Quote.status == "accepted").desc(), Quote.number.desc()).limit(1))


# --- sales orders -------------------------------------------------------------------------


def default_warehouse(session: Session) -> Warehouse:
    found = inventory.list_warehouses(session, active_only=True)
    if not found:
        raise SalesError("there is no active warehouse to ship from", "warehouse_id")
    return found[0]


def order_for_quote(session: Session, quote_id: uuid.UUID) -> SalesOrder | None:
    return session.scalar(select(SalesOrder).where(SalesOrder.source_quote_id == quote_id))


def order_for_deal(session: Session, deal_id: uuid.UUID) -> SalesOrder | None:
    return session.scalar(select(SalesOrder).where(SalesOrder.source_deal_id == deal_id))


def create_order_from_quote(session: Session, quote: Quote, *,
                            deal_id: uuid.UUID | None = None) -> SalesOrder:
    """A draft order copying an accepted quote's lines, each shipped from the default
    warehouse. One order per quote and per deal (unique keys); call
    ``confirm_order`` next."""
    if quote.status != "accepted":
        raise SalesError(f"quote {quote.number} is {quote.status_label.lower()}: only an "
                         "accepted quote becomes an order", "quote_id")
    if order_for_quote(session, quote.id) is not None:
        raise SalesError(f"quote {quote.number} already has an order", "quote_id")
    warehouse = default_warehouse(session)
    when = today()
    year = str(when.year)
    order = SalesOrder(number=format_number("SO", next_number(session, "sales_order", year),
                                            year),
                       account_id=quote.account_id, source_quote_id=quote.id,
                       source_deal_id=deal_id or quote.source_deal_id, status="draft",
                       currency=quote.currency, order_date=when, subtotal=quote.subtotal,
                       tax_total=quote.tax_total, total=quote.total,
                       created_by=require_context().user_id)
    session.add(order)
    session.flush()
    session.add_all(SalesOrderLine(
        order_id=order.id, line_no=ln.line_no, product_id=ln.product_id,
        description=ln.description, quantity=ln.quantity, unit_price=ln.unit_price,
        discount_pct=ln.discount_pct, tax_rate=ln.tax_rate, net_amount=ln.net_amount,
        tax_amount=ln.tax_amount, warehouse_id=warehouse.id)
        for ln in quote_lines(session, quote.id))
    session.flush()
    return order


def get_order(session: Session, order_id: uuid.UUID, *, lock: bool = False
              ) -> SalesOrder | None:
    query = select(SalesOrder).where(SalesOrder.id == order_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def order_lines(session: Session, order_id: uuid.UUID) -> list[SalesOrderLine]:
    return list(session.scalars(select(SalesOrderLine)
                                .where(SalesOrderLine.order_id == order_id)
                                .order_by(SalesOrderLine.line_no)))


def list_orders(session: Session, *, status: str | None = None, limit: int = 200
                ) -> list[tuple[SalesOrder, str]]:
    query = (select(SalesOrder, Account.name).join(Account, Account.id == SalesOrder.account_id)
             .order_by(SalesOrder.number.desc()).limit(limit))
    if status:
        query = query.where(SalesOrder.status == status)
    return [(o, name) for o, name in session.execute(query)]


@dataclass
class Confirmation:
    """What a confirmation attempt did: ``status`` is the order's status after it."""

    status: str
    reason: str = ""
    sku: str | None = None

    @property
    def confirmed(self) -> bool:
        return self.status == "confirmed"


def _base_amount(session: Session, amount: Decimal, currency: str, on: dt.date) -> Decimal:
    return Decimal(str(amount)) * ledger.rate_for(session, currency, on)


def open_receivables(session: Session, account_id: uuid.UUID) -> Decimal:
    """The account's open invoice balances in base currency (billing's service)."""
    from app.billing.services import open_receivables_base

    return open_receivables_base(session, account_id)


def credit_check(session: Session, order: SalesOrder) -> str | None:
    """None when the order fits the customer's credit limit, else the refusal.

    Exposure is compared in base currency: open receivables (at their invoices'
    rates) plus this order's total (at today's rate) against the limit (at today's
    rate of the account's currency). No limit set means no limit.
    """
    account = session.get(Account, (order.tenant_id, order.account_id))
    if account is None or account.credit_limit is None:
        return None
    on = today()
    base = ledger.base_currency(session)
    try:
        limit = quantize(_base_amount(session, account.credit_limit, account.currency, on), base)
        order_base = quantize(_base_amount(session, order.total, order.currency, on), base)
    except ledger.LedgerError as exc:
        return f"the credit limit cannot be checked: {exc}"
    owed = open_receivables(session, account.id)
    if owed + order_base > limit:
        return (f"credit limit exceeded for {account.name}: open receivables {owed:,.2f} "
                f"{base} + this order {order_base:,.2f} {base} is more than the limit "
                f"{limit:,.2f} {base}")
    return None


def confirm_order(session: Session, order: SalesOrder) -> Confirmation:
    """Check credit, reserve every line, and confirm: all or nothing.

    Refused confirmations leave the order complete but unreserved, as ``on_hold`` or
    ``waiting_for_stock`` with the reason; confirmed ones publish
    ``sales.order.confirmed`` in the same transaction.
    """
    order = get_order(session, order.id, lock=True) or order
    if order.status not in WAITING_STATES:
        return Confirmation(order.status)
    refusal = credit_check(session, order)
    if refusal is not None:
        order.status, order.hold_reason = "on_hold", refusal
        session.flush()
        return Confirmation("on_hold", refusal)
    lines = order_lines(session, order.id)
    savepoint = session.begin_nested()
    try:
        for line in lines:
            reservation = inventory.reserve(session, line.product_id, line.warehouse_id,
                                            line.quantity, source_type="sales.sales_order",
                                            source_id=order.id, source_ref=order.number)
            line.reservation_id = reservation.id
        session.flush()
    except inventory.NotEnoughStock as exc:
        savepoint.rollback()
        order = get_order(session, order.id, lock=True) or order
        product = session.get(Product, (order.tenant_id, line.product_id))
        reason = f"waiting for stock: {exc}"
        order.status, order.hold_reason = "waiting_for_stock", reason
        session.flush()
        return Confirmation("waiting_for_stock", reason, product.sku if product else None)
    savepoint.commit()
    order.status, order.hold_reason, order.confirmed_at = "confirmed", "", utcnow()
    session.flush()
    publish(session, ORDER_CONFIRMED, {"order_id": str(order.id), "number": order.number,
                                       "account_id": str(order.account_id)})
    return Confirmation("confirmed")


def cancel_order(session: Session, order: SalesOrder) -> SalesOrder:
    """Cancel an order nothing has left for; its reservations are released."""
    order = get_order(session, order.id, lock=True) or order
    if order.status not in (*WAITING_STATES, "confirmed"):
        raise SalesError(f"order {order.number} is {order.status_label.lower()}: it cannot be "
                         "cancelled", "status")
    for line in order_lines(session, order.id):
        if line.reservation_id is not None:
            reservation = inventory.get_reservation(session, line.reservation_id)
            if reservation is not None and reservation.status == "active":
                inventory.release(session, reservation)
    order.status, order.cancelled_at = "cancelled", utcnow()
    session.flush()
    return order


# --- deliveries ---------------------------------------------------------------------------


def auto_deliver_enabled(session: Session) -> bool:
    tenant = session.get(Tenant, require_context().tenant_id)
    return bool(tenant and (tenant.settings or {}).get("auto_deliver"))


def set_auto_deliver(session: Session, enabled: bool) -> None:
    """Turn automatic delivery on confirmation on or off (services, digital goods,
    drop shipping: nothing for a warehouse person to pick)."""
    tenant = session.get(Tenant, require_context().tenant_id)
    assert tenant is not None
    tenant.settings = {**(tenant.settings or {}), "auto_deliver": bool(enabled)}
    session.flush()


def deliver(session: Session, order: SalesOrder, warehouse_id: uuid.UUID,
            quantities: dict[uuid.UUID, Any] | None = None, *, automatic: bool = False,
            on: dt.date | None = None) -> Delivery:
    """Ship ``quantities`` (order line id -> quantity; None ships everything open) of
    the order's lines in one warehouse: stock moves out against the lines'
    reservations, COGS is posted, the order's status advances and
    ``sales.delivery.done`` is published, all in the caller's transaction."""
    order = get_order(session, order.id, lock=True) or order
    if order.status not in OPEN_ORDER_STATES:
        raise SalesError(f"order {order.number} is {order.status_label.lower()}: only "
                         "confirmed orders can be delivered", "status")
    lines = {ln.id: ln for ln in order_lines(session, order.id)}
    wanted: list[tuple[SalesOrderLine, Decimal]] = []
    if quantities is None:
        wanted = [(ln, ln.open_quantity) for ln in lines.values()
                  if ln.warehouse_id == warehouse_id and ln.open_quantity > 0]
    else:
        for line_id, raw in quantities.items():
            line = lines.get(line_id)
            if line is None or line.warehouse_id != warehouse_id:
                raise SalesError("that line is not on this order's pick list for the "
                                 "warehouse", "lines")
            if raw in (None, "", 0, "0"):
                continue
            qty = _decimal(raw, "quantity", QTY_PLACES, positive=True)
            if qty > line.open_quantity:
                raise SalesError(f"line {line.line_no}: only {line.open_quantity.normalize():f}"
                                 " left to deliver", "lines")
            wanted.append((line, qty))
    if not wanted:
        raise SalesError("nothing to deliver from this warehouse", "lines")
    when = on or today()
    year = str(when.year)
    delivery = Delivery(number=format_number("DL", next_number(session, "delivery", year),
                                             year),
                        order_id=order.id, warehouse_id=warehouse_id, delivered_on=when,
                        automatic=automatic, created_by=require_context().user_id)
    session.add(delivery)
    session.flush()
    try:
        result = inventory.deliver(
            session, [inventory.MoveLine(ln.product_id, ln.warehouse_id, qty,
                                         reservation_id=ln.reservation_id)
                      for ln, qty in wanted],
            description=f"Delivery {delivery.number} for order {order.number}",
            entry_date=when, source_type="sales.delivery", source_id=delivery.id,
            source_ref=delivery.number)
    except inventory.InventoryError as exc:
        raise SalesError(str(exc), "lines") from None
    delivery.entry_id = result.entry_id
    for (line, qty), move in zip(wanted, result.moves, strict=True):
        line.delivered_qty += qty
        session.add(DeliveryLine(delivery_id=delivery.id, order_line_id=line.id,
                                 quantity=qty, move_id=move.id))
    done = all(ln.open_quantity == 0 for ln in lines.values())
    order.status = "delivered" if done else "partially_delivered"
    session.flush()
    publish(session, DELIVERY_DONE, {"delivery_id": str(delivery.id),
                                     "order_id": str(order.id), "number": delivery.number})
    return delivery


def deliver_everything(session: Session, order: SalesOrder, *, automatic: bool = True
                       ) -> list[Delivery]:
    """One delivery per warehouse with open lines (automatic delivery)."""
    warehouses = sorted({ln.warehouse_id for ln in order_lines(session, order.id)
                         if ln.open_quantity > 0})
    return [deliver(session, order, w, automatic=automatic) for w in warehouses]


def get_delivery(session: Session, delivery_id: uuid.UUID) -> Delivery | None:
    return session.scalar(select(Delivery).where(Delivery.id == delivery_id))


def delivery_lines(session: Session, delivery_id: uuid.UUID
                   ) -> list[tuple[DeliveryLine, SalesOrderLine]]:
    rows = session.execute(
        select(DeliveryLine, SalesOrderLine)
        .join(SalesOrderLine, SalesOrderLine.id == DeliveryLine.order_line_id)
        .where(DeliveryLine.delivery_id == delivery_id).order_by(SalesOrderLine.line_no))
    return [(d, s) for d, s in rows]


def list_deliveries(session: Session, *, order_id: uuid.UUID | None = None, limit: int = 200
                    ) -> list[Delivery]:
    query = select(Delivery).order_by(Delivery.number.desc()).limit(limit)
    if order_id:
        query = query.where(Delivery.order_id == order_id)
    return list(session.scalars(query))


@dataclass
class PickLine:
    order: SalesOrder
    line: SalesOrderLine
    sku: str
    account_name: str


def pick_list(session: Session, warehouse_id: uuid.UUID) -> list[PickLine]:
    """Open lines of confirmed orders to pick in one warehouse, oldest order first."""
    rows = session.execute(
        select(SalesOrder, SalesOrderLine, Product.sku, Account.name)
        .join(SalesOrderLine, SalesOrderLine.order_id == SalesOrder.id)
        .join(Product, Product.id == SalesOrderLine.product_id)
        .join(Account, Account.id == SalesOrder.account_id)
        .where(SalesOrder.status.in_(OPEN_ORDER_STATES),
               SalesOrderLine.warehouse_id == warehouse_id,
               SalesOrderLine.delivered_qty < SalesOrderLine.quantity)
        .order_by(SalesOrder.number, SalesOrderLine.line_no))
    return [PickLine(o, ln, sku, name) for o, ln, sku, name in rows]


def mark_invoiced(session: Session, order_id: uuid.UUID) -> None:
    """Billing's call after invoicing a delivery: a fully delivered order whose
    deliveries all have invoices becomes Invoiced."""
    from app.billing.models import Invoice

    order = get_order(session, order_id, lock=True)
    if order is None or order.status != "delivered":
        return
    uninvoiced = session.scalar(
        select(func.count()).select_from(Delivery)
        .where(Delivery.order_id == order_id,
               ~select(Invoice.id).where(Invoice.delivery_id == Delivery.id).exists()))
    if uninvoiced == 0:
        order.status = "invoiced"
        session.flush()


def chain_position(session: Session, order: SalesOrder) -> list[tuple[str, str, str]]:
    """Where the order stands in quote-to-cash, step by step: (step, state, detail)."""
    from app.billing import services as billing

    lines = order_lines(session, order.id)
    ordered = sum((ln.quantity for ln in lines), ZERO)
    delivered = sum((ln.delivered_qty for ln in lines), ZERO)
    invoices = billing.invoices_for_order(session, order.id)
    open_amount = sum((i.open_amount for i in invoices if i.status != "void"), ZERO)
    reserved = all(ln.reservation_id for ln in lines) and order.status != "cancelled"
    steps = [
        ("Order", "done", f"{order.number} created {order.order_date.isoformat()}"),
        ("Credit check and reservation",
         "done" if order.confirmed_at else ("waiting" if order.status in WAITING_STATES
                                            else "skipped"),
         order.hold_reason or ("every line reserved" if reserved else "")),
        ("Delivery", "done" if ordered and delivered == ordered else
         ("partial" if delivered else "waiting"),
         f"{delivered.normalize():f} of {ordered.normalize():f} delivered"),
        ("Invoice", "done" if invoices and order.status == "invoiced" else
         ("partial" if invoices else "waiting"),
         ", ".join(i.number for i in invoices) or "none yet"),
        ("Payment", "done" if invoices and open_amount == 0 and order.status == "invoiced"
         else ("waiting" if invoices else "—"),
         f"{open_amount:,.2f} {order.currency} open" if invoices else ""),
    ]
    return steps


def set_line_warehouse(session: Session, order: SalesOrder, line_id: uuid.UUID,
                       warehouse_id: uuid.UUID) -> None:
    """Ship a line from another warehouse (only before the order is confirmed)."""
    if order.status not in WAITING_STATES:
        raise SalesError("the warehouse can only change before the order is confirmed",
                         "warehouse_id")
    warehouse = inventory.get_warehouse(session, warehouse_id)
    if warehouse is None or not warehouse.is_active:
        raise SalesError("no such active warehouse", "warehouse_id")
    line = session.scalar(select(SalesOrderLine).where(SalesOrderLine.id == line_id,
                                                       SalesOrderLine.order_id == order.id))
    if line is None:
        raise SalesError("no such line", "lines")
    line.warehouse_id = warehouse_id
    session.flush()

