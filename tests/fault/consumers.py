"""A consumer for fault-injection runs: one gapless counter increment per event, plus
a row keyed by the event id, so a doubled effect shows twice over (counter too high,
unique key violated)."""

from __future__ import annotations

import os
import time

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.events.models import OutboxEvent
from tenants import services
from workers.dispatch import consumer

SLOW_MS = float(os.environ.get("FAULT_CONSUMER_SLOW_MS", "0"))


@consumer("fault.counter", "fault.ping")
def count(session: Session, event: OutboxEvent) -> None:
    number = services.next_number(session, "fault")
    if SLOW_MS:
        time.sleep(SLOW_MS / 1000)  # widen the window in which a SIGKILL lands mid-work
    session.execute(
        text("INSERT INTO core.document_counters (tenant_id, doc_type, period, last_value)"
             " VALUES (app.current_tenant_id(), :d, '', :n)"),
        {"d": f"fx-{event.id.hex}", "n": number},
    )
