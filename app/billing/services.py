"""Billing services: invoices from deliveries, credit notes, payments, allocation,
receivables aging.

Ledger postings (all through ``app.ledger.services``, in the caller's transaction):

* invoice: debit receivables (document currency at the invoice's rate, partner =
  the customer), credit sales and sales tax payable. Revenue and tax are posted in
  base currency, each tax line rounded on its own and revenue taking the rest, so
  the entry balances to the cent whatever the rate.
* credit note: the exact reversal of the invoice's entry.
* payment: debit bank, credit receivables, for the whole amount at the payment's
  rate. An overpayment therefore stays on the receivables account as the
  customer's credit until it is allocated.
* allocation: no entry when the rates agree; otherwise the realised exchange
  difference between the invoice's and the payment's rate (fx gain or loss against
  receivables), so a fully paid invoice leaves nothing on receivables.

Services never commit; they raise ``BillingError`` (a ValueError) for bad input.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crm.models import Account
from app.db import new_id
from app.events.services import publish
from app.ledger import services as ledger
from app.money import CURRENCIES, quantize
from app.sales import services as sales
from app.sales.models import Delivery
from tenants.context import require_context
from tenants.services import format_number, next_number

from .models import CreditNote, Invoice, InvoiceLine, InvoiceTax, Payment, PaymentAllocation

ZERO = Decimal(0)
INVOICE_ISSUED = "billing.invoice.issued"
INVOICE_PAID = "billing.invoice.paid"
CREDIT_NOTE_ISSUED = "billing.credit_note.issued"
PAYMENT_RECEIVED = "billing.payment.received"
OPEN_STATES = ("unpaid", "partially_paid")
PARTNER = "crm.account"
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


class BillingError(ValueError):
    """Refused input; the message is a sentence for the user, ``field`` its form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _ledger(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except ledger.LedgerError as exc:
        raise BillingError(str(exc), exc.field) from None


def _status(invoice: Invoice) -> str:
    if invoice.status == "void":
        return "void"
    if invoice.open_amount == 0:
        return "paid"
    return "partially_paid" if invoice.amount_paid > 0 else "unpaid"


# --- invoices -----------------------------------------------------------------------------


def invoice_for_delivery(session: Session, delivery_id: uuid.UUID) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.delivery_id == delivery_id))


def issue_invoice(session: Session, delivery: Delivery, *, on: dt.date | None = None
                  ) -> Invoice:
    """Invoice what one delivery shipped, post it and publish
    ``billing.invoice.issued``. One invoice per delivery: a second call returns the
    first invoice unchanged (the natural key is also UNIQUE in the database)."""
    existing = invoice_for_delivery(session, delivery.id)
    if existing is not None:
        return existing
    order = sales.get_order(session, delivery.order_id)
    assert order is not None
    account = session.get(Account, (order.tenant_id, order.account_id))
    assert account is not None
    when = on or delivery.delivered_on
    rate = _ledger(ledger.rate_for, session, order.currency, when)
    year = str(when.year)
    number = format_number("INV", next_number(session, "invoice", year), year)
    invoice = Invoice(id=new_id(), number=number,
                      account_id=account.id, sales_order_id=order.id, delivery_id=delivery.id,
                      status="unpaid", invoice_date=when,
                      due_date=when + dt.timedelta(days=account.payment_terms_days),
                      currency=order.currency, rate=rate, subtotal=ZERO, tax_total=ZERO,
                      total=ZERO, created_by=require_context().user_id)
    lines = []
    for number, (shipped, line) in enumerate(sales.delivery_lines(session, delivery.id),
                                             start=1):
        net, tax = sales.line_amounts(shipped.quantity, line.unit_price, line.discount_pct,
                                      line.tax_rate, order.currency)
        lines.append(InvoiceLine(line_no=number, order_line_id=line.id,
                                 product_id=line.product_id, description=line.description,
                                 quantity=shipped.quantity, unit_price=line.unit_price,
                                 discount_pct=line.discount_pct, tax_rate=line.tax_rate,
                                 net_amount=net, tax_amount=tax))
    invoice.subtotal, invoice.tax_total, invoice.total = sales.document_totals(lines)
    if invoice.total <= 0:
        raise BillingError(f"delivery {delivery.number} has nothing to invoice (total 0)")
    taxes: dict[Decimal, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for line in lines:
        taxes[line.tax_rate][0] += line.net_amount
        taxes[line.tax_rate][1] += line.tax_amount
    invoice.entry_id = _post_invoice(session, invoice, account, taxes).id
    session.add(invoice)
    session.flush()
    for line in lines:
        line.invoice_id = invoice.id
    session.add_all(lines)
    session.add_all(InvoiceTax(invoice_id=invoice.id, tax_rate=r, base_amount=b, tax_amount=t)
                    for r, (b, t) in sorted(taxes.items()))
    session.flush()
    sales.mark_invoiced(session, order.id)
    publish(session, INVOICE_ISSUED, {
        "invoice_id": str(invoice.id), "number": invoice.number,
        "account_id": str(account.id), "sales_order_id": str(order.id),
        "currency": invoice.currency, "total": str(invoice.total),
        "due_date": invoice.due_date.isoformat()})
    return invoice


def _post_invoice(session: Session, invoice: Invoice, account: Account,
                  taxes: dict[Decimal, list[Decimal]]) -> Any:
    base = ledger.base_currency(session)
    roles = _ledger(ledger.accounts_for, session, "receivables", "sales", "tax_payable")
    base_total = quantize(invoice.total * invoice.rate, base)
    tax_lines = []
    for tax_rate, (_net, tax) in sorted(taxes.items()):
        base_tax = quantize(tax * invoice.rate, base)
        if base_tax:
            tax_lines.append(ledger.LineInput(roles["tax_payable"].id, credit=base_tax,
                                              description=f"Tax {tax_rate.normalize():f}%"))
    revenue = base_total - sum((ln.credit for ln in tax_lines), ZERO)  # type: ignore[misc]
    lines = [ledger.LineInput(roles["receivables"].id, debit=invoice.total,
                              currency=invoice.currency, rate=invoice.rate,
                              description=f"Invoice {invoice.number}", partner_type=PARTNER,
                              partner_id=account.id)]
    if revenue:
        lines.append(ledger.LineInput(roles["sales"].id, credit=revenue,
                                      description=f"Invoice {invoice.number}"))
    lines.extend(tax_lines)
    return _ledger(ledger.post_entry, session, entry_date=invoice.invoice_date,
                   description=f"Invoice {invoice.number} to {account.name}", lines=lines,
                   source_type="billing.invoice", source_id=invoice.id)


def get_invoice(session: Session, invoice_id: uuid.UUID, *, lock: bool = False
                ) -> Invoice | None:
    query = select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def invoice_lines(session: Session, invoice_id: uuid.UUID) -> list[InvoiceLine]:
    return list(session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id)
                                .order_by(InvoiceLine.line_no)))


def invoice_taxes(session: Session, invoice_id: uuid.UUID) -> list[InvoiceTax]:
    return list(session.scalars(select(InvoiceTax).where(InvoiceTax.invoice_id == invoice_id)
                                .order_by(InvoiceTax.tax_rate)))


def invoices_for_order(session: Session, order_id: uuid.UUID) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(Invoice.sales_order_id == order_id)
                                .order_by(Invoice.number)))


def list_invoices(session: Session, *, status: str | None = None,
                  account_id: uuid.UUID | None = None, limit: int = 200
                  ) -> list[tuple[Invoice, str]]:
    query = (select(Invoice, Account.name).join(Account, Account.id == Invoice.account_id)
             .order_by(Invoice.number.desc()).limit(limit))
    if status:
        query = query.where(Invoice.status == status)
    if account_id:
        query = query.where(Invoice.account_id == account_id)
    return [(i, name) for i, name in session.execute(query)]


def open_invoices(session: Session, account_id: uuid.UUID, currency: str | None = None
                  ) -> list[Invoice]:
    """The account's invoices with something left to pay, oldest due first."""
    query = (select(Invoice).where(Invoice.account_id == account_id,
                                   Invoice.status.in_(OPEN_STATES))
             .order_by(Invoice.due_date, Invoice.number))
    if currency:
        query = query.where(Invoice.currency == currency)
    return list(session.scalars(query))


def open_receivables_base(session: Session, account_id: uuid.UUID) -> Decimal:
    """Open invoice balances of one account in base currency, at the invoices' rates."""
    base = ledger.base_currency(session)
    return sum((quantize(i.open_amount * i.rate, base)
                for i in open_invoices(session, account_id)), ZERO)


# --- credit notes -------------------------------------------------------------------------


def issue_credit_note(session: Session, invoice: Invoice, *, reason: str = "",
                      on: dt.date | None = None) -> CreditNote:
    """Credit an unpaid invoice in full: its ledger entry is reversed and it becomes
    void. An invoice with payments allocated is refused (credit notes here cancel a
    whole invoice; move the payment to other invoices first)."""
    invoice = get_invoice(session, invoice.id, lock=True) or invoice
    if invoice.status == "void":
        raise BillingError(f"invoice {invoice.number} is already void", "invoice_id")
    if invoice.amount_paid > 0:
        raise BillingError(f"invoice {invoice.number} has payments allocated "
                           f"({invoice.amount_paid:,.2f} {invoice.currency}): a credit note "
                           "cancels a whole unpaid invoice", "invoice_id")
    when = on or sales.today()
    if when < invoice.invoice_date:
        raise BillingError("the credit note cannot be dated before the invoice", "credit_date")
    entry = ledger.get_entry(session, invoice.entry_id)
    assert entry is not None
    year = str(when.year)
    note = CreditNote(number=format_number("CN", next_number(session, "credit_note", year),
                                           year),
                      invoice_id=invoice.id, account_id=invoice.account_id, credit_date=when,
                      currency=invoice.currency, subtotal=invoice.subtotal,
                      tax_total=invoice.tax_total, total=invoice.total,
                      reason=(reason or "").strip(), created_by=require_context().user_id)
    reversal = _ledger(ledger.reverse, session, entry, when,
                       f"Credit note {note.number} for invoice {invoice.number}")
    note.entry_id = reversal.id
    session.add(note)
    invoice.amount_credited = invoice.total
    invoice.status = "void"
    session.flush()
    publish(session, CREDIT_NOTE_ISSUED, {"credit_note_id": str(note.id),
                                          "invoice_id": str(invoice.id),
                                          "number": note.number, "total": str(note.total)})
    return note


def get_credit_note(session: Session, note_id: uuid.UUID) -> CreditNote | None:
    return session.scalar(select(CreditNote).where(CreditNote.id == note_id))


def list_credit_notes(session: Session, limit: int = 200) -> list[CreditNote]:
    return list(session.scalars(select(CreditNote).order_by(CreditNote.number.desc())
                                .limit(limit)))


# --- payments -----------------------------------------------------------------------------


@dataclass
class AllocationRequest:
    invoice_id: uuid.UUID
    amount: Decimal


def record_payment(session: Session, *, account_id: Any, amount: Any, currency: str | None,
                   received_on: dt.date | None = None, reference: str = "",
                   allocations: Sequence[AllocationRequest] | None = None) -> Payment:
    """Record money received and post it (bank against receivables).

    With ``allocations`` they are applied now; without, ``billing.payment.received``
    asks the allocation consumer to apply the money to the customer's oldest open
    invoices. Whatever is not allocated stays as the customer's credit.
    """
    account = sales.get_account(session, account_id)
    currency = sales._currency(currency, account.currency)
    try:
        value = sales._decimal(amount, "amount", 4, positive=True)
    except sales.SalesError as exc:
        raise BillingError(str(exc), "amount") from None
    if value != quantize(value, currency):
        raise BillingError(f"{currency} amounts have at most {CURRENCIES[currency]} "
                           "decimal places", "amount")
    when = received_on or sales.today()
    rate = _ledger(ledger.rate_for, session, currency, when)
    year = str(when.year)
    payment = Payment(id=new_id(),
                      number=format_number("PAY", next_number(session, "payment", year), year),
                      account_id=account.id, received_on=when, currency=currency, rate=rate,
                      amount=value, allocated=ZERO, reference=(reference or "").strip()[:100],
                      created_by=require_context().user_id)
    roles = _ledger(ledger.accounts_for, session, "bank", "receivables")
    entry = _ledger(
        ledger.post_entry, session, entry_date=when,
        description=f"Payment {payment.number} from {account.name}",
        lines=[ledger.LineInput(roles["bank"].id, debit=value, currency=currency, rate=rate,
                                description=payment.reference),
               ledger.LineInput(roles["receivables"].id, credit=value, currency=currency,
                                rate=rate, description=f"Payment {payment.number}",
                                partner_type=PARTNER, partner_id=account.id)],
        source_type="billing.payment", source_id=payment.id)
    payment.entry_id = entry.id
    session.add(payment)
    session.flush()
    for request in allocations or ():
        allocate(session, payment, request.invoice_id, request.amount)
    publish(session, PAYMENT_RECEIVED, {"payment_id": str(payment.id),
                                        "account_id": str(account.id),
                                        "amount": str(value), "currency": currency,
                                        "auto_allocate": not allocations})
    return payment


def get_payment(session: Session, payment_id: uuid.UUID, *, lock: bool = False
                ) -> Payment | None:
    query = select(Payment).where(Payment.id == payment_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def list_payments(session: Session, limit: int = 200) -> list[tuple[Payment, str]]:
    rows = session.execute(select(Payment, Account.name)
                           .join(Account, Account.id == Payment.account_id)
                           .order_by(Payment.number.desc()).limit(limit))
    return [(p, name) for p, name in rows]


def allocations_of(session: Session, *, payment_id: uuid.UUID | None = None,
                   invoice_id: uuid.UUID | None = None) -> list[PaymentAllocation]:
    query = select(PaymentAllocation).order_by(PaymentAllocation.created_at)
    if payment_id:
        query = query.where(PaymentAllocation.payment_id == payment_id)
    if invoice_id:
        query = query.where(PaymentAllocation.invoice_id == invoice_id)
    return list(session.scalars(query))


def allocate(session: Session, payment: Payment, invoice_id: uuid.UUID, amount: Any
             ) -> PaymentAllocation:
    """Apply ``amount`` of the payment to an invoice of the same customer and currency
    (partial allowed). Publishes ``billing.invoice.paid`` when the invoice is settled."""
    payment = get_payment(session, payment.id, lock=True) or payment
    invoice = get_invoice(session, invoice_id, lock=True)
    if invoice is None or invoice.account_id != payment.account_id:
        raise BillingError("no such open invoice of this customer", "invoice_id")
    if invoice.status not in OPEN_STATES:
        raise BillingError(f"invoice {invoice.number} is {invoice.status_label.lower()}",
                           "invoice_id")
    if invoice.currency != payment.currency:
        raise BillingError(f"invoice {invoice.number} is in {invoice.currency}, the payment in "
                           f"{payment.currency}", "invoice_id")
    try:
        value = sales._decimal(amount, "amount", 4, positive=True)
    except sales.SalesError as exc:
        raise BillingError(str(exc), "amount") from None
    if value > payment.unallocated:
        raise BillingError(f"only {payment.unallocated:,.2f} {payment.currency} of payment "
                           f"{payment.number} is left to allocate", "amount")
    if value > invoice.open_amount:
        raise BillingError(f"invoice {invoice.number} has only {invoice.open_amount:,.2f} "
                           f"{invoice.currency} open", "amount")
    row = session.scalar(select(PaymentAllocation).where(
        PaymentAllocation.payment_id == payment.id, PaymentAllocation.invoice_id == invoice.id))
    if row is None:
        row = PaymentAllocation(payment_id=payment.id, invoice_id=invoice.id, amount=value)
        session.add(row)
    else:
        row.amount += value
    payment.allocated += value
    invoice.amount_paid += value
    invoice.status = _status(invoice)
    session.flush()
    if invoice.rate != payment.rate:
        row.entry_id = _post_exchange_difference(session, payment, invoice, value)
    if invoice.status == "paid":
        publish(session, INVOICE_PAID, {"invoice_id": str(invoice.id),
                                        "number": invoice.number,
                                        "account_id": str(invoice.account_id)})
    return row


def _post_exchange_difference(session: Session, payment: Payment, invoice: Invoice,
                              value: Decimal) -> uuid.UUID | None:
    base = ledger.base_currency(session)
    difference = quantize(value * invoice.rate, base) - quantize(value * payment.rate, base)
    if difference == 0:
        return None
    roles = _ledger(ledger.accounts_for, session, "receivables", "fx_gain", "fx_loss")
    receivable = roles["receivables"].id
    amount = abs(difference)
    if difference > 0:  # received less in base than booked: a loss
        lines = [ledger.LineInput(roles["fx_loss"].id, debit=amount),
                 ledger.LineInput(receivable, credit=amount, partner_type=PARTNER,
                                  partner_id=invoice.account_id)]
    else:
        lines = [ledger.LineInput(receivable, debit=amount, partner_type=PARTNER,
                                  partner_id=invoice.account_id),
                 ledger.LineInput(roles["fx_gain"].id, credit=amount)]
    entry = _ledger(ledger.post_entry, session, entry_date=payment.received_on,
                    description=f"Exchange difference: payment {payment.number} on invoice "
                                f"{invoice.number}", lines=lines,
                    source_type="billing.payment_allocation", source_id=payment.id)
    return entry.id


def auto_allocate(session: Session, payment: Payment) -> list[PaymentAllocation]:
    """Apply what is left of a payment to the customer's open invoices in its
    currency, oldest due first; the rest stays as credit."""
    payment = get_payment(session, payment.id, lock=True) or payment
    made = []
    for invoice in open_invoices(session, payment.account_id, payment.currency):
        if payment.unallocated <= 0:
            break
        share = min(payment.unallocated, invoice.open_amount)
        if share > 0:
            made.append(allocate(session, payment, invoice.id, share))
    return made


def customer_credit(session: Session, account_id: uuid.UUID) -> list[Payment]:
    """Payments of the account with money not yet allocated (the customer's credit)."""
    return list(session.scalars(select(Payment).where(Payment.account_id == account_id,
                                                      Payment.allocated < Payment.amount)
                                .order_by(Payment.received_on)))


# --- aging --------------------------------------------------------------------------------


def bucket_for(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


@dataclass
class AgingRow:
    account_id: uuid.UUID
    account_name: str
    buckets: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKETS, ZERO))
    credit: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return sum(self.buckets.values(), ZERO)

    @property
    def balance(self) -> Decimal:
        return self.total - self.credit


@dataclass
class Aging:
    as_of: dt.date
    currency: str
    rows: list[AgingRow]

    @property
    def totals(self) -> dict[str, Decimal]:
        return {b: sum((r.buckets[b] for r in self.rows), ZERO) for b in BUCKETS}

    @property
    def total(self) -> Decimal:
        return sum((r.total for r in self.rows), ZERO)

    @property
    def credit(self) -> Decimal:
        return sum((r.credit for r in self.rows), ZERO)


def aging(session: Session, as_of: dt.date | None = None) -> Aging:
    """Open receivables per customer by days past due (current, 1-30, 31-60, 61-90,
    90+), in base currency at each invoice's rate; unallocated payments are shown as
    the customer's credit beside them."""
    as_of = as_of or sales.today()
    base = ledger.base_currency(session)
    rows: dict[uuid.UUID, AgingRow] = {}
    for invoice, name in session.execute(
            select(Invoice, Account.name).join(Account, Account.id == Invoice.account_id)
            .where(Invoice.status.in_(OPEN_STATES), Invoice.invoice_date <= as_of)):
        row = rows.setdefault(invoice.account_id, AgingRow(invoice.account_id, name))
        row.buckets[bucket_for((as_of - invoice.due_date).days)] += quantize(
            invoice.open_amount * invoice.rate, base)
    for payment, name in session.execute(
            select(Payment, Account.name).join(Account, Account.id == Payment.account_id)
            .where(Payment.allocated < Payment.amount, Payment.received_on <= as_of)):
        row = rows.setdefault(payment.account_id, AgingRow(payment.account_id, name))
        row.credit += quantize(payment.unallocated * payment.rate, base)
    return Aging(as_of, base, sorted(rows.values(), key=lambda r: r.account_name.lower()))
