"""Writing events, and the exceptions queue's life cycle.

``publish`` is the only way business code emits an event: it adds an outbox row to
the caller's session, so the event exists exactly when the change it describes
committed. ``NeedsAttention`` is what a consumer raises when a person must act
(not enough stock, credit limit): its effect is rolled back and an exception row,
with the reason and context, is kept for the portal, where ``retry_exception``
sends the same event to the same consumer again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tenants.context import current_request_id, require_context

from .models import Delivery, OutboxEvent, WorkException

REDELIVER = "events.redeliver"


class NeedsAttention(Exception):
    """A consumer cannot proceed without a person; not retried automatically."""

    def __init__(self, reason: str, **context: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.context = context


class EventError(ValueError):
    pass


def publish(
    session: Session,
    event_type: str,
    payload: dict[str, Any] | None = None,
    *,
    correlation_id: str | None = None,
    causation_id: uuid.UUID | None = None,
) -> OutboxEvent:
    """Add an event to the caller's transaction (never sent from here).

    The correlation id defaults to the request's id, so every step a request sets
    off (and every log line of it, web or worker) can be found by one id.
    """
    require_context()
    if not event_type or "." not in event_type:
        raise EventError("event types are 'domain.name', e.g. 'crm.deal_won'")
    event = OutboxEvent(
        event_type=event_type,
        payload=payload or {},
        correlation_id=correlation_id or current_request_id() or uuid.uuid4().hex,
        causation_id=causation_id,
    )
    session.add(event)
    session.flush()
    return event


def record_exception(
    session: Session,
    *,
    consumer: str,
    event: OutboxEvent,
    kind: str,
    reason: str,
    context: dict[str, Any] | None = None,
) -> WorkException:
    """Open (or re-open) the exception for (consumer, event)."""
    existing = session.scalar(
        select(WorkException).where(WorkException.consumer == consumer,
                                    WorkException.event_id == event.id).with_for_update()
    )
    if existing is None:
        existing = WorkException(consumer=consumer, event_id=event.id,
                                 event_type=event.event_type, kind=kind, reason=reason,
                                 context=context or {}, status="open")
        session.add(existing)
    else:
        existing.kind, existing.reason = kind, reason
        existing.context = context or {}
        existing.status = "open"
        existing.resolved_at = None
        existing.occurrences = WorkException.occurrences + 1
    session.flush()
    return existing


def resolve_exception(session: Session, consumer: str, event_id: uuid.UUID) -> None:
    """Mark (consumer, event) resolved, if it was ever an exception."""
    session.execute(
        update(WorkException)
        .where(WorkException.consumer == consumer, WorkException.event_id == event_id,
               WorkException.status != "resolved")
        .values(status="resolved", resolved_at=func.now(), updated_at=func.now())
    )


# Consumers whose failures are committed bookkeeping (not rolled back) register how
# a person's "retry" restarts them; the default sends the event again.
RETRY_HANDLERS: dict[str, Callable[[Session, WorkException], None]] = {}


def retry_exception(session: Session, exception_id: uuid.UUID) -> WorkException:
    """Send the exception's event to its consumer again (through the outbox)."""
    item = session.scalar(
        select(WorkException).where(WorkException.id == exception_id).with_for_update()
    )
    if item is None:
        raise EventError("no such exception")
    if item.status == "resolved":
        raise EventError("this exception is already resolved")
    if item.consumer in RETRY_HANDLERS:
        RETRY_HANDLERS[item.consumer](session, item)
    else:
        original = session.scalar(select(OutboxEvent).where(OutboxEvent.id == item.event_id))
        redeliver(session, original, item.consumer)
    item.status = "retrying"
    session.flush()
    return item


def reset_attempts(session: Session, event_id: uuid.UUID, consumer: str | None) -> None:
    """Give (consumer, event) a fresh attempt budget: a person decided to try again,
    so earlier failures must not quarantine it at once."""
    query = delete(Delivery).where(Delivery.event_id == event_id)
    if consumer is not None:
        query = query.where(Delivery.consumer == consumer)
    session.execute(query)


def redeliver(session: Session, event: OutboxEvent, consumer: str | None) -> OutboxEvent:
    """Queue ``event`` again for one consumer (or all with None), via the outbox,
    with a fresh attempt budget."""
    reset_attempts(session, event.id, consumer)
    row = OutboxEvent(
        event_type=REDELIVER,
        payload={"event_id": str(event.id)},
        correlation_id=event.correlation_id,
        causation_id=event.id,
        target_consumer=consumer,
    )
    session.add(row)
    session.flush()
    return row


def replay(session: Session, since: dt.datetime, event_types: list[str] | None = None) -> int:
    """Re-drive consumers with the current tenant's events since ``since``.

    Each event is queued again for all its consumers; consumers that already
    processed it skip it (inbox), so a replay fills gaps (a consumer added later, a
    lost broker) without doubling anything.
    """
    query = select(OutboxEvent).where(OutboxEvent.created_at >= since,
                                      OutboxEvent.event_type != REDELIVER)
    if event_types:
        query = query.where(OutboxEvent.event_type.in_(event_types))
    count = 0
    for event in session.scalars(query.order_by(OutboxEvent.id)):
        redeliver(session, event, None)
        count += 1
    return count


def open_exceptions(session: Session, limit: int = 200) -> list[WorkException]:
    return list(session.scalars(
        select(WorkException).where(WorkException.status != "resolved")
        .order_by(WorkException.created_at.desc()).limit(limit)
    ))

