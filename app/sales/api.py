"""``/api/v1/quotes``, ``/api/v1/sales-orders`` and ``/api/v1/deliveries``.

Every response body is built from a pydantic response model
(``Model(...).model_dump(mode="json")``: money as decimal strings, never floats),
and each route carries ``__api_doc__`` (summary, query, body and response models,
status) set by ``doc``, from which the OpenAPI document is generated. Another
tenant's id answers 404, exactly like an id that does not exist. State conflicts
(accepting a rejected quote) answer 409, invalid input 422.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from flask import jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.openapi import doc
from app.api.validation import Input, parse_body, parse_query
from app.db import db
from app.errors import ApiError
from app.money import quantize

from . import services as sales
from .models import Delivery, Quote, SalesOrder

View = Callable[..., Any]


# --- shared helpers ---------------------------------------------------------------------


def parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(404, "not found") from None


def load(get: Callable[..., Any], raw_id: str, what: str) -> Any:
    record = get(db.session, parse_id(raw_id))
    if record is None:
        raise ApiError(404, f"no such {what}")
    return record


def refused(exc: ValueError) -> ApiError:
    """A service refusal as an API error: state conflicts 409, bad input 422."""
    db.session.rollback()
    field = getattr(exc, "field", None)
    if field == "status":
        return ApiError(409, str(exc), "conflict")
    return ApiError(422, str(exc), "invalid", {field or "body": str(exc)})


def respond(model: BaseModel, status: int = 200) -> ResponseReturnValue:
    return jsonify(model.model_dump(mode="json")), status


# --- models ---------------------------------------------------------------------------------


class LineIn(Input):
    product_id: uuid.UUID
    quantity: Decimal = Field(gt=0, max_digits=19, decimal_places=4)
    unit_price: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=6)
    discount_pct: Decimal = Field(default=Decimal(0), ge=0, le=100, decimal_places=4)
    tax_rate: Decimal = Field(default=Decimal(0), ge=0, le=100, decimal_places=4)
    description: str = Field(default="", max_length=500)


class QuoteIn(Input):
    account_id: uuid.UUID
    source_deal_id: uuid.UUID | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    quote_date: dt.date | None = None
    valid_until: dt.date | None = None
    notes: str = Field(default="", max_length=5000)
    lines: list[LineIn] = Field(min_length=1, max_length=500)


class QuotePatch(Input):
    account_id: uuid.UUID | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    quote_date: dt.date | None = None
    valid_until: dt.date | None = None
    notes: str | None = Field(default=None, max_length=5000)
    lines: list[LineIn] | None = Field(default=None, min_length=1, max_length=500)


class QuoteQuery(Input):
    status: Literal["draft", "sent", "accepted", "rejected", "expired"] | None = None
    account_id: uuid.UUID | None = None
    limit: int = Field(default=100, ge=1, le=200)


class LineOut(BaseModel):
    id: uuid.UUID
    line_no: int
    product_id: uuid.UUID
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_pct: Decimal
    tax_rate: Decimal
    net_amount: Decimal
    tax_amount: Decimal


class QuoteOut(BaseModel):
    id: uuid.UUID
    number: str
    account_id: uuid.UUID
    source_deal_id: uuid.UUID | None
    status: str
    currency: str
    quote_date: dt.date
    valid_until: dt.date
    notes: str
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    sent_at: dt.datetime | None
    decided_at: dt.datetime | None
    lines: list[LineOut]


class QuoteList(BaseModel):
    items: list[QuoteOut]


class OrderLineOut(LineOut):
    warehouse_id: uuid.UUID
    reservation_id: uuid.UUID | None
    delivered_qty: Decimal


class ChainStep(BaseModel):
    step: str
    state: str
    detail: str


class OrderOut(BaseModel):
    id: uuid.UUID
    number: str
    account_id: uuid.UUID
    source_quote_id: uuid.UUID | None
    source_deal_id: uuid.UUID | None
    status: str
    hold_reason: str
    currency: str
    order_date: dt.date
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    confirmed_at: dt.datetime | None
    lines: list[OrderLineOut]
    chain: list[ChainStep]


class OrderList(BaseModel):
    items: list[OrderOut]


class OrderIn(Input):
    quote_id: uuid.UUID


class OrderQuery(Input):
    status: Literal["draft", "on_hold", "waiting_for_stock", "confirmed",
                    "partially_delivered", "delivered", "invoiced", "cancelled"] | None = None
    limit: int = Field(default=100, ge=1, le=200)


class DeliveryLineIn(Input):
    order_line_id: uuid.UUID
    quantity: Decimal = Field(gt=0, max_digits=19, decimal_places=4)


class DeliveryIn(Input):
    order_id: uuid.UUID
    warehouse_id: uuid.UUID
    lines: list[DeliveryLineIn] | None = Field(default=None, min_length=1, max_length=500)


class DeliveryQuery(Input):
    order_id: uuid.UUID | None = None
    limit: int = Field(default=100, ge=1, le=200)


class DeliveryLineOut(BaseModel):
    order_line_id: uuid.UUID
    product_id: uuid.UUID
    quantity: Decimal
    move_id: uuid.UUID


class DeliveryOut(BaseModel):
    id: uuid.UUID
    number: str
    order_id: uuid.UUID
    warehouse_id: uuid.UUID
    delivered_on: dt.date
    automatic: bool
    cogs_entry_id: uuid.UUID | None
    lines: list[DeliveryLineOut]


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


# --- serialisers ------------------------------------------------------------------------------


def money(value: Decimal, currency: str) -> Decimal:
    """Amounts are shown at the currency's minor unit, whether just computed or read
    back from a NUMERIC(19, 4) column."""
    return quantize(value, currency)


def fixed(value: Decimal, places: int) -> Decimal:
    """Quantities (4), unit prices (6) and rates (4) at their column's scale."""
    return value.quantize(Decimal(1).scaleb(-places))


def line_fields(ln: Any, currency: str) -> dict[str, Any]:
    return {"id": ln.id, "line_no": ln.line_no, "product_id": ln.product_id,
            "description": ln.description, "quantity": fixed(ln.quantity, 4),
            "unit_price": fixed(ln.unit_price, 6), "discount_pct": fixed(ln.discount_pct, 4),
            "tax_rate": fixed(ln.tax_rate, 4), "net_amount": money(ln.net_amount, currency),
            "tax_amount": money(ln.tax_amount, currency)}


def quote_out(q: Quote) -> QuoteOut:
    return QuoteOut(
        id=q.id, number=q.number, account_id=q.account_id, source_deal_id=q.source_deal_id,
        status=q.status, currency=q.currency, quote_date=q.quote_date,
        valid_until=q.valid_until, notes=q.notes, subtotal=money(q.subtotal, q.currency),
        tax_total=money(q.tax_total, q.currency), total=money(q.total, q.currency),
        sent_at=q.sent_at, decided_at=q.decided_at,
        lines=[LineOut(**line_fields(ln, q.currency))
               for ln in sales.quote_lines(db.session, q.id)])


def order_out(o: SalesOrder) -> OrderOut:
    return OrderOut(
        id=o.id, number=o.number, account_id=o.account_id, source_quote_id=o.source_quote_id,
        source_deal_id=o.source_deal_id, status=o.status, hold_reason=o.hold_reason,
        currency=o.currency, order_date=o.order_date, subtotal=money(o.subtotal, o.currency),
        tax_total=money(o.tax_total, o.currency), total=money(o.total, o.currency),
        confirmed_at=o.confirmed_at,
        lines=[OrderLineOut(**line_fields(ln, o.currency), warehouse_id=ln.warehouse_id,
                            reservation_id=ln.reservation_id,
                            delivered_qty=fixed(ln.delivered_qty, 4))
               for ln in sales.order_lines(db.session, o.id)],
        chain=[ChainStep(step=a, state=b, detail=c)
               for a, b, c in sales.chain_position(db.session, o)])


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id, number=d.number, order_id=d.order_id, warehouse_id=d.warehouse_id,
        delivered_on=d.delivered_on, automatic=d.automatic, cogs_entry_id=d.entry_id,
        lines=[DeliveryLineOut(order_line_id=ln.order_line_id, product_id=ol.product_id,
                               quantity=fixed(ln.quantity, 4), move_id=ln.move_id)
               for ln, ol in sales.delivery_lines(db.session, d.id)])


def _lines(lines: list[LineIn] | None) -> list[dict[str, Any]] | None:
    return None if lines is None else [ln.model_dump() for ln in lines]


# --- quotes ------------------------------------------------------------------------------------


@bp.get("/quotes")
@doc(summary="List quotes, newest first", query=QuoteQuery, response=QuoteList)
@api_auth("sales:read")
def list_quotes() -> ResponseReturnValue:
    query = parse_query(QuoteQuery)
    rows = sales.list_quotes(db.session, status=query.status, account_id=query.account_id,
                             limit=query.limit)
    return respond(QuoteList(items=[quote_out(q) for q, _ in rows]))


@bp.post("/quotes")
@doc(summary="Create a draft quote", body=QuoteIn, response=QuoteOut, status=201)
@api_auth("sales:write")
@idempotent
def create_quote() -> ResponseReturnValue:
    body = parse_body(QuoteIn)
    data = body.model_dump()
    data["lines"] = _lines(body.lines)
    try:
        quote = sales.create_quote(db.session, data)
    except sales.SalesError as exc:
        raise refused(exc) from None
    return respond(quote_out(quote), 201)


@bp.get("/quotes/<quote_id>")
@doc(summary="One quote with its lines", response=QuoteOut)
@api_auth("sales:read")
def get_quote(quote_id: str) -> ResponseReturnValue:
    return respond(quote_out(load(sales.get_quote, quote_id, "quote")))


@bp.patch("/quotes/<quote_id>")
@doc(summary="Change a draft quote (lines replace all lines)", body=QuotePatch,
     response=QuoteOut)
@api_auth("sales:write")
def update_quote(quote_id: str) -> ResponseReturnValue:
    quote = load(sales.get_quote, quote_id, "quote")
    body = parse_body(QuotePatch)
    data = body.model_dump(exclude_unset=True)
    if body.lines is not None:
        data["lines"] = _lines(body.lines)
    try:
        sales.update_quote(db.session, quote, data)
    except sales.SalesError as exc:
        raise refused(exc) from None
    db.session.commit()
    return respond(quote_out(quote))


def _quote_action(quote_id: str, action: Callable[..., Quote]) -> ResponseReturnValue:
    quote = load(sales.get_quote, quote_id, "quote")
    try:
        action(db.session, quote)
    except sales.SalesError as exc:
        if quote.status == "expired":  # the refusal recorded the expiry: keep it
            db.session.commit()
            raise ApiError(409, str(exc), "conflict") from None
        raise refused(exc) from None
    return respond(quote_out(quote))


@bp.post("/quotes/<quote_id>/send")
@doc(summary="Mark a draft quote as sent to the customer", response=QuoteOut)
@api_auth("sales:write")
@idempotent
def send_quote(quote_id: str) -> ResponseReturnValue:
    return _quote_action(quote_id, sales.send_quote)


@bp.post("/quotes/<quote_id>/accept")
@doc(summary="The customer accepted: publishes sales.quote.accepted (an order follows)",
     response=QuoteOut)
@api_auth("sales:write")
@idempotent
def accept_quote(quote_id: str) -> ResponseReturnValue:
    return _quote_action(quote_id, sales.accept_quote)


@bp.post("/quotes/<quote_id>/reject")
@doc(summary="The customer declined", response=QuoteOut)
@api_auth("sales:write")
@idempotent
def reject_quote(quote_id: str) -> ResponseReturnValue:
    return _quote_action(quote_id, sales.reject_quote)


# --- sales orders ------------------------------------------------------------------------------


@bp.get("/sales-orders")
@doc(summary="List sales orders, newest first", query=OrderQuery, response=OrderList)
@api_auth("sales:read")
def list_orders() -> ResponseReturnValue:
    query = parse_query(OrderQuery)
    rows = sales.list_orders(db.session, status=query.status, limit=query.limit)
    return respond(OrderList(items=[order_out(o) for o, _ in rows]))


@bp.post("/sales-orders")
@doc(summary="Make the order of an accepted quote now and try to confirm it (credit "
             "check, reservations); the chain does the same on its own",
     body=OrderIn, response=OrderOut, status=201)
@api_auth("sales:write")
@idempotent
def create_order() -> ResponseReturnValue:
    from .consumers import try_confirm

    body = parse_body(OrderIn)
    quote = sales.get_quote(db.session, body.quote_id)
    if quote is None:
        raise ApiError(422, "no such quote", "invalid", {"quote_id": "no such quote"})
    try:
        order = sales.create_order_from_quote(db.session, quote)
        try_confirm(db.session, order)
    except sales.SalesError as exc:
        raise refused(exc) from None
    return respond(order_out(order), 201)


@bp.get("/sales-orders/<order_id>")
@doc(summary="One order with its lines and where it stands in quote-to-cash",
     response=OrderOut)
@api_auth("sales:read")
def get_order(order_id: str) -> ResponseReturnValue:
    return respond(order_out(load(sales.get_order, order_id, "sales order")))


@bp.post("/sales-orders/<order_id>/confirm")
@doc(summary="Try the confirmation of a waiting order again (credit, stock)",
     response=OrderOut)
@api_auth("sales:write")
@idempotent
def confirm_order(order_id: str) -> ResponseReturnValue:
    from .consumers import try_confirm

    order = load(sales.get_order, order_id, "sales order")
    try_confirm(db.session, order)
    return respond(order_out(order))


@bp.post("/sales-orders/<order_id>/cancel")
@doc(summary="Cancel an order nothing was delivered for (reservations released)",
     response=OrderOut)
@api_auth("sales:write")
@idempotent
def cancel_order(order_id: str) -> ResponseReturnValue:
    order = load(sales.get_order, order_id, "sales order")
    try:
        sales.cancel_order(db.session, order)
    except sales.SalesError as exc:
        raise refused(exc) from None
    return respond(order_out(order))


# --- deliveries --------------------------------------------------------------------------------


@bp.get("/deliveries")
@doc(summary="List deliveries, newest first", query=DeliveryQuery, response=DeliveryList)
@api_auth("sales:read")
def list_deliveries() -> ResponseReturnValue:
    query = parse_query(DeliveryQuery)
    rows = sales.list_deliveries(db.session, order_id=query.order_id, limit=query.limit)
    return respond(DeliveryList(items=[delivery_out(d) for d in rows]))


@bp.get("/deliveries/<delivery_id>")
@doc(summary="One delivery with its lines", response=DeliveryOut)
@api_auth("sales:read")
def get_delivery(delivery_id: str) -> ResponseReturnValue:
    return respond(delivery_out(load(sales.get_delivery, delivery_id, "delivery")))


@bp.post("/deliveries")
@doc(summary="Confirm a delivery from one warehouse (all open lines, or the given "
             "quantities): stock moves out, COGS is posted, invoicing follows",
     body=DeliveryIn, response=DeliveryOut, status=201)
@api_auth("inventory:write")
@idempotent
def create_delivery() -> ResponseReturnValue:
    body = parse_body(DeliveryIn)
    order = sales.get_order(db.session, body.order_id)
    if order is None:
        raise ApiError(422, "no such sales order", "invalid", {"order_id": "no such order"})
    quantities = None if body.lines is None else {
        ln.order_line_id: ln.quantity for ln in body.lines}
    try:
        delivery = sales.deliver(db.session, order, body.warehouse_id, quantities)
    except sales.SalesError as exc:
        raise refused(exc) from None
    return respond(delivery_out(delivery), 201)
