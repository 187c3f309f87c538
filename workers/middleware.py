"""Tenant and correlation context around every actor, as a request has.

A message names its tenant in ``options["tenant_id"]``. The middleware checks that
the tenant exists and is active (a suspended tenant's work waits) and sets the
context for the actor's thread; the engine hook then writes it into every
transaction the actor opens. A message without a valid tenant is failed without
retry: retrying cannot make it valid, and a guessed tenant would be worse.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import dramatiq
from dramatiq.middleware import SkipMessage

from tenants.context import TenantContext, activate, set_request_id

log = logging.getLogger(__name__)


class TenantMiddleware(dramatiq.Middleware):
    def __init__(self, app: Any) -> None:
        self.app = app

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        set_request_id(str(message.options.get("correlation_id") or message.message_id))
        raw = message.options.get("tenant_id")
        tenant = self._tenant(raw)
        if tenant is None:
            log.error("message %s names no valid tenant (%r): failed without retry",
                      message.message_id, raw)
            message.fail()
            raise SkipMessage(f"invalid tenant {raw!r}")
        activate(TenantContext(tenant_id=tenant[0], tenant_slug=tenant[1], user_id=None))

    def _tenant(self, raw: Any) -> tuple[uuid.UUID, str] | None:
        try:
            tenant_id = uuid.UUID(str(raw))
        except ValueError:
            return None
        from app.db import db
        from tenants.models import Tenant

        with self.app.app_context():
            row = db.session.get(Tenant, tenant_id)
            db.session.rollback()
            if row is None or row.status != "active":
                return None
            return row.id, row.slug

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None,
                              ) -> None:
        activate(None)
        set_request_id(None)

    after_skip_message = after_process_message
