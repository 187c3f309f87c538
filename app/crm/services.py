"""CRM services: accounts and contacts, with duplicate detection and soft delete.

Duplicates are refused, not merged silently: an account with the same normalised
name and web domain as a live one, or a contact with the same email
(case-insensitive), raises ``Duplicate`` carrying the existing record's id, which
the API answers with 409 and the portal offers to open. Partial unique indexes back
both rules in the database, so a race between two creators cannot slip through.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.money import UnknownCurrency, validate_currency
from tenants import services as tenant_services

from . import custom_fields
from .models import Account, Contact

LEGAL_FORMS = {
    "inc", "incorporated", "ltd", "limited", "llc", "llp", "plc", "corp", "corporation",
    "co", "company", "gmbh", "ag", "kg", "sa", "sas", "sarl", "srl", "spa", "bv", "nv",
    "oy", "ab", "as", "aps", "kk", "pty", "pte",
}
SORTS = {
    "name": Account.normalized_name.asc(), "-name": Account.normalized_name.desc(),
    "updated_at": Account.updated_at.asc(), "-updated_at": Account.updated_at.desc(),
    "created_at": Account.created_at.asc(), "-created_at": Account.created_at.desc(),
}
CONTACT_SORTS = {
    "name": (Contact.last_name.asc(), Contact.first_name.asc()),
    "-name": (Contact.last_name.desc(), Contact.first_name.desc()),
    "updated_at": (Contact.updated_at.asc(),), "-updated_at": (Contact.updated_at.desc(),),
    "created_at": (Contact.created_at.asc(),), "-created_at": (Contact.created_at.desc(),),
}


class CrmError(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Duplicate(CrmError):
    def __init__(self, message: str, existing_id: uuid.UUID, field: str) -> None:
        super().__init__(message, field)
        self.existing_id = existing_id


def normalize_name(name: str) -> str:
    """``"ACME, Inc."`` and ``"Acme Inc"`` -> ``"acme"``."""
    words = re.sub(r"[^\w\s]", " ", (name or "").lower()).split()
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        words.pop()
    return " ".join(words)


def domain_of(website: str | None) -> str | None:
    """``https://www.Acme.com/about`` -> ``acme.com``; None when there is no host."""
    raw = (website or "").strip()
    if not raw:
        return None
    host = urlsplit(raw if "//" in raw else f"//{raw}").hostname or ""
    host = host.lower().removeprefix("www.")
    return host or None


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int


# --- accounts ------------------------------------------------------------------------


ACCOUNT_FIELDS = ("name", "industry", "website", "billing_address", "shipping_address",
                  "payment_terms_days", "credit_limit", "currency", "owner_id")


def _currency(code: str) -> str:
    try:
        return validate_currency(code)
    except UnknownCurrency as exc:
        raise CrmError(str(exc), "currency") from None


def _check_account_duplicate(session: Session, account: Account) -> None:
    query = select(Account.id).where(
        Account.deleted_at.is_(None), Account.normalized_name == account.normalized_name,
        func.coalesce(Account.domain, "") == (account.domain or ""))
    if account.id is not None:
        query = query.where(Account.id != account.id)
    existing = session.scalar(query)
    if existing is not None:
        raise Duplicate("an account with this name and web domain exists", existing, "name")


def check_owner(session: Session, owner_id: uuid.UUID | None) -> None:
    if owner_id is not None and not tenant_services.is_member(session, owner_id):
        raise CrmError("the owner must be a member of this tenant", "owner_id")


def _flush_account(session: Session, account: Account) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent creator won the unique index
        _check_account_duplicate(session, account)
        raise


def create_account(session: Session, data: dict[str, Any]) -> Account:
    name = (data.get("name") or "").strip()
    if not name:
        raise CrmError("the account needs a name", "name")
    account = Account(**{k: v for k, v in data.items() if k in ACCOUNT_FIELDS})
    account.name = name
    account.currency = _currency(data.get("currency") or "")
    account.normalized_name = normalize_name(name)
    account.domain = domain_of(account.website)
    check_owner(session, account.owner_id)
    account.custom = custom_fields.validate_custom(session, "account", data.get("custom"))
    _check_account_duplicate(session, account)
    session.add(account)
    _flush_account(session, account)
    return account


def get_account(session: Session, account_id: uuid.UUID) -> Account | None:
    return session.scalar(select(Account).where(Account.id == account_id,
                                                Account.deleted_at.is_(None)))


def update_account(session: Session, account: Account, changes: dict[str, Any]) -> Account:
    for key, value in changes.items():
        if key in ACCOUNT_FIELDS:
            setattr(account, key, value)
    if "name" in changes:
        if not (changes["name"] or "").strip():
            raise CrmError("the account needs a name", "name")
        account.name = changes["name"].strip()
    if "currency" in changes:
        account.currency = _currency(changes["currency"])
    if "custom" in changes:
        account.custom = custom_fields.merge_custom(session, "account", account.custom,
                                                    changes["custom"] or {})
    account.normalized_name = normalize_name(account.name)
    account.domain = domain_of(account.website)
    check_owner(session, account.owner_id)
    _check_account_duplicate(session, account)
    _flush_account(session, account)
    return account


def delete_account(session: Session, account: Account) -> None:
    """Soft delete: the account disappears from lists; documents keep pointing at it."""
    account.deleted_at = utcnow()
    session.flush()


def list_accounts(session: Session, *, q: str | None = None, owner_id: uuid.UUID | None = None,
                  updated_since: dt.datetime | None = None, sort: str = "name", page: int = 1,
                  per_page: int = 50, custom: dict[str, str] | None = None) -> Page:
    """``custom``: raw text filters by custom-field key (checked, then matched on
    ``crm.custom_values``; see ``custom_fields``)."""
    query = select(Account).where(Account.deleted_at.is_(None))
    if custom:
        query = query.where(custom_fields.custom_filter(
            Account, custom_fields.parse_filters(session, "account", custom)))
    if q:
        query = query.where(Account.normalized_name.contains(normalize_name(q)))
    if owner_id:
        query = query.where(Account.owner_id == owner_id)
    if updated_since:
        query = query.where(Account.updated_at >= updated_since)
    return _page(session, query, (SORTS[sort], Account.id), page, per_page)


def _page(session: Session, query: Any, order: tuple, page: int, per_page: int) -> Page:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(session.scalars(query.order_by(*order).offset((page - 1) * per_page)
                                 .limit(per_page)))
    return Page(items, total or 0, page, per_page)


# --- contacts -----------------------------------------------------------------------------


CONTACT_FIELDS = ("account_id", "first_name", "last_name", "email", "phone", "title",
                  "owner_id")


def _check_contact(session: Session, contact: Contact) -> None:
    check_owner(session, contact.owner_id)
    if contact.account_id is not None and get_account(session, contact.account_id) is None:
        raise CrmError("no such account", "account_id")
    if contact.email:
        query = select(Contact.id).where(Contact.deleted_at.is_(None),
                                         func.lower(Contact.email) == contact.email.lower())
        if contact.id is not None:
            query = query.where(Contact.id != contact.id)
        existing = session.scalar(query)
        if existing is not None:
            raise Duplicate("a contact with this email exists", existing, "email")


def _flush_contact(session: Session, contact: Contact) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        _check_contact(session, contact)
        raise


def create_contact(session: Session, data: dict[str, Any]) -> Contact:
    if not (data.get("last_name") or "").strip():
        raise CrmError("the contact needs a last name", "last_name")
    contact = Contact(**{k: v for k, v in data.items() if k in CONTACT_FIELDS})
    contact.email = (contact.email or "").strip() or None
    contact.custom = custom_fields.validate_custom(session, "contact", data.get("custom"))
    _check_contact(session, contact)
    session.add(contact)
    _flush_contact(session, contact)
    return contact


def get_contact(session: Session, contact_id: uuid.UUID) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.id == contact_id,
                                                Contact.deleted_at.is_(None)))


def update_contact(session: Session, contact: Contact, changes: dict[str, Any]) -> Contact:
    for key, value in changes.items():
        if key in CONTACT_FIELDS:
            setattr(contact, key, value)
    if not (contact.last_name or "").strip():
        raise CrmError("the contact needs a last name", "last_name")
    contact.email = (contact.email or "").strip() or None
    if "custom" in changes:
        contact.custom = custom_fields.merge_custom(session, "contact", contact.custom,
                                                    changes["custom"] or {})
    _check_contact(session, contact)
    _flush_contact(session, contact)
    return contact


def delete_contact(session: Session, contact: Contact) -> None:
    contact.deleted_at = utcnow()
    session.flush()


def list_contacts(session: Session, *, q: str | None = None, account_id: uuid.UUID | None = None,
                  email: str | None = None, owner_id: uuid.UUID | None = None,
                  updated_since: dt.datetime | None = None, sort: str = "name", page: int = 1,
                  per_page: int = 50, custom: dict[str, str] | None = None) -> Page:
    query = select(Contact).where(Contact.deleted_at.is_(None))
    if custom:
        query = query.where(custom_fields.custom_filter(
            Contact, custom_fields.parse_filters(session, "contact", custom)))
    if q:
        like = f"%{q.lower()}%"
        query = query.where(func.lower(Contact.first_name + " " + Contact.last_name).like(like))
    if account_id:
        query = query.where(Contact.account_id == account_id)
    if email:
        query = query.where(func.lower(Contact.email) == email.lower())
    if owner_id:
        query = query.where(Contact.owner_id == owner_id)
    if updated_since:
        query = query.where(Contact.updated_at >= updated_since)
    return _page(session, query, (*CONTACT_SORTS[sort], Contact.id), page, per_page)


def money(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")
