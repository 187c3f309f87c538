"""Support tickets: models and services.

Status rules (``TRANSITIONS``), enforced here for every caller and backed by CHECKs
on the values and on the timestamps that go with them:

* ``open`` <-> ``pending`` (waiting on the customer), either -> ``resolved`` or
  ``closed``;
* ``resolved`` -> ``open`` (the customer came back) or ``closed``;
* ``closed`` is final for staff: no status change, no field change, no comment.
  Only a tenant administrator (``tenant:write``) may reopen a closed ticket, to
  ``open``: closing is what reports count, so undoing it is an exception, and the
  audit log records who did it. A customer who comes back after closing gets a
  new ticket.

``resolved_at`` is set on the way into resolved/closed (kept when a resolved ticket
is closed) and cleared on reopening; ``closed_at`` likewise for closed.
``first_response_at`` is the time of the first public (not internal) comment: every
author is staff, so that is the first answer the customer could see.

Numbers come from ``tenants.services.next_number`` (doc type ``ticket``): gapless
per tenant, in commit order. Comments are append-only (the app role may not update
or delete them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db import Base, utcnow
from app.events.services import publish
from tenants import services as tenancy
from tenants.context import require_context
from tenants.models import TenantKey, TenantScoped

from . import custom_fields
from .services import CrmError, Page, get_account, get_contact

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
STATUSES: tuple[str, ...] = ("open", "pending", "resolved", "closed")
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"pending", "resolved", "closed"}),
    "pending": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}
REOPEN_PERMISSION = "tenant:write"
ACTIVE_STATUSES = ("open", "pending")


class Ticket(TenantScoped, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        ForeignKeyConstraint(["tenant_id", "account_id"],
                             ["crm.accounts.tenant_id", "crm.accounts.id"]),
        ForeignKeyConstraint(["tenant_id", "contact_id"],
                             ["crm.contacts.tenant_id", "crm.contacts.id"]),
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')",
                        name="priority_known"),
        CheckConstraint("status IN ('open', 'pending', 'resolved', 'closed')",
                        name="status_known"),
        CheckConstraint("(status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL)",
                        name="resolved_at_matches_status"),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)",
                        name="closed_at_matches_status"),
        CheckConstraint("jsonb_typeof(custom) = 'object'", name="custom_object"),
        Index("ix_tickets_tenant_id_status_created_at", "tenant_id", "status", "created_at"),
        Index("ix_tickets_tenant_id_assignee_id", "tenant_id", "assignee_id"),
        Index("ix_tickets_tenant_id_account_id", "tenant_id", "account_id"),
        Index("ix_tickets_tenant_id_contact_id", "tenant_id", "contact_id"),
        Index("ix_tickets_tenant_id_updated_at", "tenant_id", "updated_at"),
        Index("ix_tickets_custom", "custom", postgresql_using="gin",
              postgresql_ops={"custom": "jsonb_path_ops"}),
        {"schema": "crm"},
    )

    number: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="", default="")
    priority: Mapped[str] = mapped_column(String(10), server_default="normal", default="normal")
    status: Mapped[str] = mapped_column(String(10), server_default="open", default="open")
    account_id: Mapped[uuid.UUID | None]
    contact_id: Mapped[uuid.UUID | None]
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    first_response_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    custom: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"),
                                                   default=dict)


class TicketComment(TenantKey, Base):
    """Append-only: listed in ``APPEND_ONLY_TABLES``."""

    __tablename__ = "ticket_comments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "ticket_id"],
                             ["crm.tickets.tenant_id", "crm.tickets.id"]),
        CheckConstraint("length(btrim(body)) > 0", name="body_not_blank"),
        Index("ix_ticket_comments_tenant_id_ticket_id_created_at", "tenant_id", "ticket_id",
              "created_at"),
        {"schema": "crm"},
    )

    ticket_id: Mapped[uuid.UUID]
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())


class TicketError(CrmError):
    """Bad input or a refused change of a ticket; ``field`` names the input."""


# Urgent first; within a priority the oldest first (the queue's order).
PRIORITY_RANK = case({"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=Ticket.priority)
SORTS: dict[str, tuple[Any, ...]] = {
    "priority": (PRIORITY_RANK.asc(), Ticket.created_at.asc()),
    "number": (Ticket.number.asc(),), "-number": (Ticket.number.desc(),),
    "created_at": (Ticket.created_at.asc(),), "-created_at": (Ticket.created_at.desc(),),
    "updated_at": (Ticket.updated_at.asc(),), "-updated_at": (Ticket.updated_at.desc(),),
}
FIELDS = ("subject", "description", "priority", "account_id", "contact_id", "assignee_id")


def _member_ids(session: Session) -> set[uuid.UUID]:
    ctx = require_context()
    return {m.user_id for m, _ in tenancy.tenant_members(session, ctx.tenant_id)
            if m.is_active}


def _check(session: Session, ticket: Ticket, changed: set[str] | None = None) -> None:
    """Check the ticket's fields; on an update only the ``changed`` links, so a ticket
    whose account was deleted or whose assignee left can still be worked on."""

    def check(name: str) -> bool:
        return changed is None or name in changed

    if not (ticket.subject or "").strip():
        raise TicketError("the ticket needs a subject", "subject")
    ticket.subject = ticket.subject.strip()
    if ticket.priority not in PRIORITIES:
        raise TicketError(f"priority is one of: {', '.join(PRIORITIES)}", "priority")
    if (check("account_id") and ticket.account_id is not None
            and get_account(session, ticket.account_id) is None):
        raise TicketError("no such account", "account_id")
    if ticket.contact_id is not None and (check("contact_id") or check("account_id")):
        contact = get_contact(session, ticket.contact_id)
        if contact is None:
            raise TicketError("no such contact", "contact_id")
        if ticket.account_id is None:
            ticket.account_id = contact.account_id
        elif contact.account_id is not None and contact.account_id != ticket.account_id:
            raise TicketError("the contact belongs to another account", "contact_id")
    if (check("assignee_id") and ticket.assignee_id is not None
            and ticket.assignee_id not in _member_ids(session)):
        raise TicketError("the assignee must be an active member of this company",
                          "assignee_id")


def create_ticket(session: Session, data: Mapping[str, Any]) -> Ticket:
    """Open a ticket; ``data`` holds FIELDS and ``custom``."""
    ticket = Ticket(**{k: v for k, v in data.items() if k in FIELDS and v is not None})
    ticket.subject = ticket.subject or ""
    ticket.priority = ticket.priority or "normal"
    ticket.status = "open"
    ticket.created_by_id = require_context().user_id
    _check(session, ticket)
    ticket.custom = custom_fields.validate_custom(session, "ticket", data.get("custom"))
    ticket.number = tenancy.next_number(session, "ticket")
    session.add(ticket)
    session.flush()
    publish(session, "crm.ticket_opened", {"ticket_id": str(ticket.id),
                                           "number": ticket.number,
                                           "priority": ticket.priority})
    return ticket


def get_ticket(session: Session, ticket_id: uuid.UUID) -> Ticket | None:
    return session.scalar(select(Ticket).where(Ticket.id == ticket_id))


def update_ticket(session: Session, ticket: Ticket, changes: Mapping[str, Any]) -> Ticket:
    """Change fields and/or ``status`` (by the transition rules) and ``custom``."""
    if ticket.status == "closed" and any(
            k in FIELDS or k == "custom" for k in changes if changes[k] != getattr(ticket, k)):
        raise TicketError("a closed ticket cannot be changed; an administrator may reopen it",
                          "status")
    changed = set()
    for key, value in changes.items():
        if key in FIELDS:
            if key in ("subject", "priority") and value is None:
                raise TicketError(f"{key} cannot be empty", key)
            if getattr(ticket, key) != value:
                changed.add(key)
            setattr(ticket, key, value)
    _check(session, ticket, changed)
    if "custom" in changes:
        ticket.custom = custom_fields.merge_custom(session, "ticket", ticket.custom,
                                                   changes["custom"] or {})
    if changes.get("status") is not None and changes["status"] != ticket.status:
        change_status(session, ticket, changes["status"])
    session.flush()
    return ticket


def allowed_statuses(ticket: Ticket) -> list[str]:
    """Where the current user may move the ticket (for forms)."""
    allowed = set(TRANSITIONS[ticket.status])
    if ticket.status == "closed" and require_context().can(REOPEN_PERMISSION):
        allowed.add("open")
    return [s for s in STATUSES if s in allowed]


def change_status(session: Session, ticket: Ticket, status: str) -> Ticket:
    if status not in STATUSES:
        raise TicketError(f"status is one of: {', '.join(STATUSES)}", "status")
    if status == ticket.status:
        return ticket
    if status not in allowed_statuses(ticket):
        reason = ("a closed ticket can be reopened only by an administrator"
                  if ticket.status == "closed" else
                  f"a {ticket.status} ticket cannot become {status}")
        raise TicketError(reason, "status")
    now = utcnow()
    previous = ticket.status
    ticket.status = status
    if status in ("resolved", "closed"):
        ticket.resolved_at = ticket.resolved_at or now
    else:
        ticket.resolved_at = None
    ticket.closed_at = now if status == "closed" else None
    session.flush()
    publish(session, "crm.ticket_status_changed", {"ticket_id": str(ticket.id),
                                                   "from": previous, "to": status})
    return ticket


def list_tickets(session: Session, *, status: str | None = None, priority: str | None = None,
                 assignee_id: uuid.UUID | None = None, unassigned: bool = False,
                 account_id: uuid.UUID | None = None, updated_since: dt.datetime | None = None,
                 q: str | None = None, custom: Mapping[str, str] | None = None,
                 sort: str = "priority", page: int = 1, per_page: int = 50) -> Page:
    """``status`` may be ``active`` (open or pending). ``custom``: raw text filters
    by key, checked by ``custom_fields.parse_filters``."""
    query = select(Ticket)
    if status == "active":
        query = query.where(Ticket.status.in_(ACTIVE_STATUSES))
    elif status:
        query = query.where(Ticket.status == status)
    if priority:
        query = query.where(Ticket.priority == priority)
    if assignee_id:
        query = query.where(Ticket.assignee_id == assignee_id)
    if unassigned:
        query = query.where(Ticket.assignee_id.is_(None))
    if account_id:
        query = query.where(Ticket.account_id == account_id)
    if updated_since:
        query = query.where(Ticket.updated_at >= updated_since)
    if q:
        query = query.where(Ticket.subject.ilike(f"%{q}%"))
    if custom:
        filters = custom_fields.parse_filters(session, "ticket", custom)
        query = query.where(custom_fields.custom_filter(Ticket, filters))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(session.scalars(query.order_by(*SORTS[sort], Ticket.id)
                                 .offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total or 0, page, per_page)


# --- comments --------------------------------------------------------------------------------


def add_comment(session: Session, ticket: Ticket, body: str, *, internal: bool = False
                ) -> TicketComment:
    """Append a comment; the first public one stamps the ticket's first response."""
    if ticket.status == "closed":
        raise TicketError("a closed ticket takes no more comments", "body")
    clean = (body or "").strip()
    if not clean:
        raise TicketError("the comment is empty", "body")
    if len(clean) > 20000:
        raise TicketError("a comment has at most 20000 characters", "body")
    comment = TicketComment(ticket_id=ticket.id, author_id=require_context().user_id,
                            body=clean, internal=internal)
    session.add(comment)
    session.flush()
    if not internal and ticket.first_response_at is None:
        ticket.first_response_at = comment.created_at
    ticket.updated_at = func.now()
    session.flush()
    session.refresh(ticket, ["updated_at"])
    return comment


def list_comments(session: Session, ticket: Ticket, *, include_internal: bool = True
                  ) -> list[TicketComment]:
    query = select(TicketComment).where(TicketComment.ticket_id == ticket.id)
    if not include_internal:
        query = query.where(TicketComment.internal.is_(False))
    return list(session.scalars(query.order_by(TicketComment.created_at, TicketComment.id)))
