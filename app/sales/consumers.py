"""The sales steps of quote-to-cash, as outbox consumers.

``crm.deal.won`` or ``sales.quote.accepted`` -> sales order, credit check and
reservations -> ``sales.order.confirmed`` -> (automatic delivery where the tenant
turned it on) -> ``sales.delivery.done``.

Each handler runs in the dispatcher's transaction together with its inbox row, so
its effect, the order's state and the next outbox row commit together. Behind the
inbox, the natural keys make a repeated message harmless: one order per quote and
per deal (both UNIQUE), and an order that is no longer waiting is not confirmed
again.

A refused confirmation (credit limit, not enough stock) is an outcome, not a
failure: the complete order is kept as On hold / Waiting for stock with nothing
reserved, and an exception for a person is recorded under ``HOLD_CONSUMER`` in
the same transaction. Its retry publishes ``sales.order.confirmation_retry``,
whose consumer tries the confirmation again and resolves or re-opens that
exception. A won deal without a quote writes nothing and raises NeedsAttention
naming the deal; once a quote is sent, the exception's retry makes the order.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.events import services as events
from app.events.models import OutboxEvent, WorkException
from app.events.services import NeedsAttention, publish
from workers.dispatch import consumer

from . import services as sales
from .models import SalesOrder

HOLD_CONSUMER = "sales.order_confirmation"
CONFIRMATION_RETRY = "sales.order.confirmation_retry"


def _uuid(payload: dict[str, Any], key: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(payload.get(key)))
    except ValueError:
        raise NeedsAttention(f"the event has no valid {key}", payload=payload) from None


def settle_hold(session: Session, order: SalesOrder, outcome: sales.Confirmation,
                event: OutboxEvent | None = None) -> None:
    """Record a refused confirmation for a person, or resolve earlier ones of the
    order once it is no longer waiting."""
    if outcome.status in ("on_hold", "waiting_for_stock"):
        if event is None:
            event = _hold_event(session, order.id)
        if event is not None:
            events.record_exception(
                session, consumer=HOLD_CONSUMER, event=event, kind="attention",
                reason=f"order {order.number}: {outcome.reason}",
                context={"order_id": str(order.id), "order_number": order.number,
                         "status": outcome.status, "sku": outcome.sku})
        return
    session.execute(
        update(WorkException)
        .where(WorkException.consumer == HOLD_CONSUMER, WorkException.status != "resolved",
               WorkException.context["order_id"].astext == str(order.id))
        .values(status="resolved", resolved_at=func.now(), updated_at=func.now()))


def _hold_event(session: Session, order_id: uuid.UUID) -> OutboxEvent | None:
    """The event an order's hold exception was first recorded under."""
    event_id = session.scalar(
        select(WorkException.event_id)
        .where(WorkException.consumer == HOLD_CONSUMER,
               WorkException.context["order_id"].astext == str(order_id))
        .order_by(WorkException.created_at).limit(1))
    if event_id is None:
        return None
    return session.scalar(select(OutboxEvent).where(OutboxEvent.id == event_id))


def try_confirm(session: Session, order: SalesOrder, event: OutboxEvent | None = None
                ) -> sales.Confirmation:
    """Confirm (credit, reservations) and keep the exceptions queue in step: what
    consumers and the portal's "try again" both call."""
    outcome = sales.confirm_order(session, order)
    settle_hold(session, order, outcome, event)
    return outcome


@consumer("sales.order_from_deal", "crm.deal.won")
def order_from_won_deal(session: Session, event: OutboxEvent) -> None:
    deal_id = _uuid(event.payload, "deal_id")
    if sales.order_for_deal(session, deal_id) is not None:
        return  # made already (by this message earlier, or from the accepted quote)
    quote = sales.latest_quote_for_deal(session, deal_id)
    if quote is None:
        raise NeedsAttention(
            f"deal {deal_id} was won but has no sent or accepted quote, so no sales order "
            "was made: send the customer a quote for the deal, then retry",
            deal_id=str(deal_id), account_id=event.payload.get("account_id"),
            value=event.payload.get("value"), currency=event.payload.get("currency"))
    if sales.order_for_quote(session, quote.id) is not None:
        return
    try:
        if quote.status == "sent":
            sales.accept_quote(session, quote, publish_event=False)
        order = sales.create_order_from_quote(session, quote, deal_id=deal_id)
    except sales.SalesError as exc:
        raise NeedsAttention(f"deal {deal_id}: {exc}", deal_id=str(deal_id),
                             quote=quote.number) from None
    try_confirm(session, order, event)


@consumer("sales.order_from_quote", sales.QUOTE_ACCEPTED)
def order_from_accepted_quote(session: Session, event: OutboxEvent) -> None:
    quote = sales.get_quote(session, _uuid(event.payload, "quote_id"))
    if quote is None or quote.status != "accepted":
        return
    if sales.order_for_quote(session, quote.id) is not None:
        return
    if quote.source_deal_id and sales.order_for_deal(session, quote.source_deal_id):
        return  # the won deal made the order from an earlier quote
    try:
        order = sales.create_order_from_quote(session, quote)
    except sales.SalesError as exc:
        raise NeedsAttention(f"quote {quote.number}: {exc}", quote=quote.number) from None
    try_confirm(session, order, event)


@consumer("sales.retry_confirmation", CONFIRMATION_RETRY)
def retry_confirmation(session: Session, event: OutboxEvent) -> None:
    order = sales.get_order(session, _uuid(event.payload, "order_id"))
    if order is not None:
        try_confirm(session, order)


def _retry_hold(session: Session, item: WorkException) -> None:
    publish(session, CONFIRMATION_RETRY, {"order_id": item.context.get("order_id")},
            causation_id=item.event_id)


events.RETRY_HANDLERS[HOLD_CONSUMER] = _retry_hold


def _auto_deliver_on(session: Session, _event: OutboxEvent) -> bool:
    return sales.auto_deliver_enabled(session)


@consumer("sales.auto_deliver", sales.ORDER_CONFIRMED, applies=_auto_deliver_on)
def auto_deliver(session: Session, event: OutboxEvent) -> None:
    order = sales.get_order(session, _uuid(event.payload, "order_id"))
    if order is None or order.status not in sales.OPEN_ORDER_STATES:
        return
    try:
        sales.deliver_everything(session, order, automatic=True)
    except sales.SalesError as exc:
        raise NeedsAttention(f"order {order.number} could not be delivered automatically: "
                             f"{exc}", order_id=str(order.id)) from None
