"""``/api/v1/me``: who the token acts as, so an integrator can check its set-up."""

from __future__ import annotations

import uuid

from flask import g, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from . import bp
from .auth import authenticate
from .openapi import doc


class TenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    base_currency: str


class TokenOut(BaseModel):
    id: uuid.UUID
    name: str


class MeOut(BaseModel):
    tenant: TenantOut
    user_id: uuid.UUID
    token: TokenOut
    roles: list[str]
    permissions: list[str]


@bp.get("/me")
@doc(summary="The tenant, user, roles and permissions of the calling token", response=MeOut)
def me() -> ResponseReturnValue:
    ctx = authenticate()
    return jsonify(
        tenant={"id": str(ctx.tenant_id), "slug": ctx.tenant_slug, "name": g.tenant.name,
                "base_currency": g.tenant.base_currency},
        user_id=str(ctx.user_id), token={"id": str(g.api_token.id), "name": g.api_token.name},
        roles=sorted(ctx.roles), permissions=sorted(ctx.permissions),
    )
