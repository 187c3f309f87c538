"""Periodic work, keyed by (tenant, job, period) so running it twice changes nothing.

At each period boundary (minute, hour, day; UTC) the scheduler claims the run for
every active tenant by inserting ``events.scheduled_runs (tenant, job, period)`` and,
in the same transaction, publishes the job's event to the outbox. A second scheduler
(every worker process runs one) finds the claim taken and does nothing; the work
itself is done by an ordinary consumer, with its inbox, retries and exceptions.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.events.services import publish
from tenants.context import TenantContext, tenant_scope

log = logging.getLogger(__name__)

FORMATS = {"minute": "%Y-%m-%dT%H:%M", "hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d"}


@dataclass(frozen=True)
class Job:
    name: str
    every: str  # minute | hour | day
    event_type: str


JOBS: dict[str, Job] = {}


def schedule(name: str, every: str, event_type: str) -> Job:
    """Register a periodic job; its consumer subscribes to ``event_type``."""
    if every not in FORMATS:
        raise ValueError(f"every must be one of {', '.join(FORMATS)}")
    job = Job(name, every, event_type)
    JOBS[name] = job
    return job


def period_of(job: Job, now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime(FORMATS[job.every])


class Scheduler:
    def __init__(self, app: Any, interval: float = 15.0) -> None:
        self.app = app
        self.interval = interval
        self._last: dict[str, str] = {}

    def _session(self) -> Session:
        from app.db import db

        return Session(db.engine, expire_on_commit=False)

    def tick(self, now: dt.datetime | None = None) -> int:
        """Claim and publish every job whose period changed; return runs claimed."""
        now = now or dt.datetime.now(dt.UTC)
        due = {name: period_of(job, now) for name, job in JOBS.items()
               if self._last.get(name) != period_of(job, now)}
        if not due:
            return 0
        claimed = 0
        with self.app.app_context():
            with self._session() as session:
                tenants = session.execute(text(
                    "SELECT id, slug FROM core.tenants WHERE status = 'active'")).all()
                session.rollback()
            for tenant_id, slug in tenants:
                ctx = TenantContext(tenant_id=tenant_id, tenant_slug=slug)
                with tenant_scope(ctx), self._session() as session:
                    for name, period in due.items():
                        run_id = session.execute(text(
                            "INSERT INTO events.scheduled_runs (tenant_id, job, period)"
                            " VALUES (:t, :j, :p) ON CONFLICT (tenant_id, job, period)"
                            " DO NOTHING RETURNING id"),
                            {"t": tenant_id, "j": name, "p": period}).scalar_one_or_none()
                        if run_id is not None:
                            publish(session, JOBS[name].event_type,
                                    {"job": name, "period": period},
                                    correlation_id=f"{name}:{period}")
                            claimed += 1
                    session.commit()
        self._last.update(due)
        return claimed

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed; retrying")
            stop.wait(self.interval)
