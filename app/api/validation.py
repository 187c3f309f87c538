"""Request validation for the JSON API with pydantic, in the API's one error shape.

``parse_body(Model)`` returns a validated model or raises a 400 (not JSON, not an
object) or a 422 whose ``fields`` map each offending field (dotted path) to its
message, so a client can show errors beside its own inputs. Models forbid unknown
fields: a typo in a field name is an error, not a silently ignored value.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from app.errors import ApiError

M = TypeVar("M", bound=BaseModel)


class Input(BaseModel):
    """Base of every request model."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """PostgreSQL text cannot hold NUL; refuse it here rather than fail at write."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain the NUL character")
        if isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, str) and "\x00" in item:
                    raise ValueError("must not contain the NUL character")
        return value


def _fields(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        path = ".".join(str(p) for p in error["loc"]) or "body"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        fields.setdefault(path, message)
    return fields


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "some fields are not valid", "invalid", _fields(exc)) from None


def parse_body(model: type[M]) -> M:
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "the body must be JSON (Content-Type: application/json)")
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return validate(model, data)


def parse_query(model: type[M]) -> M:
    return validate(model, request.args.to_dict())
