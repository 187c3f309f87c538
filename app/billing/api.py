"""``/api/v1/invoices``, ``/credit-notes``, ``/payments`` and ``/receivables/aging``.

Same conventions as ``app.sales.api``: pydantic response models, ``__api_doc__`` on
every route, 404 for another tenant's ids, 409 for state conflicts, 422 for input.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.validation import Input, parse_body, parse_query
from app.db import db
from app.errors import ApiError
from app.sales import services as sales
from app.sales.api import doc, fixed, line_fields, load, money, refused, respond

from . import services as billing
from .models import CreditNote, Invoice, Payment

# --- models -----------------------------------------------------------------------------------


class InvoiceQuery(Input):
    status: Literal["unpaid", "partially_paid", "paid", "void"] | None = None
    account_id: uuid.UUID | None = None
    limit: int = Field(default=100, ge=1, le=200)


class InvoiceLineOut(BaseModel):
    line_no: int
    product_id: uuid.UUID
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_pct: Decimal
    tax_rate: Decimal
    net_amount: Decimal
    tax_amount: Decimal


class TaxLineOut(BaseModel):
    tax_rate: Decimal
    base_amount: Decimal
    tax_amount: Decimal


class AllocationOut(BaseModel):
    payment_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: Decimal


class InvoiceOut(BaseModel):
    id: uuid.UUID
    number: str
    account_id: uuid.UUID
    sales_order_id: uuid.UUID
    delivery_id: uuid.UUID
    status: str
    invoice_date: dt.date
    due_date: dt.date
    currency: str
    rate: Decimal
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    amount_paid: Decimal
    amount_credited: Decimal
    open_amount: Decimal
    ledger_entry_id: uuid.UUID
    lines: list[InvoiceLineOut]
    taxes: list[TaxLineOut]
    allocations: list[AllocationOut]


class InvoiceList(BaseModel):
    items: list[InvoiceOut]


class InvoiceIn(Input):
    delivery_id: uuid.UUID


class CreditNoteIn(Input):
    invoice_id: uuid.UUID
    reason: str = Field(default="", max_length=2000)


class CreditNoteOut(BaseModel):
    id: uuid.UUID
    number: str
    invoice_id: uuid.UUID
    account_id: uuid.UUID
    credit_date: dt.date
    currency: str
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    reason: str
    ledger_entry_id: uuid.UUID


class CreditNoteList(BaseModel):
    items: list[CreditNoteOut]


class ListQuery(Input):
    limit: int = Field(default=100, ge=1, le=200)


class AllocationIn(Input):
    invoice_id: uuid.UUID
    amount: Decimal = Field(gt=0, max_digits=19, decimal_places=4)


class PaymentIn(Input):
    account_id: uuid.UUID
    amount: Decimal = Field(gt=0, max_digits=19, decimal_places=4)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    received_on: dt.date | None = None
    reference: str = Field(default="", max_length=100)
    # Omitted: the money goes to the oldest open invoices (by the chain); given:
    # exactly these, the rest stays as the customer's credit.
    allocations: list[AllocationIn] | None = Field(default=None, max_length=500)


class PaymentOut(BaseModel):
    id: uuid.UUID
    number: str
    account_id: uuid.UUID
    received_on: dt.date
    currency: str
    rate: Decimal
    amount: Decimal
    allocated: Decimal
    unallocated: Decimal
    reference: str
    ledger_entry_id: uuid.UUID
    allocations: list[AllocationOut]


class PaymentList(BaseModel):
    items: list[PaymentOut]


class AgingQuery(Input):
    as_of: dt.date | None = None


class AgingBuckets(BaseModel):
    current: Decimal
    days_1_30: Decimal
    days_31_60: Decimal
    days_61_90: Decimal
    days_90_plus: Decimal


class AgingRowOut(BaseModel):
    account_id: uuid.UUID
    account_name: str
    buckets: AgingBuckets
    total: Decimal
    credit: Decimal
    balance: Decimal


class AgingOut(BaseModel):
    as_of: dt.date
    currency: str
    rows: list[AgingRowOut]
    totals: AgingBuckets
    total: Decimal
    credit: Decimal


# --- serialisers ------------------------------------------------------------------------------


def _allocations(currency: str, **where: uuid.UUID) -> list[AllocationOut]:
    return [AllocationOut(payment_id=a.payment_id, invoice_id=a.invoice_id,
                          amount=money(a.amount, currency))
            for a in billing.allocations_of(db.session, **where)]


def invoice_out(i: Invoice) -> InvoiceOut:
    cur = i.currency
    return InvoiceOut(
        id=i.id, number=i.number, account_id=i.account_id, sales_order_id=i.sales_order_id,
        delivery_id=i.delivery_id, status=i.status, invoice_date=i.invoice_date,
        due_date=i.due_date, currency=cur, rate=fixed(i.rate, 10),
        subtotal=money(i.subtotal, cur), tax_total=money(i.tax_total, cur),
        total=money(i.total, cur), amount_paid=money(i.amount_paid, cur),
        amount_credited=money(i.amount_credited, cur), open_amount=money(i.open_amount, cur),
        ledger_entry_id=i.entry_id,
        lines=[InvoiceLineOut(**{k: v for k, v in line_fields(ln, cur).items() if k != "id"})
               for ln in billing.invoice_lines(db.session, i.id)],
        taxes=[TaxLineOut(tax_rate=fixed(t.tax_rate, 4), base_amount=money(t.base_amount, cur),
                          tax_amount=money(t.tax_amount, cur))
               for t in billing.invoice_taxes(db.session, i.id)],
        allocations=_allocations(cur, invoice_id=i.id))


def credit_note_out(n: CreditNote) -> CreditNoteOut:
    return CreditNoteOut(id=n.id, number=n.number, invoice_id=n.invoice_id,
                         account_id=n.account_id, credit_date=n.credit_date,
                         currency=n.currency, subtotal=money(n.subtotal, n.currency),
                         tax_total=money(n.tax_total, n.currency),
                         total=money(n.total, n.currency), reason=n.reason,
                         ledger_entry_id=n.entry_id)


def payment_out(p: Payment) -> PaymentOut:
    return PaymentOut(id=p.id, number=p.number, account_id=p.account_id,
                      received_on=p.received_on, currency=p.currency, rate=fixed(p.rate, 10),
                      amount=money(p.amount, p.currency),
                      allocated=money(p.allocated, p.currency),
                      unallocated=money(p.unallocated, p.currency), reference=p.reference,
                      ledger_entry_id=p.entry_id,
                      allocations=_allocations(p.currency, payment_id=p.id))


def _buckets(values: dict[str, Decimal], currency: str) -> AgingBuckets:
    return AgingBuckets(**{name: money(values[key], currency) for name, key in (
        ("current", "current"), ("days_1_30", "1-30"), ("days_31_60", "31-60"),
        ("days_61_90", "61-90"), ("days_90_plus", "90+"))})


# --- invoices ---------------------------------------------------------------------------------


@bp.get("/invoices")
@doc(summary="List invoices, newest first", query=InvoiceQuery, response=InvoiceList)
@api_auth("invoices:read")
def list_invoices() -> ResponseReturnValue:
    query = parse_query(InvoiceQuery)
    rows = billing.list_invoices(db.session, status=query.status,
                                 account_id=query.account_id, limit=query.limit)
    return respond(InvoiceList(items=[invoice_out(i) for i, _ in rows]))


@bp.get("/invoices/<invoice_id>")
@doc(summary="One invoice with lines, tax lines and payments", response=InvoiceOut)
@api_auth("invoices:read")
def get_invoice(invoice_id: str) -> ResponseReturnValue:
    return respond(invoice_out(load(billing.get_invoice, invoice_id, "invoice")))


@bp.post("/invoices")
@doc(summary="Invoice a delivery now (the chain does it on its own; one invoice per "
             "delivery, so asking again returns the same invoice)",
     body=InvoiceIn, response=InvoiceOut, status=201)
@api_auth("invoices:post")
@idempotent
def create_invoice() -> ResponseReturnValue:
    body = parse_body(InvoiceIn)
    delivery = sales.get_delivery(db.session, body.delivery_id)
    if delivery is None:
        raise ApiError(422, "no such delivery", "invalid", {"delivery_id": "no such delivery"})
    existing = billing.invoice_for_delivery(db.session, delivery.id)
    try:
        invoice = existing or billing.issue_invoice(db.session, delivery)
    except billing.BillingError as exc:
        raise refused(exc) from None
    return respond(invoice_out(invoice), 200 if existing else 201)


# --- credit notes -----------------------------------------------------------------------------


@bp.get("/credit-notes")
@doc(summary="List credit notes, newest first", query=ListQuery, response=CreditNoteList)
@api_auth("invoices:read")
def list_credit_notes() -> ResponseReturnValue:
    query = parse_query(ListQuery)
    return respond(CreditNoteList(items=[credit_note_out(n) for n in
                                         billing.list_credit_notes(db.session, query.limit)]))


@bp.get("/credit-notes/<note_id>")
@doc(summary="One credit note", response=CreditNoteOut)
@api_auth("invoices:read")
def get_credit_note(note_id: str) -> ResponseReturnValue:
    return respond(credit_note_out(load(billing.get_credit_note, note_id, "credit note")))


@bp.post("/credit-notes")
@doc(summary="Credit an unpaid invoice in full (its ledger entry is reversed)",
     body=CreditNoteIn, response=CreditNoteOut, status=201)
@api_auth("invoices:post")
@idempotent
def create_credit_note() -> ResponseReturnValue:
    body = parse_body(CreditNoteIn)
    invoice = billing.get_invoice(db.session, body.invoice_id)
    if invoice is None:
        raise ApiError(422, "no such invoice", "invalid", {"invoice_id": "no such invoice"})
    try:
        note = billing.issue_credit_note(db.session, invoice, reason=body.reason)
    except billing.BillingError as exc:
        exc.field = "status" if exc.field == "invoice_id" else exc.field
        raise refused(exc) from None
    return respond(credit_note_out(note), 201)


# --- payments ---------------------------------------------------------------------------------


@bp.get("/payments")
@doc(summary="List payments, newest first", query=ListQuery, response=PaymentList)
@api_auth("invoices:read")
def list_payments() -> ResponseReturnValue:
    query = parse_query(ListQuery)
    return respond(PaymentList(items=[payment_out(p) for p, _ in
                                      billing.list_payments(db.session, query.limit)]))


@bp.get("/payments/<payment_id>")
@doc(summary="One payment with its allocations", response=PaymentOut)
@api_auth("invoices:read")
def get_payment(payment_id: str) -> ResponseReturnValue:
    return respond(payment_out(load(billing.get_payment, payment_id, "payment")))


@bp.post("/payments")
@doc(summary="Record a payment (posted to bank and receivables); allocate it to the "
             "given invoices, or leave it to the chain to pay the oldest open ones",
     body=PaymentIn, response=PaymentOut, status=201)
@api_auth("payments:write")
@idempotent
def create_payment() -> ResponseReturnValue:
    body = parse_body(PaymentIn)
    requests = None if body.allocations is None else [
        billing.AllocationRequest(a.invoice_id, a.amount) for a in body.allocations]
    try:
        payment = billing.record_payment(
            db.session, account_id=body.account_id, amount=body.amount, currency=body.currency,
            received_on=body.received_on, reference=body.reference, allocations=requests)
    except (billing.BillingError, sales.SalesError) as exc:
        raise refused(exc) from None
    return respond(payment_out(payment), 201)


# --- aging ------------------------------------------------------------------------------------


@bp.get("/receivables/aging")
@doc(summary="Open receivables per customer by days past due, in base currency",
     query=AgingQuery, response=AgingOut)
@api_auth("invoices:read")
def receivables_aging() -> ResponseReturnValue:
    query = parse_query(AgingQuery)
    report = billing.aging(db.session, query.as_of)
    cur = report.currency
    out = AgingOut(as_of=report.as_of, currency=cur,
                   rows=[AgingRowOut(account_id=r.account_id, account_name=r.account_name,
                                     buckets=_buckets(r.buckets, cur),
                                     total=money(r.total, cur), credit=money(r.credit, cur),
                                     balance=money(r.balance, cur))
                         for r in report.rows],
                   totals=_buckets(report.totals, cur), total=money(report.total, cur),
                   credit=money(report.credit, cur))
    return respond(out)
