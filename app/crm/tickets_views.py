"""Portal: the ticket queue, a ticket with its comment thread, create and edit forms.

The queue shows active tickets (open or pending) by default, most urgent first and
within a priority the oldest first, so the top row is what to answer next.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV
from tenants import services as tenancy

from . import custom_fields, services, tickets
from .custom_fields import CustomFieldError
from .custom_fields_views import (
    attach_errors,
    custom_data,
    fill_custom,
    list_filter,
    with_custom_fields,
)

bp = tenant_blueprint("tickets", __name__, "/crm/tickets", template_folder="templates")
NAV.append(("Tickets", "tickets.queue", "crm:read", 16))
PER_PAGE = 25
PRIORITY_LABELS = {"urgent": "Urgent", "high": "High", "normal": "Normal", "low": "Low"}
STATUS_LABELS = {"open": "Open", "pending": "Pending", "resolved": "Resolved",
                 "closed": "Closed"}


class TicketForm(FlaskForm):
    subject = StringField("Subject", validators=[DataRequired(), Length(max=200)])
    priority = SelectField("Priority", default="normal",
                           choices=[SelectChoice(p, PRIORITY_LABELS[p])
                                    for p in tickets.PRIORITIES])
    account_id = SelectField("Account", choices=[], validators=[Optional()])
    contact_id = SelectField("Contact", choices=[], validators=[Optional()])
    assignee_id = SelectField("Assignee", choices=[], validators=[Optional()])
    description = TextAreaField("Description", validators=[Optional(), Length(max=20000)])


class CommentForm(FlaskForm):
    body = TextAreaField("Comment", validators=[DataRequired(), Length(max=20000)])
    internal = BooleanField("Internal note (not for the customer)")


class StatusForm(FlaskForm):
    status = SelectField("Status", choices=[], validators=[DataRequired()])


class AssignForm(FlaskForm):
    assignee_id = SelectField("Assignee", choices=[], validators=[Optional()])


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def _members() -> list[SelectChoice]:
    rows = tenancy.tenant_members(db.session, g.tenant.id)
    return [SelectChoice(str(u.id), u.full_name or u.email) for m, u in rows if m.is_active]


def _assignee_choices() -> list[SelectChoice]:
    return [SelectChoice("", "(unassigned)"), *_members()]


def _ticket_form(obj: tickets.Ticket | None = None) -> FlaskForm:
    form = with_custom_fields(TicketForm, db.session, "ticket")(obj=obj)
    accounts = services.list_accounts(db.session, per_page=200).items
    contacts = services.list_contacts(db.session, per_page=200).items
    form.account_id.choices = [SelectChoice("", "(none)")] + [
        SelectChoice(str(a.id), a.name) for a in accounts]
    form.contact_id.choices = [SelectChoice("", "(none)")] + [
        SelectChoice(str(c.id), f"{c.first_name} {c.last_name}".strip()) for c in contacts]
    form.assignee_id.choices = _assignee_choices()
    if request.method == "GET":
        if obj is not None:
            for name in ("account_id", "contact_id", "assignee_id"):
                value = getattr(obj, name)
                getattr(form, name).data = str(value) if value else ""
            fill_custom(form, obj.custom)
        else:
            form.account_id.data = request.args.get("account_id", "")
            form.contact_id.data = request.args.get("contact_id", "")
    return form


def _ticket_data(form: FlaskForm) -> dict[str, Any]:
    return {"subject": form.subject.data, "priority": form.priority.data,
            "description": form.description.data or "",
            "account_id": _uuid(form.account_id.data),
            "contact_id": _uuid(form.contact_id.data),
            "assignee_id": _uuid(form.assignee_id.data),
            "custom": custom_data(form)}


def _save(form: FlaskForm, save: Any) -> tickets.Ticket | None:
    """Call ``save`` once the form parses; refusals become inline messages."""
    if not form.validate_on_submit():
        return None
    try:
        ticket = save()
    except CustomFieldError as exc:
        db.session.rollback()
        attach_errors(form, exc, "subject")
    except services.CrmError as exc:
        db.session.rollback()
        getattr(form, exc.field or "subject", form.subject).errors.append(str(exc))
    else:
        db.session.commit()
        return ticket
    return None


def _load(ticket_id: str) -> tickets.Ticket:
    found = tickets.get_ticket(db.session, _uuid(ticket_id) or uuid.UUID(int=0))
    if found is None:
        abort(404)
    return found


@bp.get("")
@requires("crm:read")
def queue() -> ResponseReturnValue:
    view = request.args.get("view", "all")
    status = request.args.get("status", "active")
    priority = request.args.get("priority") or None
    try:
        page_no = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page_no = 1
    args: dict[str, Any] = {
        "status": None if status == "all" else status if status in (
            *tickets.STATUSES, "active") else "active",
        "priority": priority if priority in tickets.PRIORITIES else None,
        "assignee_id": g.ctx.user_id if view == "mine" else None,
        "unassigned": view == "unassigned", "q": request.args.get("q") or None,
        "sort": "priority", "page": page_no, "per_page": PER_PAGE,
    }
    custom, shown = list_filter(db.session, "ticket")
    try:
        page = tickets.list_tickets(db.session, custom=custom, **args)
    except CustomFieldError as exc:
        shown["error"] = "; ".join(f"{k.removeprefix('custom.')}: {v}"
                                   for k, v in exc.fields.items())
        page = services.Page([], 0, 1, PER_PAGE)
    members = {c.value: c.label for c in _members()}
    filters = {"view": view, "status": status, "priority": priority or "", "q": args["q"]}
    return render_template("crm/tickets.html", page=page, filters=filters, cf=shown,
                           members=members, priority_labels=PRIORITY_LABELS,
                           status_labels=STATUS_LABELS), 422 if shown.get("error") else 200


@bp.route("/new", methods=["GET", "POST"])
@requires("crm:write")
def new() -> ResponseReturnValue:
    form = _ticket_form()
    ticket = _save(form, lambda: tickets.create_ticket(db.session, _ticket_data(form)))
    if ticket is not None:
        flash(f"Ticket #{ticket.number} opened.", "success")
        return redirect(url_for("tickets.detail", ticket_id=ticket.id))
    status = 422 if any(f.errors for f in form) else 200
    return render_template("crm/ticket_form.html", form=form, ticket=None), status


@bp.route("/<ticket_id>/edit", methods=["GET", "POST"])
@requires("crm:write")
def edit(ticket_id: str) -> ResponseReturnValue:
    found = _load(ticket_id)
    form = _ticket_form(found)
    ticket = _save(form, lambda: tickets.update_ticket(db.session, found, _ticket_data(form)))
    if ticket is not None:
        flash("Ticket saved.", "success")
        return redirect(url_for("tickets.detail", ticket_id=found.id))
    status = 422 if any(f.errors for f in form) else 200
    return render_template("crm/ticket_form.html", form=form, ticket=found), status


def _detail(ticket: tickets.Ticket, *, comment_form: CommentForm | None = None,
            status_form: StatusForm | None = None, assign_form: AssignForm | None = None,
            status: int = 200) -> ResponseReturnValue:
    status_form = status_form or StatusForm(status=ticket.status)
    status_form.status.choices = [SelectChoice(ticket.status, STATUS_LABELS[ticket.status])] + [
        SelectChoice(s, STATUS_LABELS[s]) for s in tickets.allowed_statuses(ticket)]
    assign_form = assign_form or AssignForm(assignee_id=str(ticket.assignee_id or ""))
    assign_form.assignee_id.choices = _assignee_choices()
    members = {c.value: c.label for c in _members()}
    account = services.get_account(db.session, ticket.account_id) if ticket.account_id else None
    contact = services.get_contact(db.session, ticket.contact_id) if ticket.contact_id else None
    return render_template(
        "crm/ticket.html", ticket=ticket, comments=tickets.list_comments(db.session, ticket),
        comment_form=comment_form or CommentForm(), status_form=status_form,
        assign_form=assign_form, members=members, account=account, contact=contact,
        definitions=custom_fields.list_definitions(db.session, "ticket"),
        priority_labels=PRIORITY_LABELS, status_labels=STATUS_LABELS), status


@bp.get("/<ticket_id>")
@requires("crm:read")
def detail(ticket_id: str) -> ResponseReturnValue:
    return _detail(_load(ticket_id))


@bp.post("/<ticket_id>/comments")
@requires("crm:write")
def comment(ticket_id: str) -> ResponseReturnValue:
    ticket = _load(ticket_id)
    form = CommentForm()
    if form.validate_on_submit():
        try:
            tickets.add_comment(db.session, ticket, form.body.data, internal=form.internal.data)
        except services.CrmError as exc:
            db.session.rollback()
            form.body.errors.append(str(exc))
        else:
            db.session.commit()
            flash("Comment added.", "success")
            return redirect(url_for("tickets.detail", ticket_id=ticket.id) + "#comments")
    return _detail(ticket, comment_form=form, status=422)


@bp.post("/<ticket_id>/status")
@requires("crm:write")
def change_status(ticket_id: str) -> ResponseReturnValue:
    ticket = _load(ticket_id)
    form = StatusForm()
    form.status.choices = [SelectChoice(s) for s in tickets.STATUSES]
    if form.validate_on_submit():
        try:
            tickets.change_status(db.session, ticket, form.status.data)
        except services.CrmError as exc:
            db.session.rollback()
            form.status.errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"Ticket is now {STATUS_LABELS[ticket.status].lower()}.", "success")
            return redirect(url_for("tickets.detail", ticket_id=ticket.id))
    db.session.refresh(ticket)
    return _detail(ticket, status_form=form, status=422)


@bp.post("/<ticket_id>/assign")
@requires("crm:write")
def assign(ticket_id: str) -> ResponseReturnValue:
    ticket = _load(ticket_id)
    form = AssignForm()
    form.assignee_id.choices = _assignee_choices()
    if form.validate_on_submit():
        try:
            tickets.update_ticket(db.session, ticket,
                                  {"assignee_id": _uuid(form.assignee_id.data)})
        except services.CrmError as exc:
            db.session.rollback()
            form.assignee_id.errors.append(str(exc))
        else:
            db.session.commit()
            flash("Assignee changed.", "success")
            return redirect(url_for("tickets.detail", ticket_id=ticket.id))
    db.session.refresh(ticket)
    return _detail(ticket, assign_form=form, status=422)
