"""Portal: leads (list, add, qualify, convert), deals (list, board by stage with move
buttons, detail with stage history and activity timeline), activities, and the stage
settings for admins."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import pipeline
from . import services as crm

bp = tenant_blueprint("pipeline", __name__, "/crm", template_folder="templates")
NAV.append(("Leads", "pipeline.leads", "crm:read", 12))
NAV.append(("Deals", "pipeline.deals", "deals:read", 13))
NAV.append(("Deal board", "pipeline.board", "deals:read", 14))
LEAD_KEYS = ("name", "company", "email", "phone", "source", "status", "notes")


def _uuid(raw: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(raw or "")
    except ValueError:
        abort(404)


def _page() -> int:
    try:
        return max(1, min(100_000, int(request.args.get("page", "1"))))
    except ValueError:
        return 1


# --- leads -------------------------------------------------------------------------------


@bp.route("/leads", methods=["GET", "POST"])
@requires("crm:read")
def leads() -> ResponseReturnValue:
    status = request.args.get("status") if request.args.get("status") in (
        "new", "contacted", "qualified", "unqualified", "converted") else None
    q = (request.args.get("q") or "").strip()[:200] or None
    values = dict.fromkeys(LEAD_KEYS, "") | {"source": "Web Page Form", "status": "new"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not g.ctx.can("crm:write"):
            abort(403)
        values = {k: (request.form.get(k) or "").strip() for k in LEAD_KEYS}
        try:
            lead = pipeline.create_lead(db.session, dict(values))
            db.session.commit()
        except crm.CrmError as exc:
            db.session.rollback()
            errors[exc.field or "name"] = str(exc)
        else:
            flash(f"Lead {lead.name} added.", "success")
            return redirect(url_for("pipeline.lead", lead_id=lead.id))
    page = pipeline.list_leads(db.session, q=q, status=status, page=_page(), per_page=25)
    return render_template("crm/leads.html", page=page, status=status, q=q, values=values,
                           errors=errors), (422 if errors else 200)


@bp.route("/leads/<lead_id>", methods=["GET", "POST"])
@requires("crm:read")
def lead(lead_id: str) -> ResponseReturnValue:
    found = pipeline.get_lead(db.session, _uuid(lead_id))
    if found is None:
        abort(404)
    error = None
    if request.method == "POST":
        action = request.form.get("action")
        if not g.ctx.can("deals:write" if action == "convert" else "crm:write"):
            abort(403)
        try:
            if action == "convert":
                value = Decimal(request.form.get("value") or "0")
                done = pipeline.convert_lead(db.session, found, value=value,
                                             deal_name=request.form.get("deal_name") or None)
                db.session.commit()
                flash("Converted: account, contact and deal created"
                      + (" (existing account reused)" if done.reused_account else "") + ".",
                      "success")
                return redirect(url_for("pipeline.deal", deal_id=done.deal.id))
            pipeline.update_lead(db.session, found, {"status": request.form.get("status")})
            db.session.commit()
            flash(f"Lead is now {found.status}.", "success")
            return redirect(url_for("pipeline.lead", lead_id=found.id))
        except InvalidOperation:
            error = "the value is a number, like 12000"
        except crm.CrmError as exc:
            db.session.rollback()
            error = str(exc)
    return render_template("crm/lead.html", lead=found, error=error), (422 if error else 200)


# --- deals -------------------------------------------------------------------------------


def _stage_map() -> dict[uuid.UUID, Any]:
    return {s.id: s for s in pipeline.list_stages(db.session)}


@bp.get("/deals")
@requires("deals:read")
def deals() -> ResponseReturnValue:
    stages = _stage_map()
    stage = request.args.get("stage")
    stage_id = next((s.id for s in stages.values() if s.name == stage), None)
    status = request.args.get("status") if request.args.get("status") in (
        "open", "won", "lost") else None
    page = pipeline.list_deals(db.session, stage_id=stage_id, status=status, page=_page(),
                               per_page=25)
    accounts = {d.account_id: crm.get_account(db.session, d.account_id) for d in page.items}
    return render_template("crm/deals.html", page=page, stages=stages, stage=stage,
                           status=status, accounts=accounts)


@bp.route("/deals/new", methods=["GET", "POST"])
@requires("deals:write")
def new_deal() -> ResponseReturnValue:
    values = {"name": "", "account_id": request.args.get("account_id", ""), "value": "0",
              "currency": g.tenant.base_currency, "expected_close": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {k: (request.form.get(k) or "").strip() for k in values}
        try:
            data = {"name": values["name"], "account_id": uuid.UUID(values["account_id"]),
                    "value": Decimal(values["value"] or "0"), "currency": values["currency"],
                    "expected_close": (dt.date.fromisoformat(values["expected_close"])
                                       if values["expected_close"] else None),
                    "owner_id": g.ctx.user_id}
        except (ValueError, InvalidOperation):
            errors["value"] = "choose an account; the value is a number and the date a date"
        else:
            try:
                deal = pipeline.create_deal(db.session, data)
                db.session.commit()
            except crm.CrmError as exc:
                db.session.rollback()
                errors[exc.field or "name"] = str(exc)
            else:
                flash(f"Deal {deal.name} created.", "success")
                return redirect(url_for("pipeline.deal", deal_id=deal.id))
    return render_template("crm/deal_form.html", values=values, errors=errors,
                           accounts=crm.list_accounts(db.session, per_page=200).items), (
        422 if errors else 200)


@bp.get("/deals/<deal_id>")
@requires("deals:read")
def deal(deal_id: str) -> ResponseReturnValue:
    found = pipeline.get_deal(db.session, _uuid(deal_id))
    if found is None:
        abort(404)
    return _deal_page(found, None)


def _deal_page(found: Any, error: str | None) -> ResponseReturnValue:
    stages = _stage_map()
    return render_template(
        "crm/deal.html", deal=found, stages=stages, error=error,
        account=crm.get_account(db.session, found.account_id),
        contact=crm.get_contact(db.session, found.contact_id) if found.contact_id else None,
        history=pipeline.deal_history(db.session, found.id),
        activities=pipeline.list_activities(db.session, deal_id=found.id, per_page=100).items,
        stage_list=sorted(stages.values(), key=lambda s: s.position)), (422 if error else 200)


@bp.post("/deals/<deal_id>/stage")
@requires("deals:write")
def move(deal_id: str) -> ResponseReturnValue:
    """The board's and the detail page's move buttons (plain form posts; htmx swaps the
    board when present)."""
    found = pipeline.get_deal(db.session, _uuid(deal_id))
    if found is None:
        abort(404)
    stage = _stage_map().get(_uuid(request.form.get("stage_id")))
    if stage is None:
        abort(404)
    try:
        pipeline.move_deal(db.session, found, stage,
                           lost_reason=request.form.get("lost_reason") or "")
        db.session.commit()
    except crm.CrmError as exc:
        db.session.rollback()
        if request.form.get("from") == "board":
            flash(f"{found.name}: {exc}", "error")
            return redirect(url_for("pipeline.board"))
        return _deal_page(found, str(exc))
    flash(f"{found.name} moved to {stage.name}.", "success")
    if request.form.get("from") == "board":
        return redirect(url_for("pipeline.board"))
    return redirect(url_for("pipeline.deal", deal_id=found.id))


@bp.post("/deals/<deal_id>/activities")
@requires("crm:write")
def log_activity(deal_id: str) -> ResponseReturnValue:
    found = pipeline.get_deal(db.session, _uuid(deal_id))
    if found is None:
        abort(404)
    try:
        pipeline.create_activity(db.session, {
            "kind": request.form.get("kind"), "subject": request.form.get("subject"),
            "body": request.form.get("body") or "", "deal_id": found.id})
        db.session.commit()
    except crm.CrmError as exc:
        db.session.rollback()
        return _deal_page(found, str(exc))
    flash("Logged.", "success")
    return redirect(url_for("pipeline.deal", deal_id=found.id))


@bp.post("/activities/<activity_id>/done")
@requires("crm:write")
def activity_done(activity_id: str) -> ResponseReturnValue:
    activity = pipeline.get_activity(db.session, _uuid(activity_id))
    if activity is None:
        abort(404)
    pipeline.set_done(db.session, activity, True)
    db.session.commit()
    if activity.deal_id:
        return redirect(url_for("pipeline.deal", deal_id=activity.deal_id))
    return redirect(url_for("pipeline.deals"))


@bp.get("/board")
@requires("deals:read")
def board() -> ResponseReturnValue:
    columns = pipeline.board(db.session)
    ids = {d.account_id for _, deals, _ in columns for d in deals}
    accounts = {i: crm.get_account(db.session, i) for i in ids}
    return render_template("crm/board.html", columns=columns, accounts=accounts,
                           stages=[s for s, _, _ in columns])
