"""Portal: the exceptions queue, where work that needs a person waits.

Each row shows the consumer, the event, the reason in plain words and the context
the consumer attached (the SKU that is short, the credit limit exceeded). Retry
sends the same event to the same consumer again through the outbox, so it resumes
where it stopped and cannot double what already happened.
"""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import services
from .models import OutboxEvent

bp = tenant_blueprint("events", __name__, "/exceptions", template_folder="templates")
NAV.append(("Exceptions", "events.exceptions", "exceptions:read", 80))


@bp.get("/")
@requires("exceptions:read")
def exceptions() -> ResponseReturnValue:
    items = services.open_exceptions(db.session)
    events = {}
    if items:
        rows = db.session.scalars(
            select(OutboxEvent).where(OutboxEvent.id.in_([i.event_id for i in items])))
        events = {r.id: r for r in rows}
    return render_template("events/exceptions.html", items=items, events=events)


@bp.post("/<exception_id>/retry")
@requires("exceptions:retry")
def retry(exception_id: str) -> ResponseReturnValue:
    try:
        eid = uuid.UUID(exception_id)
    except ValueError:
        abort(404)
    try:
        services.retry_exception(db.session, eid)
    except services.EventError as exc:
        db.session.rollback()
        if str(exc) == "no such exception":
            abort(404)
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("Queued again: the worker will retry it shortly.", "success")
    return redirect(url_for("events.exceptions"))
