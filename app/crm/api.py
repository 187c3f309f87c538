"""``/api/v1/accounts`` and ``/api/v1/contacts``.

Lists are paged (``page``, ``per_page`` up to 200) with ``total``, filtered
(``q``, ``owner_id``, ``updated_since``, ``custom.<key>=value``; contacts also
``account_id`` and ``email``)
and sorted (``sort=name|-name|updated_at|-updated_at|created_at|-created_at``).
Another tenant's id answers 404, exactly like an id that does not exist.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, Literal

from flask import jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, EmailStr, Field

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.openapi import doc
from app.api.validation import Input, parse_body, validate
from app.db import db
from app.errors import ApiError

from . import custom_fields, services
from .models import Account, Contact

Sort = Literal["name", "-name", "updated_at", "-updated_at", "created_at", "-created_at"]


class ListQuery(Input):
    q: str | None = Field(default=None, max_length=200)
    owner_id: uuid.UUID | None = None
    updated_since: dt.datetime | None = None
    sort: Sort = "name"
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


class ContactListQuery(ListQuery):
    account_id: uuid.UUID | None = None
    email: str | None = Field(default=None, max_length=320)


class AccountIn(Input):
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(min_length=3, max_length=3)
    industry: str = Field(default="", max_length=100)
    website: str = Field(default="", max_length=500)
    billing_address: str = Field(default="", max_length=2000)
    shipping_address: str = Field(default="", max_length=2000)
    payment_terms_days: int = Field(default=30, ge=0, le=365)
    credit_limit: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    owner_id: uuid.UUID | None = None
    custom: dict[str, Any] | None = None


class AccountPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    industry: str | None = Field(default=None, max_length=100)
    website: str | None = Field(default=None, max_length=500)
    billing_address: str | None = Field(default=None, max_length=2000)
    shipping_address: str | None = Field(default=None, max_length=2000)
    payment_terms_days: int | None = Field(default=None, ge=0, le=365)
    credit_limit: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    owner_id: uuid.UUID | None = None
    custom: dict[str, Any] | None = None


class ContactIn(Input):
    last_name: str = Field(min_length=1, max_length=100)
    first_name: str = Field(default="", max_length=100)
    email: EmailStr | None = None
    phone: str = Field(default="", max_length=50)
    title: str = Field(default="", max_length=100)
    account_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    custom: dict[str, Any] | None = None


class ContactPatch(Input):
    last_name: str | None = Field(default=None, min_length=1, max_length=100)
    first_name: str | None = Field(default=None, max_length=100)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=50)
    title: str | None = Field(default=None, max_length=100)
    account_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    custom: dict[str, Any] | None = None


class AccountOut(BaseModel):
    id: uuid.UUID
    name: str
    domain: str | None
    industry: str
    website: str
    billing_address: str
    shipping_address: str
    payment_terms_days: int
    credit_limit: str | None = Field(description="Decimal as a string")
    currency: str
    owner_id: uuid.UUID | None
    custom: dict[str, Any] = Field(default_factory=dict, description="Custom field values")
    created_at: dt.datetime
    updated_at: dt.datetime


class ContactOut(BaseModel):
    id: uuid.UUID
    first_name: str
    last_name: str
    email: str | None
    phone: str
    title: str
    account_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    custom: dict[str, Any] = Field(default_factory=dict, description="Custom field values")
    created_at: dt.datetime
    updated_at: dt.datetime


class AccountPage(BaseModel):
    items: list[AccountOut]
    total: int
    page: int
    per_page: int


class ContactPage(BaseModel):
    items: list[ContactOut]
    total: int
    page: int
    per_page: int


def account_out(a: Account) -> dict[str, Any]:
    return {
        "id": str(a.id), "name": a.name, "domain": a.domain, "industry": a.industry,
        "website": a.website, "billing_address": a.billing_address,
        "shipping_address": a.shipping_address, "payment_terms_days": a.payment_terms_days,
        "credit_limit": services.money(a.credit_limit), "currency": a.currency,
        "owner_id": str(a.owner_id) if a.owner_id else None, "custom": a.custom or {},
        "created_at": a.created_at.isoformat(), "updated_at": a.updated_at.isoformat(),
    }


def contact_out(c: Contact) -> dict[str, Any]:
    return {
        "id": str(c.id), "first_name": c.first_name, "last_name": c.last_name,
        "email": c.email, "phone": c.phone, "title": c.title,
        "account_id": str(c.account_id) if c.account_id else None,
        "owner_id": str(c.owner_id) if c.owner_id else None, "custom": c.custom or {},
        "created_at": c.created_at.isoformat(), "updated_at": c.updated_at.isoformat(),
    }


def _id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(404, "not found") from None


def _service_error(exc: services.CrmError | custom_fields.CustomFieldError) -> ApiError:
    if isinstance(exc, custom_fields.CustomFieldError):
        return ApiError(422, str(exc), "invalid", exc.fields)
    if isinstance(exc, services.Duplicate):
        return ApiError(409, str(exc), "duplicate", {"id": str(exc.existing_id)})
    return ApiError(422, str(exc), "invalid", {exc.field or "body": str(exc)})


def _list(model: type[Input], list_: Any, out: Any) -> ResponseReturnValue:
    """Parse the query (``custom.<key>=value`` filters apart: the keys are the
    tenant's), list and page."""
    custom, rest = custom_fields.filter_params(request.args.to_dict())
    query = validate(model, rest)
    try:
        page = list_(db.session, custom=custom, **query.model_dump())
    except custom_fields.CustomFieldError as exc:
        raise _service_error(exc) from None
    return _page(page, out)


def _page(page: services.Page, out: Any) -> ResponseReturnValue:
    return jsonify(items=[out(i) for i in page.items], total=page.total, page=page.page,
                   per_page=page.per_page)


def _load(get: Any, raw_id: str, what: str) -> Any:
    record = get(db.session, _id(raw_id))
    if record is None:
        raise ApiError(404, f"no such {what}")
    return record


def _create(model: type[Input], create: Any, out: Any) -> ResponseReturnValue:
    body = parse_body(model)
    try:
        record = create(db.session, body.model_dump())
    except (services.CrmError, custom_fields.CustomFieldError) as exc:
        raise _service_error(exc) from None
    return jsonify(out(record)), 201


def _patch(record: Any, model: type[Input], update: Any, out: Any) -> ResponseReturnValue:
    changes = parse_body(model).model_dump(exclude_unset=True)
    try:
        update(db.session, record, changes)
    except (services.CrmError, custom_fields.CustomFieldError) as exc:
        db.session.rollback()
        raise _service_error(exc) from None
    db.session.commit()
    return jsonify(out(record))


def _delete(record: Any, delete: Any) -> ResponseReturnValue:
    delete(db.session, record)
    db.session.commit()
    return "", 204


# --- accounts ----------------------------------------------------------------------------


@bp.get("/accounts")
@api_auth("crm:read")
@doc(summary="List accounts", query=ListQuery, response=AccountPage)
def list_accounts() -> ResponseReturnValue:
    return _list(ListQuery, services.list_accounts, account_out)


@bp.post("/accounts")
@api_auth("crm:write")
@idempotent
@doc(summary="Create an account (409 with the existing id for a duplicate)",
     body=AccountIn, response=AccountOut, status=201)
def create_account() -> ResponseReturnValue:
    return _create(AccountIn, services.create_account, account_out)


@bp.get("/accounts/<account_id>")
@api_auth("crm:read")
@doc(summary="Get an account", response=AccountOut)
def get_account(account_id: str) -> ResponseReturnValue:
    return jsonify(account_out(_load(services.get_account, account_id, "account")))


@bp.patch("/accounts/<account_id>")
@api_auth("crm:write")
@doc(summary="Change an account", body=AccountPatch, response=AccountOut,
     errors=(409,))
def update_account(account_id: str) -> ResponseReturnValue:
    account = _load(services.get_account, account_id, "account")
    return _patch(account, AccountPatch, services.update_account, account_out)


@bp.delete("/accounts/<account_id>")
@api_auth("crm:write")
@doc(summary="Delete an account (soft)", status=204)
def delete_account(account_id: str) -> ResponseReturnValue:
    return _delete(_load(services.get_account, account_id, "account"), services.delete_account)


# --- contacts ------------------------------------------------------------------------------


@bp.get("/contacts")
@api_auth("crm:read")
@doc(summary="List contacts", query=ContactListQuery, response=ContactPage)
def list_contacts() -> ResponseReturnValue:
    return _list(ContactListQuery, services.list_contacts, contact_out)


@bp.post("/contacts")
@api_auth("crm:write")
@idempotent
@doc(summary="Create a contact (409 with the existing id for a duplicate email)",
     body=ContactIn, response=ContactOut, status=201)
def create_contact() -> ResponseReturnValue:
    return _create(ContactIn, services.create_contact, contact_out)


@bp.get("/contacts/<contact_id>")
@api_auth("crm:read")
@doc(summary="Get a contact", response=ContactOut)
def get_contact(contact_id: str) -> ResponseReturnValue:
    return jsonify(contact_out(_load(services.get_contact, contact_id, "contact")))


@bp.patch("/contacts/<contact_id>")
@api_auth("crm:write")
@doc(summary="Change a contact", body=ContactPatch, response=ContactOut,
     errors=(409,))
def update_contact(contact_id: str) -> ResponseReturnValue:
    contact = _load(services.get_contact, contact_id, "contact")
    return _patch(contact, ContactPatch, services.update_contact, contact_out)


@bp.delete("/contacts/<contact_id>")
@api_auth("crm:write")
@doc(summary="Delete a contact (soft)", status=204)
def delete_contact(contact_id: str) -> ResponseReturnValue:
    return _delete(_load(services.get_contact, contact_id, "contact"), services.delete_contact)
