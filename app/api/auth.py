"""Bearer authentication for ``/api/v1``: resolve the token, set the tenant, check
the permission declared on the route.

Errors use the API's JSON shape: 401 with ``WWW-Authenticate: Bearer`` for a missing,
malformed, unknown or revoked token (one message for all, so nothing tells a guesser
which part was wrong), 403 ``insufficient_permission`` for a valid token without the
permission.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, request

from app.db import db
from app.errors import ApiError
from tenants import services
from tenants.context import TenantContext, activate

from . import tokens


class Unauthorized(ApiError):
    def __init__(self) -> None:
        super().__init__(401, "a valid API token is required: Authorization: Bearer erp_...",
                         "unauthorized")


def authenticate() -> TenantContext:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    parsed = tokens.parse(raw.strip()) if scheme.lower() == "bearer" else None
    if parsed is None:
        raise Unauthorized()
    tenant_id, secret = parsed
    # Route the look-up to the token's tenant only (see app/api/tokens.py): the
    # transaction begins under it, and finds nothing unless the secret is that
    # tenant's live token.
    services.bind_session_context(db.session, TenantContext(tenant_id=tenant_id,
                                                            tenant_slug=""))
    found = tokens.find_active(db.session, secret)
    if found is None:
        db.session.rollback()
        activate(None)
        raise Unauthorized()
    token, membership, tenant = found
    if db.session.dirty:
        db.session.commit()  # last_used_at, written at most every few minutes
    ctx = services.context_for(tenant, membership)
    services.bind_session_context(db.session, ctx)
    g.tenant, g.ctx, g.api_token = tenant, ctx, token
    return ctx


def api_auth(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare that a route needs a token whose user holds ``permission``."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = authenticate()
            if not ctx.can(permission):
                raise ApiError(403, f"this token's user lacks the permission {permission!r}",
                               "insufficient_permission")
            return view(*args, **kwargs)

        wrapper.required_permission = permission  # type: ignore[attr-defined]
        return wrapper

    return decorator
