"""REST API v1 root. Domain packages add their resources to ``bp``.

The API authenticates with bearer tokens (added by the CRM and SSO issues), never
the session cookie, so it is exempt from CSRF and cannot be driven by a forged
cross-site form post.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from app.security import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


@bp.get("/")
def index() -> ResponseReturnValue:
    """Discovery document: which version this is and where the health checks are."""
    return jsonify(api="erp", version="v1", health="/healthz", ready="/readyz")


@bp.get("/me")
def me() -> ResponseReturnValue:
    """Who the token acts as: tenant, user, roles and permissions (for integrators)."""
    from flask import g

    from .auth import authenticate

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
