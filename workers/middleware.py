"""Tenant and correlation context around every actor, as a request has.

A message names its tenant in ``options["tenant_id"]``. The middleware checks that
the tenant exists and is active and sets the context for the actor's thread; the
engine hook then writes it into every transaction the actor opens. A message without
a valid tenant is failed without retry: retrying cannot make it valid, and a guessed
tenant would be worse. A suspended tenant's events wait in the outbox: the relay
skips the tenant, and a message already queued when it was suspended is parked
back into the outbox here. A database outage is retried until it ends.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import dramatiq
from dramatiq.middleware import SkipMessage

from tenants.context import TenantContext, activate, set_request_id, tenant_scope

log = logging.getLogger(__name__)


SUSPENDED = "suspended"
# A tenant's (id, slug, active) is cached this long per process: suspending a tenant
# stops its background work within this many seconds.
TENANT_CACHE_SECONDS = 5.0


class TenantMiddleware(dramatiq.Middleware):
    def __init__(self, app: Any) -> None:
        self.app = app
        self._cache: dict[uuid.UUID, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        from .dispatch import DB_ERRORS, DatabaseUnavailable

        set_request_id(str(message.options.get("correlation_id") or message.message_id))
        raw = message.options.get("tenant_id")
        try:
            tenant = self._tenant(raw)
        except DB_ERRORS as exc:  # retried until the database is back, never dropped
            raise DatabaseUnavailable(str(exc)) from exc
        if tenant == SUSPENDED:
            self._park(raw, message)
            raise SkipMessage(f"tenant {raw} is suspended: event parked in the outbox")
        if tenant is None:
            log.error("message %s names no valid tenant (%r): failed without retry",
                      message.message_id, raw)
            message.fail()
            raise SkipMessage(f"invalid tenant {raw!r}")
        activate(TenantContext(tenant_id=tenant[0], tenant_slug=tenant[1], user_id=None))

    def _tenant(self, raw: Any) -> tuple[uuid.UUID, str] | str | None:
        try:
            tenant_id = uuid.UUID(str(raw))
        except ValueError:
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tenant_id)
        if hit is not None and now - hit[0] < TENANT_CACHE_SECONDS:
            return hit[1]
        found = self._lookup(tenant_id)
        with self._lock:
            self._cache[tenant_id] = (now, found)
        return found

    def _lookup(self, tenant_id: uuid.UUID) -> tuple[uuid.UUID, str] | str | None:
        from app.db import db
        from tenants.models import Tenant

        with self.app.app_context():
            row = db.session.get(Tenant, tenant_id)
            db.session.rollback()
            if row is None:
                return None
            if row.status != "active":
                return SUSPENDED
            return row.id, row.slug

    def _park(self, raw: Any, message: Any) -> None:
        """Put a suspended tenant's event back into the outbox as unpublished (the
        relay skips suspended tenants), so it runs after reactivation; then ack."""
        from sqlalchemy import text

        from app.db import db

        event_id = (message.kwargs or {}).get("event_id")
        tenant_id = uuid.UUID(str(raw))
        with self.app.app_context(), tenant_scope(
                TenantContext(tenant_id=tenant_id, tenant_slug="(suspended)")):
            db.session.execute(text(
                "UPDATE events.outbox SET published_at = NULL WHERE tenant_id = :t AND id = :e"),
                {"t": tenant_id, "e": event_id})
            db.session.execute(text(
                "INSERT INTO events.pending_tenants (tenant_id) VALUES (:t)"
                " ON CONFLICT (tenant_id) DO UPDATE"
                " SET version = events.pending_tenants.version + 1"), {"t": tenant_id})
            db.session.commit()
            db.session.remove()
        log.warning("tenant %s is suspended: event %s parked until reactivation", raw,
                    event_id)

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None,
                              ) -> None:
        activate(None)
        set_request_id(None)

    after_skip_message = after_process_message
