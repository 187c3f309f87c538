"""Housekeeping of the event tables, run daily by the scheduler per tenant.

``events.deliveries`` (attempt counters) grows by one row per consumer and event;
once the inbox records the event as done, its counter is only history. Rows older
than ``KEEP_DAYS`` for finished work are deleted; the outbox (the event store) and
the inbox (the idempotency record) are kept.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.events.models import OutboxEvent
from workers.dispatch import consumer
from workers.scheduler import schedule

KEEP_DAYS = 30
PRUNE_EVENT = "events.prune_due"

schedule("events.prune_deliveries", "day", PRUNE_EVENT)


@consumer("events.prune_deliveries", PRUNE_EVENT)
def prune_deliveries(session: Session, event: OutboxEvent) -> None:
    session.execute(text(
        "DELETE FROM events.deliveries d WHERE d.updated_at < now() - make_interval(days => :k)"
        " AND EXISTS (SELECT 1 FROM events.inbox i WHERE i.tenant_id = d.tenant_id"
        " AND i.consumer = d.consumer AND i.event_id = d.event_id)"), {"k": KEEP_DAYS})
