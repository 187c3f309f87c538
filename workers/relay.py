"""The outbox relay: committed events -> broker, each exactly once or more.

For each tenant marked in ``events.pending_tenants`` it takes that tenant's oldest
unpublished outbox rows (``FOR UPDATE SKIP LOCKED``, so several relays share the
work), enqueues one message per row with ``message_id`` = the row id, then marks the
rows published and commits. A crash between enqueue and commit publishes the same
ids again on the next pass: consumers are idempotent, so a duplicate changes
nothing, while nothing committed is ever skipped.

Wake-ups: ``LISTEN erp_outbox`` (the outbox trigger notifies at commit) with a
polling fallback, so a lost notification costs at most one poll interval.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import psycopg
from dramatiq import Message
from dramatiq.broker import Broker
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.settings import libpq_url
from tenants.context import TenantContext, tenant_scope

log = logging.getLogger(__name__)

CHANNEL = "erp_outbox"
SWEEP_SECONDS = 300.0


class Relay:
    def __init__(self, app: Any, broker: Broker, queue_name: str, *, batch: int = 200,
                 poll_interval: float = 2.0, batches_per_tenant: int = 5) -> None:
        self.app = app
        self.broker = broker
        self.queue_name = queue_name
        self.batch = batch
        self.poll_interval = poll_interval
        # At most this many batches per tenant per pass, so one tenant's burst does
        # not hold back every other tenant's events; its marker stays and the next
        # pass goes on where this one stopped.
        self.batches_per_tenant = batches_per_tenant
        self.backlog_left = False
        self.published = 0

    def _session(self) -> Session:
        from app.db import db

        return Session(db.engine, expire_on_commit=False)

    def run_once(self) -> int:
        """Publish what is pending now (up to ``batches_per_tenant`` batches for each
        tenant); return how many messages were sent."""
        self.backlog_left = False
        sent = 0
        with self.app.app_context():
            with self._session() as session:
                pending = session.execute(text(
                    # A suspended tenant's events wait in the outbox (marker kept)
                    # until it is active again.
                    "SELECT p.tenant_id, p.version, t.slug FROM events.pending_tenants p"
                    " JOIN core.tenants t ON t.id = p.tenant_id WHERE t.status = 'active'"
                    " ORDER BY p.pending_since"
                )).all()
                session.rollback()
            for tenant_id, version, slug in pending:
                sent += self._drain(tenant_id, slug, version)
        self.published += sent
        return sent

    def _drain(self, tenant_id: uuid.UUID, slug: str, version: int) -> int:
        ctx = TenantContext(tenant_id=tenant_id, tenant_slug=slug)
        sent = 0
        rows: list = []
        for _ in range(self.batches_per_tenant):
            with tenant_scope(ctx), self._session() as session:
                rows = session.execute(text(
                    "SELECT id, correlation_id,"
                    " greatest(0, extract(epoch FROM deliver_after - now()) * 1000)::bigint"
                    " FROM events.outbox"
                    " WHERE tenant_id = :t AND published_at IS NULL"
                    " ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
                ), {"t": tenant_id, "n": self.batch}).all()
                for event_id, correlation_id, delay_ms in rows:
                    self.broker.enqueue(Message(
                        queue_name=self.queue_name,
                        actor_name="dispatch_event",
                        args=(),
                        kwargs={"event_id": str(event_id)},
                        options={"tenant_id": str(tenant_id),
                                 "correlation_id": correlation_id},
                        message_id=str(event_id),
                    ), delay=int(delay_ms) or None)
                if rows:
                    session.execute(text(
                        "UPDATE events.outbox SET published_at = now(),"
                        " publish_count = publish_count + 1"
                        " WHERE tenant_id = :t AND id = ANY(:ids)"
                    ), {"t": tenant_id, "ids": [r[0] for r in rows]})
                session.commit()
                sent += len(rows)
            if len(rows) < self.batch:
                break
        else:
            self.backlog_left = True  # capped: come back without waiting
        with tenant_scope(ctx), self._session() as session:
            # Rows another relay holds locked (SKIP LOCKED hid them) are still
            # unpublished: if that relay dies, only the marker brings them back, so
            # it stays while any unpublished row exists. And only if no insert bumped
            # the version meanwhile: an event committed during the drain keeps it too.
            session.execute(text(
                "DELETE FROM events.pending_tenants WHERE tenant_id = :t AND version = :v"
                " AND NOT EXISTS (SELECT 1 FROM events.outbox"
                " WHERE tenant_id = :t AND published_at IS NULL)"),
                {"t": tenant_id, "v": version})
            session.commit()
        return sent

    def sweep(self) -> int:
        """Mark every tenant that has unpublished rows but no marker (a safety net for
        markers lost to bugs or hand edits); return how many were marked."""
        marked = 0
        with self.app.app_context():
            with self._session() as session:
                tenants = session.execute(text(
                    "SELECT t.id, t.slug FROM core.tenants t WHERE NOT EXISTS"
                    " (SELECT 1 FROM events.pending_tenants p WHERE p.tenant_id = t.id)")).all()
                session.rollback()
            for tenant_id, slug in tenants:
                ctx = TenantContext(tenant_id=tenant_id, tenant_slug=slug)
                with tenant_scope(ctx), self._session() as session:
                    marked += session.execute(text(
                        "INSERT INTO events.pending_tenants (tenant_id)"
                        " SELECT :t WHERE EXISTS (SELECT 1 FROM events.outbox"
                        " WHERE tenant_id = :t AND published_at IS NULL)"
                        " ON CONFLICT (tenant_id) DO NOTHING"), {"t": tenant_id}).rowcount
                    session.commit()
        if marked:
            log.warning("relay sweep found %s tenants with unmarked unpublished events", marked)
        return marked

    def run_forever(self, stop: threading.Event, database_url: str) -> None:
        """Loop until ``stop`` is set: drain, then wait for a NOTIFY or the poll timeout;
        every ``SWEEP_SECONDS`` also run the full sweep."""
        listener: psycopg.Connection | None = None
        next_sweep = time.monotonic() + SWEEP_SECONDS
        while not stop.is_set():
            try:
                if listener is None:
                    listener = psycopg.connect(libpq_url(database_url), autocommit=True)
                    listener.execute(f"LISTEN {CHANNEL}")
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + SWEEP_SECONDS
                self.run_once()
                if self.backlog_left:
                    continue
                for _ in listener.notifies(timeout=self.poll_interval, stop_after=1):
                    break
            except Exception:
                log.exception("relay pass failed; retrying")
                if listener is not None:
                    listener.close()
                    listener = None
                stop.wait(self.poll_interval)
        if listener is not None:
            listener.close()
