"""``/api/v1/members``: a tenant's members, for provisioning from HR or IT systems.

The conventions every resource of the API follows: a permission declared on the
route, pydantic models for input, tenancy services for the work, one commit (done
by ``idempotent`` for POSTs), 404 for ids of other tenants exactly as for ids that do
not exist, 409 for a conflict with the current state.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import g, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, EmailStr, Field

from app.db import db
from app.errors import ApiError
from tenants import services
from tenants.models import Membership, User
from tenants.permissions import ROLES

from . import bp
from .auth import api_auth
from .idempotency import idempotent
from .openapi import doc
from .validation import Input, parse_body, parse_query

RoleList = list[str]


class MemberIn(Input):
    email: EmailStr
    roles: RoleList = Field(min_length=1)
    full_name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, min_length=10, max_length=200)


class MemberPatch(Input):
    roles: RoleList | None = Field(default=None, min_length=1)
    active: bool | None = None


class MemberQuery(Input):
    active: bool | None = None


class MemberOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    full_name: str
    roles: list[str]
    active: bool
    created_at: dt.datetime
    initial_password: str | None = Field(
        default=None, description="Only when the platform generated it; shown once")


class MemberList(BaseModel):
    items: list[MemberOut]
    total: int


def _out(m: Membership, u: User) -> dict[str, Any]:
    return {"id": str(m.id), "user_id": str(u.id), "email": u.email, "full_name": u.full_name,
            "roles": list(m.roles), "active": m.is_active,
            "created_at": m.created_at.isoformat()}


def _check_roles(roles: list[str] | None) -> None:
    unknown = [r for r in roles or [] if r not in ROLES]
    if unknown:
        raise ApiError(422, "some fields are not valid", "invalid",
                       {"roles": f"unknown role(s) {', '.join(unknown)}; roles are "
                                 f"{', '.join(ROLES)}"})


@bp.get("/members")
@api_auth("tenant:read")
@doc(summary="List the tenant's members", query=MemberQuery, response=MemberList)
def list_members() -> ResponseReturnValue:
    query = parse_query(MemberQuery)
    rows = services.tenant_members(db.session, g.tenant.id)
    items = [_out(m, u) for m, u in rows if query.active is None or m.is_active == query.active]
    return jsonify(items=items, total=len(items))


@bp.post("/members")
@api_auth("members:write")
@idempotent
@doc(summary="Add a member (an existing user or a new one)", body=MemberIn,
     response=MemberOut, status=201)
def add_member() -> ResponseReturnValue:
    body = parse_body(MemberIn)
    _check_roles(body.roles)
    known = services.find_user_by_email(db.session, body.email)
    existing = services.membership_of(db.session, g.tenant.id, known.id) if known else None
    if existing is not None:
        raise ApiError(409, f"{body.email} is already a member", "conflict",
                       {"id": str(existing.id)})
    try:
        membership, user, generated = services.add_member(
            db.session, g.tenant, email=body.email, roles=body.roles,
            password=body.password, full_name=body.full_name)
    except services.TenancyError as exc:
        raise ApiError(422, str(exc), "invalid", {exc.field or "body": str(exc)}) from None
    out = _out(membership, user)
    if generated:
        out["initial_password"] = generated  # shown once, like in the portal
    return jsonify(out), 201


@bp.patch("/members/<member_id>")
@api_auth("members:write")
@doc(summary="Change a member's roles or active flag", body=MemberPatch,
     response=MemberOut, errors=(409,))
def change_member(member_id: str) -> ResponseReturnValue:
    try:
        mid = uuid.UUID(member_id)
    except ValueError:
        raise ApiError(404, "no such member") from None
    body = parse_body(MemberPatch)
    _check_roles(body.roles)
    try:
        if body.roles is not None:
            services.change_member_roles(db.session, g.tenant, mid, body.roles)
        if body.active is not None:
            services.set_member_active(db.session, g.tenant, mid, body.active)
    except services.NoSuchMember:
        raise ApiError(404, "no such member") from None
    except services.TenancyError as exc:
        raise ApiError(409, str(exc), "conflict") from None
    db.session.commit()
    for m, u in services.tenant_members(db.session, g.tenant.id):
        if m.id == mid:
            return jsonify(_out(m, u))
    raise ApiError(404, "no such member")
