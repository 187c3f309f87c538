"""Portal: webhook endpoints, their delivery log, and replay."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField, URLField
from wtforms.validators import DataRequired, Length, Optional

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import webhooks
from .models import WebhookDelivery, WebhookEndpoint

bp = tenant_blueprint("webhooks", __name__, "/webhooks", template_folder="templates")
NAV.append(("Webhooks", "webhooks.index", "webhooks:manage", 85))


class EndpointForm(FlaskForm):
    url = URLField("Endpoint URL", validators=[DataRequired(), Length(max=2000)])
    description = StringField("Description", validators=[Optional(), Length(max=200)])
    event_types = StringField("Event types (comma separated; * for all, crm.* for a domain)",
                              validators=[DataRequired(), Length(max=1000)], default="*")


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        abort(404)


@bp.route("/", methods=["GET", "POST"])
@requires("webhooks:manage")
def index() -> ResponseReturnValue:
    form = EndpointForm()
    new_secret = None
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                _, new_secret = webhooks.create_endpoint(
                    db.session, url=form.url.data,
                    event_types=form.event_types.data.split(","),
                    description=form.description.data or "")
            except webhooks.WebhookError as exc:
                db.session.rollback()
                getattr(form, exc.field or "url").errors.append(str(exc))
                status = 422
            else:
                db.session.commit()
                form = EndpointForm(formdata=None)
        else:
            status = 422
    endpoints = db.session.scalars(select(WebhookEndpoint)
                                   .order_by(WebhookEndpoint.created_at)).all()
    return render_template("events/webhooks.html", form=form, endpoints=endpoints,
                           new_secret=new_secret), status


@bp.get("/<endpoint_id>")
@requires("webhooks:manage")
def endpoint(endpoint_id: str) -> ResponseReturnValue:
    found = webhooks.get_endpoint(db.session, _uuid(endpoint_id))
    if found is None:
        abort(404)
    deliveries = db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == found.id)
        .order_by(WebhookDelivery.created_at.desc()).limit(100)).all()
    return render_template("events/webhook_endpoint.html", endpoint=found,
                           deliveries=deliveries)


@bp.post("/<endpoint_id>/active")
@requires("webhooks:manage")
def toggle(endpoint_id: str) -> ResponseReturnValue:
    try:
        found = webhooks.set_active(db.session, _uuid(endpoint_id),
                                    request.form.get("active") == "1")
    except webhooks.WebhookError:
        abort(404)
    db.session.commit()
    flash("Endpoint enabled." if found.is_active else "Endpoint disabled.", "success")
    return redirect(url_for("webhooks.endpoint", endpoint_id=found.id))


@bp.post("/deliveries/<delivery_id>/replay")
@requires("webhooks:manage")
def replay(delivery_id: str) -> ResponseReturnValue:
    try:
        delivery = webhooks.replay_delivery(db.session, _uuid(delivery_id))
    except webhooks.WebhookError:
        abort(404)
    db.session.commit()
    flash("Delivery queued again.", "success")
    return redirect(url_for("webhooks.endpoint", endpoint_id=delivery.endpoint_id))
