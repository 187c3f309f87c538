"""``/api/v1/custom-fields``: a tenant's custom field definitions.

Reading needs ``crm:read`` (clients render forms from them); defining, changing
and deleting (soft) need ``tenant:write``, the tenant administrator's permission.
``GET /custom-fields/schema/<entity>`` returns the JSON Schema values are checked
against.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.validation import Input, parse_body, parse_query
from app.db import db
from app.errors import ApiError

from . import custom_fields
from .custom_fields import CustomFieldDefinition, CustomFieldError
from .tickets_api import doc, json_of

Entity = Literal["account", "contact", "deal", "lead", "ticket", "product"]
FieldType = Literal["text", "number", "date", "boolean", "choice", "multi_choice"]
# The literals must list what the service accepts (checked once at import).
assert set(Entity.__args__) == set(custom_fields.ENTITIES)
assert set(FieldType.__args__) == set(custom_fields.FIELD_TYPES)


class DefinitionListQuery(Input):
    entity: Entity | None = None


class DefinitionIn(Input):
    entity: Entity
    key: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(min_length=1, max_length=100)
    field_type: FieldType
    required: bool = False
    choices: list[str] = Field(default_factory=list, max_length=custom_fields.MAX_CHOICES)
    position: int | None = Field(default=None, ge=0, le=100000)


class DefinitionPatch(Input):
    label: str | None = Field(default=None, min_length=1, max_length=100)
    required: bool | None = None
    choices: list[str] | None = Field(default=None, max_length=custom_fields.MAX_CHOICES)
    position: int | None = Field(default=None, ge=0, le=100000)


class DefinitionOut(BaseModel):
    id: uuid.UUID
    entity: Entity
    key: str
    label: str
    field_type: FieldType
    required: bool
    choices: list[str]
    position: int
    created_at: dt.datetime
    updated_at: dt.datetime


class DefinitionList(BaseModel):
    items: list[DefinitionOut]
    total: int


class SchemaOut(BaseModel):
    entity: Entity
    json_schema: dict[str, Any] = Field(serialization_alias="schema")


def definition_out(d: CustomFieldDefinition) -> DefinitionOut:
    return DefinitionOut(id=d.id, entity=d.entity, key=d.key, label=d.label,  # type: ignore[arg-type]
                         field_type=d.field_type, required=d.required,  # type: ignore[arg-type]
                         choices=list(d.choices or []), position=d.position,
                         created_at=d.created_at, updated_at=d.updated_at)


def _definition(raw_id: str) -> CustomFieldDefinition:
    try:
        definition_id = uuid.UUID(raw_id)
    except ValueError:
        raise ApiError(404, "no such custom field") from None
    found = custom_fields.get_definition(db.session, definition_id)
    if found is None:
        raise ApiError(404, "no such custom field")
    return found


def _refused(exc: CustomFieldError) -> ApiError:
    return ApiError(422, str(exc), "invalid", exc.fields)


@bp.get("/custom-fields")
@doc(summary="List custom field definitions", query=DefinitionListQuery,
     response=DefinitionList)
@api_auth("crm:read")
def list_custom_fields() -> ResponseReturnValue:
    query = parse_query(DefinitionListQuery)
    items = custom_fields.list_definitions(db.session, query.entity)
    return json_of(DefinitionList(items=[definition_out(d) for d in items], total=len(items)))


@bp.post("/custom-fields")
@doc(summary="Define a custom field", body=DefinitionIn, response=DefinitionOut, status=201)
@api_auth("tenant:write")
@idempotent
def create_custom_field() -> ResponseReturnValue:
    body = parse_body(DefinitionIn)
    try:
        definition = custom_fields.create_definition(db.session, body.model_dump())
    except CustomFieldError as exc:
        raise _refused(exc) from None
    db.session.flush()
    db.session.refresh(definition)
    return json_of(definition_out(definition), 201)


@bp.get("/custom-fields/schema/<entity>")
@doc(summary="The JSON Schema of an entity's custom values", response=SchemaOut)
@api_auth("crm:read")
def custom_field_schema(entity: str) -> ResponseReturnValue:
    if entity not in custom_fields.ENTITIES:
        raise ApiError(404, "no such entity")
    schema = custom_fields.schema_for(db.session, entity)
    return json_of(SchemaOut(entity=entity, json_schema=schema))  # type: ignore[arg-type]


@bp.get("/custom-fields/<definition_id>")
@doc(summary="Get a custom field definition", response=DefinitionOut)
@api_auth("crm:read")
def get_custom_field(definition_id: str) -> ResponseReturnValue:
    return json_of(definition_out(_definition(definition_id)))


@bp.patch("/custom-fields/<definition_id>")
@doc(summary="Change a custom field's label, required flag, choices or position",
     body=DefinitionPatch, response=DefinitionOut)
@api_auth("tenant:write")
def update_custom_field(definition_id: str) -> ResponseReturnValue:
    definition = _definition(definition_id)
    changes = parse_body(DefinitionPatch).model_dump(exclude_unset=True)
    try:
        custom_fields.update_definition(db.session, definition, changes)
    except CustomFieldError as exc:
        db.session.rollback()
        raise _refused(exc) from None
    db.session.commit()
    return json_of(definition_out(definition))


@bp.delete("/custom-fields/<definition_id>")
@doc(summary="Delete a custom field (soft: stored values stay until a record is "
             "written again; the key is not reused)", status=204)
@api_auth("tenant:write")
def delete_custom_field(definition_id: str) -> ResponseReturnValue:
    custom_fields.delete_definition(db.session, _definition(definition_id))
    db.session.commit()
    return "", 204
