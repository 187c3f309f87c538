"""Portal: the tenant's security log, for owners and admins (``security:read``),
filtered by kind, person and dates, newest first, paged."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import g, render_template, request
from flask.typing import ResponseReturnValue

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV
from tenants import services

from . import security_log

bp = tenant_blueprint("security_log", __name__, "/security-log", template_folder="templates")
NAV.append(("Security log", "security_log.index", "security:read", 86))


def _date(raw: str | None) -> tuple[dt.date | None, str | None]:
    if not raw:
        return None, None
    try:
        return dt.date.fromisoformat(raw), None
    except ValueError:
        return None, f"{raw!r} is not a date (YYYY-MM-DD)"


@bp.get("/")
@requires("security:read")
def index() -> ResponseReturnValue:
    args = request.args
    errors: dict[str, str] = {}
    kind = args.get("kind") or None
    if kind and kind not in security_log.KINDS:
        errors["kind"], kind = "unknown kind of event", None
    user_id = None
    if args.get("user"):
        try:
            user_id = uuid.UUID(args["user"])
        except ValueError:
            errors["user"] = "unknown member"
    since, err = _date(args.get("since"))
    if err:
        errors["since"] = err
    until, err = _date(args.get("until"))
    if err:
        errors["until"] = err
    try:
        page = max(1, int(args.get("page", "1")))
    except ValueError:
        page = 1
    rows, more = security_log.search(db.session, kind=kind, user_id=user_id, since=since,
                                     until=until, page=page)
    members = services.tenant_members(db.session, g.tenant.id)
    emails = {str(u.id): u.email for _, u in members}
    filters = {k: args.get(k, "") for k in ("kind", "user", "since", "until")}
    return render_template("security/log.html", rows=rows, more=more, page=page,
                           kinds=security_log.KINDS, members=members, emails=emails,
                           filters=filters, errors=errors), 422 if errors else 200
