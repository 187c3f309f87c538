"""The billing steps of quote-to-cash, as outbox consumers.

``sales.delivery.done`` -> invoice, ledger posting and ``billing.invoice.issued``
(which the webhooks fan out); ``billing.payment.received`` -> allocation to the
customer's oldest open invoices -> ``billing.invoice.paid`` for each one closed.
Idempotent behind the inbox by their natural keys: one invoice per delivery
(UNIQUE), and a payment allocates only what is still unallocated.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from app.events.models import OutboxEvent
from app.events.services import NeedsAttention
from app.sales import services as sales
from workers.dispatch import consumer

from . import services as billing


def _uuid(event: OutboxEvent, key: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(event.payload.get(key)))
    except ValueError:
        raise NeedsAttention(f"the event has no valid {key}", payload=event.payload) from None


@consumer("billing.invoice_delivery", sales.DELIVERY_DONE)
def invoice_delivery(session: Session, event: OutboxEvent) -> None:
    delivery = sales.get_delivery(session, _uuid(event, "delivery_id"))
    if delivery is None:
        return
    try:
        billing.issue_invoice(session, delivery)
    except billing.BillingError as exc:
        raise NeedsAttention(f"delivery {delivery.number} could not be invoiced: {exc}",
                             delivery_id=str(delivery.id)) from None


def _wants_allocation(_session: Session, event: OutboxEvent) -> bool:
    return bool(event.payload.get("auto_allocate"))


@consumer("billing.allocate_payment", billing.PAYMENT_RECEIVED, applies=_wants_allocation)
def allocate_payment(session: Session, event: OutboxEvent) -> None:
    payment = billing.get_payment(session, _uuid(event, "payment_id"))
    if payment is not None:
        billing.auto_allocate(session, payment)
