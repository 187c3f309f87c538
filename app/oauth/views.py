"""Portal: the tenant's API clients (create with scopes, secret shown once; revoke).

Only members with ``tenant:write`` (owners, admins) manage clients, and a client
never gets a scope its creator does not hold.
"""

from __future__ import annotations

import uuid

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import services

bp = tenant_blueprint("api_clients", __name__, "/api-clients", template_folder="templates")
NAV.append(("API clients", "api_clients.index", "tenant:write", 87))


@bp.route("/", methods=["GET", "POST"])
@requires("tenant:write")
def index() -> ResponseReturnValue:
    created, secret, error, status = None, None, None, 200
    chosen = request.form.getlist("scopes") if request.method == "POST" else []
    if request.method == "POST":
        try:
            created, secret = services.create_client(
                db.session, name=request.form.get("name", ""), scopes=chosen,
                created_by=g.ctx.user_id, ceiling=g.ctx.permissions)
        except services.OAuthClientError as exc:
            db.session.rollback()
            error, status = str(exc), 422
        else:
            db.session.commit()
    grantable = [(s, label) for s, label in services.SCOPES.items() if g.ctx.can(s)]
    return render_template("oauth/clients.html", rows=services.list_clients(db.session),
                           created=created, secret=secret, error=error, grantable=grantable,
                           chosen=set(chosen), name=request.form.get("name", "") if error else "",
                           ), status


@bp.post("/<client_pk>/revoke")
@requires("tenant:write")
def revoke(client_pk: str) -> ResponseReturnValue:
    try:
        pk = uuid.UUID(client_pk)
    except ValueError:
        abort(404)
    try:
        services.revoke_client(db.session, pk, by=g.ctx.user_id)
    except services.OAuthClientError:
        db.session.rollback()
        abort(404)
    db.session.commit()
    flash("Client revoked: its secret and every token it holds stop working now.", "success")
    return redirect(url_for("api_clients.index"))
