"""``/api/v1/me``: who the token acts as, so an integrator can check its set-up."""

from __future__ import annotations

import uuid
from typing import Literal

from flask import g, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

from . import bp
from .auth import authenticate
from .openapi import doc


class TenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    base_currency: str


class TokenOut(BaseModel):
    type: Literal["personal", "oauth"]
    id: uuid.UUID | None = None
    client_id: str | None = None
    name: str


class MeOut(BaseModel):
    tenant: TenantOut
    user_id: uuid.UUID | None
    token: TokenOut
    roles: list[str]
    permissions: list[str]
    scopes: list[str] | None = Field(description="The token's scopes; null: all of the "
                                                  "user's permissions")


@bp.get("/me")
@doc(summary="The tenant, user, roles and permissions of the calling token", response=MeOut)
def me() -> ResponseReturnValue:
    ctx = authenticate()
    if g.api_client is not None:
        token = {"type": "oauth", "client_id": g.api_client.client_id,
                 "name": g.api_client.name}
    else:
        token = {"type": "personal", "id": str(g.api_token.id), "name": g.api_token.name}
    scopes = g.get("token_scopes")
    return jsonify(
        tenant={"id": str(ctx.tenant_id), "slug": ctx.tenant_slug, "name": g.tenant.name,
                "base_currency": g.tenant.base_currency},
        user_id=str(ctx.user_id) if ctx.user_id else None, token=token,
        roles=sorted(ctx.roles), permissions=sorted(ctx.permissions),
        scopes=sorted(scopes) if scopes is not None else None,
    )
