"""The security event log of each tenant: sign-ins, sign-outs, role changes, API
clients, OAuth failures. Append-only (the app role has no UPDATE or DELETE on it).

Tenant admins read it in the portal (``security:read``). A sign-in is not bound to
one tenant (a person may belong to several), so events about a person are written
into every tenant where that person holds an active membership: each tenant's
admins see what happens to their members' accounts, and nothing about strangers.
Failures for an unknown email are written nowhere (only to the application log):
there is no tenant to file them under.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import has_request_context, request
from sqlalchemy import DateTime, ForeignKey, Index, String, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db import Base, apply_context
from tenants.context import TenantContext, current_context, tenant_scope
from tenants.models import TenantKey

# Every kind written anywhere; the portal filter offers exactly these.
KINDS: dict[str, str] = {
    "signin.success": "Signed in",
    "signin.failure": "Sign-in failed",
    "signout": "Signed out",
    "signout.everywhere": "Signed out on every device",
    "member.added": "Member added",
    "member.roles_changed": "Member roles changed",
    "member.disabled": "Member disabled",
    "member.enabled": "Member enabled",
    "api_client.created": "API client created",
    "api_client.revoked": "API client revoked",
    "oauth.token_failed": "OAuth token refused",
}


class SecurityEvent(TenantKey, Base):
    __tablename__ = "security_events"
    # Newest first, all or of one kind: btree indexes read backwards just as well.
    __table_args__ = (
        Index("ix_security_events_tenant_id_at", "tenant_id", "at"),
        Index("ix_security_events_tenant_id_kind_at", "tenant_id", "kind", "at"),
        {"schema": "core"},
    )

    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                            server_default=func.now())
    kind: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


def record(session: Session, kind: str, *, tenant_id: uuid.UUID,
           user_id: uuid.UUID | None = None, detail: dict[str, Any] | None = None) -> None:
    """Append one event for ``tenant_id`` in the caller's transaction (never commits).

    When the transaction already acts for that tenant the row is simply inserted;
    otherwise (sign-in, which runs before any tenant is chosen) the tenant's context
    is written into the current transaction for the one insert and the previous
    context restored, as ``provisioning_scope`` does.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    ip = agent = None
    if has_request_context():
        ip = request.remote_addr
        agent = (request.user_agent.string or "")[:300] or None
    values = {"tenant_id": tenant_id, "kind": kind, "user_id": user_id, "ip": ip,
              "user_agent": agent, "detail": detail or {}}
    ctx = current_context()
    if ctx is not None and ctx.tenant_id == tenant_id:
        session.execute(insert(SecurityEvent).values(**values))
        return
    with tenant_scope(TenantContext(tenant_id=tenant_id, tenant_slug="",
                                    user_id=ctx.user_id if ctx else user_id)):
        apply_context(session.connection())
        session.execute(insert(SecurityEvent).values(**values))
    apply_context(session.connection())


def record_for_user(session: Session, kind: str, user_id: uuid.UUID,
                    detail: dict[str, Any] | None = None) -> None:
    """Record an event about a person in every tenant where they are an active member."""
    from tenants import services

    for choice in services.memberships_of_user(session, user_id):
        record(session, kind, tenant_id=choice.tenant_id, user_id=user_id, detail=detail)


PAGE_SIZE = 50


def search(session: Session, *, kind: str | None = None, user_id: uuid.UUID | None = None,
           since: dt.date | None = None, until: dt.date | None = None, page: int = 1,
           page_size: int = PAGE_SIZE) -> tuple[list[SecurityEvent], bool]:
    """One page of the current tenant's events, newest first, and whether more follow.

    ``user_id`` matches the person the event is about or who caused it (an admin
    changing someone's roles is the actor; the member is in ``detail.target_user_id``).
    """
    query = select(SecurityEvent)
    if kind:
        query = query.where(SecurityEvent.kind == kind)
    if user_id:
        query = query.where(or_(SecurityEvent.user_id == user_id,
                                SecurityEvent.detail["target_user_id"].astext == str(user_id)))
    if since:
        query = query.where(SecurityEvent.at >= dt.datetime.combine(since, dt.time(),
                                                                    tzinfo=dt.UTC))
    if until:
        query = query.where(SecurityEvent.at < dt.datetime.combine(
            until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))
    page = max(page, 1)
    rows = list(session.scalars(query.order_by(SecurityEvent.at.desc(), SecurityEvent.id.desc())
                                .offset((page - 1) * page_size).limit(page_size + 1)))
    return rows[:page_size], len(rows) > page_size
