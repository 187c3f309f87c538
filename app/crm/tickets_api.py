"""``/api/v1/tickets`` and their comments.

List: filters ``status`` (or ``active`` = open or pending), ``priority``,
``assignee_id``, ``account_id``, ``updated_since``, ``q`` (subject), any
``custom.<key>=value``; ``sort=priority`` (urgent first, then oldest; the default),
``number``, ``created_at``, ``updated_at`` (``-`` for descending); ``page`` and
``per_page`` (up to 200) with ``total``. Another tenant's id answers 404.

Every route carries ``__api_doc__`` (see ``doc``): the request and response models
the OpenAPI document will be generated from. Responses are built from those models.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.openapi import doc
from app.api.validation import Input, parse_body, validate
from app.db import db
from app.errors import ApiError

from . import custom_fields, tickets
from .services import CrmError

F = TypeVar("F", bound=Callable[..., Any])


Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["open", "pending", "resolved", "closed"]
Sort = Literal["priority", "number", "-number", "created_at", "-created_at", "updated_at",
               "-updated_at"]


class TicketListQuery(Input):
    status: Literal["open", "pending", "resolved", "closed", "active"] | None = None
    priority: Priority | None = None
    assignee_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    updated_since: dt.datetime | None = None
    q: str | None = Field(default=None, max_length=200)
    sort: Sort = "priority"
    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=50, ge=1, le=200)


class TicketIn(Input):
    subject: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20000)
    priority: Priority = "normal"
    account_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    custom: dict[str, Any] | None = None


class TicketPatch(Input):
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=20000)
    priority: Priority | None = None
    status: Status | None = None
    account_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    custom: dict[str, Any] | None = None


class CommentIn(Input):
    body: str = Field(min_length=1, max_length=20000)
    internal: bool = False


class TicketOut(BaseModel):
    id: uuid.UUID
    number: int
    subject: str
    description: str
    priority: Priority
    status: Status
    account_id: uuid.UUID | None
    contact_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    custom: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class TicketPage(BaseModel):
    items: list[TicketOut]
    total: int
    page: int
    per_page: int


class CommentOut(BaseModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    author_id: uuid.UUID | None
    body: str
    internal: bool
    created_at: dt.datetime


class CommentList(BaseModel):
    items: list[CommentOut]
    total: int


def ticket_out(t: tickets.Ticket) -> TicketOut:
    return TicketOut(
        id=t.id, number=t.number, subject=t.subject, description=t.description,
        priority=t.priority, status=t.status, account_id=t.account_id,  # type: ignore[arg-type]
        contact_id=t.contact_id, assignee_id=t.assignee_id, created_by_id=t.created_by_id,
        first_response_at=t.first_response_at, resolved_at=t.resolved_at,
        closed_at=t.closed_at, custom=t.custom or {}, created_at=t.created_at,
        updated_at=t.updated_at)


def comment_out(c: tickets.TicketComment) -> CommentOut:
    return CommentOut(id=c.id, ticket_id=c.ticket_id, author_id=c.author_id, body=c.body,
                      internal=c.internal, created_at=c.created_at)


def json_of(model: BaseModel, status: int = 200) -> ResponseReturnValue:
    return jsonify(model.model_dump(mode="json", by_alias=True)), status


def service_error(exc: Exception) -> ApiError:
    """A refused write as the API's 422 (fields name each offending input)."""
    if isinstance(exc, custom_fields.CustomFieldError):
        return ApiError(422, str(exc), "invalid", exc.fields)
    if isinstance(exc, CrmError):
        return ApiError(422, str(exc), "invalid", {exc.field or "body": str(exc)})
    raise exc


def parse_list_query(model: type[Input]) -> tuple[Any, dict[str, str]]:
    """The query model and the ``custom.<key>`` filters, which the model cannot
    declare (keys are the tenant's)."""
    custom, rest = custom_fields.filter_params(request.args.to_dict())
    return validate(model, rest), custom


def _ticket(raw_id: str) -> tickets.Ticket:
    try:
        ticket_id = uuid.UUID(raw_id)
    except ValueError:
        raise ApiError(404, "no such ticket") from None
    found = tickets.get_ticket(db.session, ticket_id)
    if found is None:
        raise ApiError(404, "no such ticket")
    return found


@bp.get("/tickets")
@doc(summary="List tickets", query=TicketListQuery, response=TicketPage)
@api_auth("crm:read")
def list_tickets() -> ResponseReturnValue:
    query, custom = parse_list_query(TicketListQuery)
    try:
        page = tickets.list_tickets(db.session, custom=custom, **query.model_dump())
    except custom_fields.CustomFieldError as exc:
        raise service_error(exc) from None
    return json_of(TicketPage(items=[ticket_out(t) for t in page.items], total=page.total,
                              page=page.page, per_page=page.per_page))


@bp.post("/tickets")
@doc(summary="Open a ticket", body=TicketIn, response=TicketOut, status=201)
@api_auth("crm:write")
@idempotent
def create_ticket() -> ResponseReturnValue:
    body = parse_body(TicketIn)
    try:
        ticket = tickets.create_ticket(db.session, body.model_dump())
    except (CrmError, custom_fields.CustomFieldError) as exc:
        raise service_error(exc) from None
    return json_of(ticket_out(ticket), 201)


@bp.get("/tickets/<ticket_id>")
@doc(summary="Get a ticket", response=TicketOut)
@api_auth("crm:read")
def get_ticket(ticket_id: str) -> ResponseReturnValue:
    return json_of(ticket_out(_ticket(ticket_id)))


@bp.patch("/tickets/<ticket_id>")
@doc(summary="Change a ticket (fields, status by the transition rules, custom values)",
     body=TicketPatch, response=TicketOut)
@api_auth("crm:write")
def update_ticket(ticket_id: str) -> ResponseReturnValue:
    ticket = _ticket(ticket_id)
    changes = parse_body(TicketPatch).model_dump(exclude_unset=True)
    try:
        tickets.update_ticket(db.session, ticket, changes)
    except (CrmError, custom_fields.CustomFieldError) as exc:
        db.session.rollback()
        raise service_error(exc) from None
    db.session.commit()
    return json_of(ticket_out(ticket))


@bp.get("/tickets/<ticket_id>/comments")
@doc(summary="A ticket's comment thread, oldest first", response=CommentList)
@api_auth("crm:read")
def list_comments(ticket_id: str) -> ResponseReturnValue:
    items = tickets.list_comments(db.session, _ticket(ticket_id))
    return json_of(CommentList(items=[comment_out(c) for c in items], total=len(items)))


@bp.post("/tickets/<ticket_id>/comments")
@doc(summary="Add a comment (append-only; internal ones are staff notes)", body=CommentIn,
     response=CommentOut, status=201)
@api_auth("crm:write")
@idempotent
def add_comment(ticket_id: str) -> ResponseReturnValue:
    ticket = _ticket(ticket_id)
    body = parse_body(CommentIn)
    try:
        comment = tickets.add_comment(db.session, ticket, body.body, internal=body.internal)
    except CrmError as exc:
        raise service_error(exc) from None
    return json_of(comment_out(comment), 201)
