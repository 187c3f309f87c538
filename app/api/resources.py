"""Shared plumbing of the back-office API resources (ledger, inventory, purchasing, HR).

* ``out_model(Model)`` derives the response model from the table's columns, so the
  OpenAPI document and the JSON cannot disagree about a field; ``dump`` fills it.
  Decimals are strings (money and quantities never pass through a float).
* ``service_errors()`` turns the domains' refusals into the API's error shape: the
  services' ``ValueError``s with a ``field`` become 422 (``NotEnoughStock`` and other
  state conflicts 409), and the database's own refusals (unbalanced entry at commit,
  closed period, frozen purchase order terms) become 422 with their sentence, never
  the database's raw text. The caller's transaction is rolled back either way, so
  nothing is half-written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, Field, create_model
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError

from app.db import db
from app.errors import ApiError

T = TypeVar("T")
_MODELS: dict[str, type[BaseModel]] = {}
# SQLSTATEs of the refusals our triggers raise for input a user can get wrong (ledger
# balance, immutability, periods, currencies; purchase order status and frozen terms):
# their messages are ours, written for users. Anything else stays a 500.
_OUR_SQLSTATES = {"LGPER", "LGIMM", "LGBAL", "LGCUR", "POSTA"}


def _python_type(column: Any) -> Any:
    try:
        py = column.type.python_type
    except NotImplementedError:
        return Any
    if py is Decimal:
        return str
    if py in (uuid.UUID, dt.date, dt.datetime, str, int, bool, dict, list):
        return py
    return Any


def out_model(orm: type, *, name: str | None = None, exclude: tuple[str, ...] = ("tenant_id",),
              extra: dict[str, Any] | None = None) -> type[BaseModel]:
    """A pydantic response model with one field per column of ``orm``'s table."""
    name = name or f"{orm.__name__}Out"
    if name in _MODELS:
        return _MODELS[name]
    fields: dict[str, Any] = {}
    for column in sa_inspect(orm).columns:
        if column.key in exclude:
            continue
        py = _python_type(column)
        fields[column.key] = (py | None, ...) if column.nullable else (py, ...)
    for key, spec in (extra or {}).items():
        fields[key] = spec
    model = create_model(name, **fields)  # type: ignore[call-overload]
    _MODELS[name] = model
    return model


def page_model(item: type[BaseModel], name: str | None = None) -> type[BaseModel]:
    name = name or f"{item.__name__.removesuffix('Out')}Page"
    if name not in _MODELS:
        _MODELS[name] = create_model(name, items=(list[item], ...), total=(int, ...),  # type: ignore[call-overload, valid-type]
                                     page=(int, 1), per_page=(int, 50))
    return _MODELS[name]


def list_model(item: type[BaseModel], name: str | None = None) -> type[BaseModel]:
    name = name or f"{item.__name__.removesuffix('Out')}List"
    if name not in _MODELS:
        _MODELS[name] = create_model(name, items=(list[item], ...))  # type: ignore[call-overload, valid-type]
    return _MODELS[name]


def dump(obj: Any, model: type[BaseModel], **extra: Any) -> dict[str, Any]:
    """The model's fields read from ``obj`` (and ``extra``), as JSON-ready values."""
    data = {}
    for key in model.model_fields:
        value = extra[key] if key in extra else getattr(obj, key, None)
        if isinstance(value, Decimal):
            value = _decimal(value)
        data[key] = value
    return model.model_validate(data).model_dump(mode="json")


def _decimal(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def parse_id(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(404, f"no such {what}") from None


def load(getter: Callable[[Any, uuid.UUID], T | None], raw_id: str, what: str) -> T:
    """The record of this tenant with that id, or 404 (another tenant's id included)."""
    record = getter(db.session, parse_id(raw_id, what))
    if record is None:
        raise ApiError(404, f"no such {what}")
    return record


class Conflict(Exception):
    """Marker base: a service error that is a conflict with the current state (409)."""


@contextmanager
def service_errors(*conflicts: type[BaseException]) -> Iterator[None]:
    """Run a write and commit it; refusals become the API's 4xx, with a rollback."""
    try:
        yield
        db.session.commit()
    except ApiError:
        db.session.rollback()
        raise
    except ValueError as exc:
        db.session.rollback()
        field = getattr(exc, "field", None) or "body"
        status = 409 if conflicts and isinstance(exc, conflicts) else 422
        raise ApiError(status, str(exc), "conflict" if status == 409 else "invalid",
                       {field: str(exc)}) from None
    except DBAPIError as exc:
        db.session.rollback()
        orig = getattr(exc, "orig", None)
        state = getattr(orig, "sqlstate", None)
        if state in _OUR_SQLSTATES:
            message = orig.diag.message_primary  # type: ignore[union-attr]
            raise ApiError(422, message, "invalid", {"body": message}) from None
        raise


PageQuery = create_model("PageQuery", page=(int, Field(default=1, ge=1, le=100_000)),
                         per_page=(int, Field(default=50, ge=1, le=200)))
