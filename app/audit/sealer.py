"""The sealing job: hourly per tenant, through the scheduler and an ordinary consumer."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.events.models import OutboxEvent
from workers.dispatch import consumer
from workers.scheduler import schedule

from .services import seal

SEAL_EVENT = "audit.seal_due"

# Hourly: a chain is extended in batches; the verify command seals nothing itself.
schedule("audit.seal", "hour", SEAL_EVENT)


@consumer("audit.sealer", SEAL_EVENT)
def seal_due(session: Session, event: OutboxEvent) -> None:
    while seal(session) > 0:
        pass
