"""Portal: a member's API tokens (create, shown once; revoke). Admins see them all."""

from __future__ import annotations

import uuid

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV
from tenants.models import User

from . import tokens

bp = tenant_blueprint("api_tokens", __name__, "/api-tokens", template_folder="templates")
NAV.append(("API tokens", "api_tokens.index", "tenant:read", 88))


@bp.route("/", methods=["GET", "POST"])
@requires("tenant:read")
def index() -> ResponseReturnValue:
    new_token, error, status = None, None, 200
    if request.method == "POST":
        try:
            _, new_token = tokens.create_token(db.session, g.ctx.user_id,
                                               request.form.get("name", ""),
                                               request.form.get("scopes", ""))
        except tokens.TokenError as exc:
            db.session.rollback()
            error, status = str(exc), 422
        else:
            db.session.commit()
    see_all = g.ctx.can("tokens:manage")
    rows = tokens.list_tokens(db.session, None if see_all else g.ctx.user_id)
    owners = {}
    if see_all and rows:
        owners = dict(db.session.execute(
            select(User.id, User.email).where(User.id.in_({r.user_id for r in rows}))).all())
    return render_template("api/tokens.html", rows=rows, owners=owners, new_token=new_token,
                           error=error, see_all=see_all), status


@bp.post("/<token_id>/revoke")
@requires("tenant:read")
def revoke(token_id: str) -> ResponseReturnValue:
    try:
        tid = uuid.UUID(token_id)
    except ValueError:
        abort(404)
    try:
        tokens.revoke(db.session, tid,
                      user_id=None if g.ctx.can("tokens:manage") else g.ctx.user_id)
    except tokens.TokenError:
        abort(404)
    db.session.commit()
    flash("Token revoked: it no longer works.", "success")
    return redirect(url_for("api_tokens.index"))
