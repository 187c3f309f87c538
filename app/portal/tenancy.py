"""Resolve the tenant of a portal request, once, from the URL and the membership.

``/t/<slug>/...``: the slug picks the tenant, the signed-in user's *active
membership* in it provides the roles. No membership, an inactive one, or a
suspended tenant all answer 404, the same as a tenant that does not exist, so the
portal never confirms which companies use it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for

from app.auth.session import current_user
from app.db import db
from tenants import services
from tenants.context import TenantContext


def load_tenant(slug: str) -> Any:
    """Called before every portal view: sets g.tenant, g.membership, g.ctx."""
    user = current_user()
    if user is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    tenant = services.find_tenant_by_slug(db.session, slug)
    if tenant is None or tenant.status != "active":
        abort(404)
    membership = services.membership_of(db.session, tenant.id, user.id)
    if membership is None or not membership.is_active:
        abort(404)
    ctx = services.context_for(tenant, membership)
    services.bind_session_context(db.session, ctx)
    g.tenant, g.membership, g.ctx = tenant, membership, ctx
    return None


def tenant_blueprint(name: str, import_name: str, prefix: str = "",
                     template_folder: str | None = None) -> Blueprint:
    """A blueprint under ``/t/<slug><prefix>`` whose views run inside the tenant.

    Every domain's portal views use one, so tenant resolution, the 404 rule and the
    shared layout context are the same everywhere and written once.
    """
    bp = Blueprint(name, import_name, url_prefix=f"/t/<slug>{prefix}",
                   template_folder=template_folder)

    @bp.url_value_preprocessor
    def _pull_slug(_endpoint: str | None, values: dict | None) -> None:
        g.slug = (values or {}).pop("slug", None)

    @bp.url_defaults
    def _add_slug(endpoint: str, values: dict) -> None:
        if "slug" not in values and g.get("slug"):
            values["slug"] = g.slug

    @bp.before_request
    def _resolve_tenant() -> Any:
        return load_tenant(g.slug)

    bp.context_processor(portal_context)
    return bp


def portal_context() -> dict:
    """Layout context for tenant pages: navigation, tenant switcher, role labels."""
    if "ctx" not in g:  # an error page for a tenant that was not resolved
        return {}
    from tenants.permissions import ROLE_LABELS

    from .views import NAV

    nav = [(label, ep) for label, ep, perm, _ in sorted(NAV, key=lambda item: item[3])
           if g.ctx.can(perm)]
    choices = services.memberships_of_user(db.session, g.ctx.user_id)
    return {"nav": nav, "tenant": g.tenant, "ctx": g.ctx, "tenant_choices": choices,
            "role_labels": ROLE_LABELS}


def current_ctx() -> TenantContext:
    return g.ctx


def requires(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the permission a portal view needs; 403 without it."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not g.ctx.can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_permission = permission  # type: ignore[attr-defined]
        return wrapper

    return decorator
