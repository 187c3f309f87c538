"""Consumers of events, and the one actor that delivers an event to them.

The relay sends one message per outbox row (message id = row id) to the
``dispatch_event`` actor. For each consumer subscribed to the event's type it:

1. skips it if the inbox already records (consumer, event): a redelivery, counted;
2. counts the attempt in its own committed transaction *before* working, so a
   delivery that kills the process is still counted, and quarantines the event for
   that consumer once attempts exceed its limit (the poison guard: Dramatiq's own
   retry counter never sees a SIGKILLed delivery);
3. runs the consumer and inserts the inbox row in one transaction: the effect and
   "done" commit together or not at all.

``NeedsAttention`` rolls the effect back and opens an exception for a person; any
other error is retried by Dramatiq with bounded, capped backoff, and consumers that
already succeeded are skipped on the retry.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
import psycopg
from sqlalchemy import select, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from app.events.models import OutboxEvent
from app.events.services import (
    REDELIVER,
    NeedsAttention,
    record_exception,
    reset_attempts,
    resolve_exception,
)

log = logging.getLogger(__name__)

Handler = Callable[[Session, OutboxEvent], None]

# Retry policy of the dispatch actor: bounded, backoff capped far below RabbitMQ's
# 30-minute consumer timeout, so a failing event reaches the poison guard in
# minutes, not weeks.
MAX_RETRIES = 6
MIN_BACKOFF_MS = 500
MAX_BACKOFF_MS = 30_000
TIME_LIMIT_MS = 120_000


Applies = Callable[[Session, OutboxEvent], bool]


@dataclass(frozen=True)
class Consumer:
    name: str
    event_types: tuple[str, ...]
    handler: Handler
    max_attempts: int = 5
    # Cheap pre-check: False means "not for me" and leaves no trace (no attempt row,
    # no inbox row), so a consumer of every event costs little where it has nothing
    # to do (webhooks of a tenant without endpoints).
    applies: Applies | None = None


CONSUMERS: dict[str, Consumer] = {}


def consumer(name: str, *event_types: str, max_attempts: int = 5,
             applies: Applies | None = None) -> Callable[[Handler], Handler]:
    """Register ``handler(session, event)`` as consumer ``name`` of ``event_types``.

    The handler must not commit; it may raise NeedsAttention. Its effect must also
    carry a natural UNIQUE key (e.g. one sales order per deal), the second line of
    defence behind the inbox.
    """

    def register(handler: Handler) -> Handler:
        if name in CONSUMERS and CONSUMERS[name].handler is not handler:
            raise ValueError(f"consumer {name!r} is registered twice")
        CONSUMERS[name] = Consumer(name, tuple(event_types), handler, max_attempts, applies)
        return handler

    return register


def consumers_of(event_type: str) -> list[Consumer]:
    """Consumers of ``event_type``; a consumer of ``"*"`` receives every type."""
    return [c for c in CONSUMERS.values()
            if event_type in c.event_types or "*" in c.event_types]


class Stats:
    """Per-process counters for /metrics and tests (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()

    def add(self, key: str, seconds: float = 0.0) -> None:
        with self._lock:
            self.counts[key] += 1
            self.seconds[key] += seconds


STATS = Stats()


class DispatchFailed(Exception):
    """Some consumer failed in a way that a later attempt may fix: retry."""


class DatabaseUnavailable(Exception):
    """The database could not be reached: retried for as long as it takes (backoff
    capped at MAX_BACKOFF_MS), because the event is committed and must not be lost."""


DB_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError,
             psycopg.InterfaceError)


def retry_when(retries: int, exception: BaseException) -> bool:
    """Dramatiq's retry policy for dispatch: a database outage is retried without
    limit; anything else up to MAX_RETRIES times, then the message is dead-lettered
    (the poison guard has quarantined it into the exceptions queue by then)."""
    return isinstance(exception, DatabaseUnavailable) or retries < MAX_RETRIES


def dispatch(session_factory: Callable[[], Session], event_id: uuid.UUID) -> dict[str, str]:
    """Deliver outbox row ``event_id`` (of the current tenant) to its consumers.

    Returns what happened per consumer; raises DispatchFailed if any consumer should
    be retried. The row is read under the tenant context: a message naming another
    tenant's event finds nothing and writes nothing.
    """
    with session_factory() as session:
        row = session.scalar(select(OutboxEvent).where(OutboxEvent.id == event_id))
        if row is None:
            log.warning("event %s is not visible to this tenant: nothing done", event_id)
            STATS.add("event_not_found")
            return {}
        if row.event_type == REDELIVER:
            original_id = uuid.UUID(row.payload["event_id"])
            event = session.scalar(select(OutboxEvent).where(OutboxEvent.id == original_id))
            if event is None:
                return {}
            targets = ([CONSUMERS[row.target_consumer]] if row.target_consumer in CONSUMERS
                       else [] if row.target_consumer else consumers_of(event.event_type))
        else:
            event, targets = row, consumers_of(row.event_type)
        session.expunge(event)
    redelivered = row.event_type == REDELIVER
    outcomes = {c.name: run_consumer(session_factory, c, event, redelivered=redelivered)
                for c in targets}
    if "retry" in outcomes.values():
        raise DispatchFailed(f"event {event.id}: {outcomes}")
    return outcomes


def run_consumer(session_factory: Callable[[], Session], c: Consumer, event: OutboxEvent,
                 *, redelivered: bool = False) -> str:
    """One consumer, one event: 'done', 'duplicate', 'skipped', 'attention',
    'quarantined' or 'retry'."""
    started = time.perf_counter()
    with session_factory() as session:
        if _already_done(session, c.name, event.id):
            STATS.add("duplicate")
            STATS.add(f"duplicate:{c.name}")
            return "duplicate"
        if c.applies is not None and not c.applies(session, event):
            session.rollback()
            return "skipped"
        # Losing this commit in a database crash loses one attempt count, nothing
        # else; not waiting for its WAL flush saves a disk sync per delivery.
        session.execute(text("SET LOCAL synchronous_commit = off"))
        attempts = session.execute(
            text("INSERT INTO events.deliveries (tenant_id, consumer, event_id, attempts)"
                 " VALUES (app.current_tenant_id(), :c, :e, 1)"
                 " ON CONFLICT (tenant_id, consumer, event_id)"
                 " DO UPDATE SET attempts = events.deliveries.attempts + 1, updated_at = now()"
                 " RETURNING attempts"),
            {"c": c.name, "e": event.id},
        ).scalar_one()
        session.commit()
        if attempts > c.max_attempts:
            record_exception(session, consumer=c.name, event=event, kind="poison",
                             reason=f"quarantined after {c.max_attempts} failed attempts",
                             context={"payload": event.payload})
            session.commit()
            STATS.add(f"quarantined:{c.name}")
            log.error("consumer %s quarantined event %s after %s attempts", c.name, event.id,
                      c.max_attempts)
            return "quarantined"

    with session_factory() as session:
        try:
            claimed = session.execute(
                text("INSERT INTO events.inbox (tenant_id, consumer, event_id)"
                     " VALUES (app.current_tenant_id(), :c, :e)"
                     " ON CONFLICT (tenant_id, consumer, event_id) DO NOTHING RETURNING id"),
                {"c": c.name, "e": event.id},
            ).scalar_one_or_none()
            if claimed is None:  # a concurrent delivery of the same event won
                session.rollback()
                STATS.add("duplicate")
                STATS.add(f"duplicate:{c.name}")
                return "duplicate"
            c.handler(session, event)
            if attempts > 1 or redelivered:  # only these can have an open exception
                resolve_exception(session, c.name, event.id)
            session.commit()
        except NeedsAttention as exc:
            session.rollback()
            record_exception(session, consumer=c.name, event=event, kind="attention",
                             reason=exc.reason, context=_jsonable(exc.context))
            # Waiting for a person is not a failure: it must not count towards the
            # poison guard when the event comes back after the retry.
            reset_attempts(session, event.id, c.name)
            session.commit()
            STATS.add(f"attention:{c.name}")
            log.warning("consumer %s needs attention for event %s: %s", c.name, event.id,
                        exc.reason)
            return "attention"
        except Exception as exc:
            session.rollback()
            session.execute(
                text("UPDATE events.deliveries SET last_error = :err, updated_at = now()"
                     " WHERE consumer = :c AND event_id = :e"),
                {"err": f"{type(exc).__name__}: {exc}"[:2000], "c": c.name, "e": event.id},
            )
            session.commit()
            STATS.add(f"failure:{c.name}", time.perf_counter() - started)
            log.exception("consumer %s failed on event %s", c.name, event.id)
            return "retry"
    STATS.add(f"success:{c.name}", time.perf_counter() - started)
    return "done"


def _already_done(session: Session, consumer_name: str, event_id: uuid.UUID) -> bool:
    return session.execute(
        text("SELECT 1 FROM events.inbox WHERE consumer = :c AND event_id = :e"),
        {"c": consumer_name, "e": event_id},
    ).first() is not None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def declare_actors(broker: dramatiq.Broker, app: Any, queue_name: str) -> dramatiq.Actor:
    """Declare the dispatch actor on ``broker`` (done at worker start, not import)."""
    from app.db import db

    def session_factory() -> Session:
        return Session(db.engine, expire_on_commit=False)

    def dispatch_event(event_id: str) -> None:
        with app.app_context():
            try:
                dispatch(session_factory, uuid.UUID(event_id))
            except DB_ERRORS as exc:
                raise DatabaseUnavailable(str(exc)) from exc

    return dramatiq.actor(
        dispatch_event,
        broker=broker,
        actor_name="dispatch_event",
        queue_name=queue_name,
        retry_when=retry_when,
        min_backoff=MIN_BACKOFF_MS,
        max_backoff=MAX_BACKOFF_MS,
        time_limit=TIME_LIMIT_MS,
    )
