"""Bearer authentication for ``/api/v1``: resolve the token, set the tenant, check
the permission declared on the route against the token's scopes.

Two kinds of bearer token are accepted, told apart by their prefix and each looked
up only in its own table (the token type is checked on use):

* ``erp_<tenant>_<secret>``: a member's personal token. Rights: the user's current
  permissions, narrowed to the token's scopes when it has any.
* ``erpat_<tenant>_<secret>``: an OAuth access token of an API client (client
  credentials). Rights: exactly the token's scopes (never more than its client's
  current scopes); it acts for the tenant, with no user.

Scope names are permission names, so ``@api_auth("crm:write")`` needs the scope
``crm:write``. Errors use the API's JSON shape: 401 with ``WWW-Authenticate: Bearer``
for a missing, malformed, unknown, expired or revoked token (one message for all, so
nothing tells a guesser which part was wrong); 403 ``insufficient_permission`` when a
personal token's user lacks the permission; 403 ``insufficient_scope`` (RFC 6750
section 3.1, with the scope in ``WWW-Authenticate``) when the token's scopes lack it.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Callable
from typing import Any

from flask import g, request

from app.db import db
from app.errors import ApiError
from tenants import services
from tenants.context import TenantContext, activate
from tenants.models import Tenant

from . import tokens


class Unauthorized(ApiError):
    def __init__(self) -> None:
        super().__init__(401, "a valid API token is required: Authorization: Bearer erp_... "
                         "or an OAuth access token", "unauthorized")


class InsufficientScope(ApiError):
    def __init__(self, scope: str) -> None:
        super().__init__(403, f"this token lacks the scope {scope!r}", "insufficient_scope",
                         headers={"WWW-Authenticate":
                                  f'Bearer realm="erp", error="insufficient_scope", '
                                  f'scope="{scope}"'})


def _bind_tenant(tenant_id: uuid.UUID) -> Tenant:
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None or tenant.status != "active":
        raise Unauthorized()
    # Route the look-up to this tenant only (see app/api/tokens.py).
    services.bind_session_context(db.session, TenantContext(tenant_id=tenant.id,
                                                            tenant_slug=tenant.slug))
    return tenant


def _refuse() -> None:
    db.session.rollback()
    activate(None)
    raise Unauthorized()


def authenticate() -> TenantContext:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    raw = raw.strip() if scheme.lower() == "bearer" else ""
    g.token_scopes = None
    if raw.startswith("erpat_"):
        return _authenticate_access_token(raw)
    parsed = tokens.parse(raw)
    if parsed is None:
        raise Unauthorized()
    tenant_id, secret = parsed
    # Route the look-up to the token's tenant only (see app/api/tokens.py): the
    # transaction begins under it, and finds nothing unless the secret is that
    # tenant's live token (one query for token, membership and tenant status).
    services.bind_session_context(db.session, TenantContext(tenant_id=tenant_id,
                                                            tenant_slug=""))
    found = tokens.find_active(db.session, secret)
    if found is None:
        _refuse()
    token, membership, tenant = found
    if db.session.dirty:
        db.session.commit()  # last_used_at, written at most every few minutes
    ctx = services.context_for(tenant, membership)
    g.user_permissions = ctx.permissions
    g.token_scopes = frozenset(token.scopes) if token.scopes else None
    if g.token_scopes is not None:
        ctx = dataclasses.replace(ctx, permissions=ctx.permissions & g.token_scopes)
    services.bind_session_context(db.session, ctx)
    g.tenant, g.ctx, g.api_token, g.api_client = tenant, ctx, token, None
    return ctx


def _authenticate_access_token(raw: str) -> TenantContext:
    from app.oauth import services as oauth

    parsed = oauth.parse_access_token(raw)
    if parsed is None:
        raise Unauthorized()
    tenant_id, secret = parsed
    tenant = _bind_tenant(tenant_id)
    found = oauth.find_active_token(db.session, secret)
    if found is None:
        _refuse()
    token, client = found
    scopes = frozenset(token.scopes) & frozenset(client.scopes)
    db.session.commit()
    ctx = TenantContext(tenant_id=tenant.id, tenant_slug=tenant.slug, user_id=None,
                        roles=frozenset(), permissions=scopes)
    services.bind_session_context(db.session, ctx)
    g.tenant, g.ctx, g.api_token, g.api_client = tenant, ctx, None, client
    g.token_scopes = scopes
    return ctx


def check_permission(ctx: TenantContext, permission: str) -> None:
    """Raise the precise 403 when the authenticated token may not use ``permission``."""
    scopes = g.get("token_scopes")
    if g.get("api_client") is None and permission not in g.get("user_permissions", ()):
        raise ApiError(403, f"this token's user lacks the permission {permission!r}",
                       "insufficient_permission")
    if scopes is not None and permission not in scopes:
        raise InsufficientScope(permission)


def api_auth(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare that a route needs ``permission`` (as a scope of the token, and held by
    its user for personal tokens)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check_permission(authenticate(), permission)
            return view(*args, **kwargs)

        wrapper.required_permission = permission  # type: ignore[attr-defined]
        return wrapper

    return decorator
