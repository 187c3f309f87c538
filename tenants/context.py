"""Tenant context: who is acting, for which tenant, under which request id.

The context lives in a ``ContextVar`` so that threads (waitress) and, later, worker
actors each carry their own. It is only ever set from an authenticated membership
(web) or a message's verified envelope (workers), never from request input.
The engine hook in ``app.db`` copies it into each transaction with
``set_config(..., true)``; nothing else writes ``app.*`` settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


class NoTenantContext(RuntimeError):
    """Tenant data was touched with no tenant chosen: a bug, never "no rows"."""


@dataclass(frozen=True)
class TenantContext:
    tenant_id: uuid.UUID
    tenant_slug: str
    user_id: uuid.UUID | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    permissions: frozenset[str] = field(default_factory=frozenset)

    def can(self, permission: str) -> bool:
        return permission in self.permissions


_context: ContextVar[TenantContext | None] = ContextVar("tenant_context", default=None)
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_context() -> TenantContext | None:
    return _context.get()


def require_context() -> TenantContext:
    """The active context, or NoTenantContext: callers never guess a tenant."""
    ctx = _context.get()
    if ctx is None:
        raise NoTenantContext("no tenant context is active")
    return ctx


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str | None) -> None:
    _request_id.set(request_id)


@contextmanager
def tenant_scope(ctx: TenantContext | None) -> Iterator[TenantContext | None]:
    """Run a block under ``ctx`` (or explicitly under no tenant) and restore after.

    The caller must not hold an open transaction across the switch: the database
    settings are written when a transaction *begins*, so a transaction begun under
    one context would keep it. ``bind_session_context`` in ``tenants.services``
    ends the session's transaction for exactly that reason.
    """
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


def activate(ctx: TenantContext | None) -> None:
    """Set the context for the rest of this thread's unit of work (a request)."""
    _context.set(ctx)
