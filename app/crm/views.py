"""Portal: accounts and contacts (lists with search, sort and pages; detail; forms)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import DecimalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from app.db import db
from app.money import CURRENCIES
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import custom_fields, services
from .custom_fields_views import (
    attach_errors,
    custom_data,
    fill_custom,
    list_filter,
    with_custom_fields,
)

bp = tenant_blueprint("crm", __name__, "/crm", template_folder="templates")
NAV.append(("Accounts", "crm.accounts", "crm:read", 10))
NAV.append(("Contacts", "crm.contacts", "crm:read", 11))
PER_PAGE = 25
ACCOUNT_SAVE = {"duplicate_field": "name", "default_field": "name", "detail": "crm.account",
                "key": "account_id"}
CONTACT_SAVE = {"duplicate_field": "email", "default_field": "last_name",
                "detail": "crm.contact", "key": "contact_id"}


class AccountForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    website = StringField("Website", validators=[Optional(), Length(max=500)])
    industry = StringField("Industry", validators=[Optional(), Length(max=100)])
    currency = SelectField("Currency", choices=[SelectChoice(c) for c in sorted(CURRENCIES)],
                           validators=[DataRequired()])
    payment_terms_days = IntegerField("Payment terms (days)", default=30,
                                      validators=[NumberRange(0, 365)])
    credit_limit = DecimalField("Credit limit", places=None,
                                validators=[Optional(), NumberRange(min=0)])
    billing_address = TextAreaField("Billing address", validators=[Optional(),
                                                                   Length(max=2000)])
    shipping_address = TextAreaField("Shipping address", validators=[Optional(),
                                                                     Length(max=2000)])


class ContactForm(FlaskForm):
    first_name = StringField("First name", validators=[Optional(), Length(max=100)])
    last_name = StringField("Last name", validators=[DataRequired(), Length(max=100)])
    email = StringField("Email", validators=[Optional(), Email(check_deliverability=False),
                                             Length(max=320)])
    phone = StringField("Phone", validators=[Optional(), Length(max=50)])
    title = StringField("Role / title", validators=[Optional(), Length(max=100)])
    account_id = SelectField("Account", choices=[], validators=[Optional()])


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        abort(404)


def _list_args() -> dict[str, Any]:
    sort = request.args.get("sort", "name")
    sort = sort if sort in services.SORTS else "name"
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    return {"q": request.args.get("q") or None, "sort": sort, "page": page,
            "per_page": PER_PAGE}


def _filtered(list_: Callable[..., services.Page], entity: str, args: dict[str, Any]
              ) -> tuple[services.Page, dict[str, Any]]:
    """List with the page's custom-field filter; a bad filter shows a message."""
    custom, shown = list_filter(db.session, entity)
    try:
        return list_(db.session, custom=custom, **args), shown
    except custom_fields.CustomFieldError as exc:
        shown["error"] = "; ".join(f"{k.removeprefix('custom.')}: {v}"
                                   for k, v in exc.fields.items())
        return services.Page([], 0, 1, args["per_page"]), shown


def _shown(args: dict[str, Any], cf: dict[str, Any]) -> dict[str, Any]:
    """List arguments for links (sort, pages) with the custom filter carried along."""
    return {**args, "cf": cf["cf"], "cv": cf["cv"]}


def _duplicate_message(exc: services.Duplicate, endpoint: str, key: str) -> Markup:
    link = url_for(endpoint, **{key: exc.existing_id})
    return Markup('{} <a href="{}">Open the existing record</a>.').format(escape(str(exc)),
                                                                           link)


def _account_data(form: AccountForm) -> dict[str, Any]:
    data = {k: getattr(form, k).data for k in (
        "name", "website", "industry", "currency", "payment_terms_days", "credit_limit",
        "billing_address", "shipping_address")}
    for text_field in ("website", "industry", "billing_address", "shipping_address"):
        data[text_field] = data[text_field] or ""
    data["custom"] = custom_data(form)
    return data


def _save(form: FlaskForm, save: Callable[[], Any], *, duplicate_field: str,
          default_field: str, detail: str, key: str, message: str) -> ResponseReturnValue | None:
    """Validate, call ``save`` (a service call), commit and redirect to the record's
    page; on refusal put the message beside the right field and return None."""
    if not form.validate_on_submit():
        return None
    try:
        record = save()
    except services.Duplicate as exc:
        db.session.rollback()
        getattr(form, duplicate_field).errors.append(_duplicate_message(exc, detail, key))
    except custom_fields.CustomFieldError as exc:
        db.session.rollback()
        attach_errors(form, exc, default_field)
    except services.CrmError as exc:
        db.session.rollback()
        getattr(form, exc.field or default_field).errors.append(str(exc))
    else:
        db.session.commit()
        flash(message, "success")
        return redirect(url_for(detail, **{key: record.id}))
    return None


# --- accounts ----------------------------------------------------------------------------


@bp.get("/accounts")
@requires("crm:read")
def accounts() -> ResponseReturnValue:
    args = _list_args()
    page, cf = _filtered(services.list_accounts, "account", args)
    return render_template("crm/accounts.html", page=page, args=_shown(args, cf), cf=cf), (
        422 if cf.get("error") else 200)


@bp.route("/accounts/new", methods=["GET", "POST"])
@requires("crm:write")
def new_account() -> ResponseReturnValue:
    form = with_custom_fields(AccountForm, db.session, "account")(
        currency=g.tenant.base_currency)
    done = _save(form, lambda: services.create_account(db.session, _account_data(form)),
                 **ACCOUNT_SAVE, message="Account created.")
    if done:
        return done
    status = 422 if form.errors else 200
    return render_template("crm/account_form.html", form=form, account=None), status


@bp.get("/accounts/<account_id>")
@requires("crm:read")
def account(account_id: str) -> ResponseReturnValue:
    found = services.get_account(db.session, _uuid(account_id))
    if found is None:
        abort(404)
    contacts = services.list_contacts(db.session, account_id=found.id, per_page=200).items
    return render_template("crm/account.html", account=found, contacts=contacts,
                           definitions=custom_fields.list_definitions(db.session, "account"))


@bp.route("/accounts/<account_id>/edit", methods=["GET", "POST"])
@requires("crm:write")
def edit_account(account_id: str) -> ResponseReturnValue:
    found = services.get_account(db.session, _uuid(account_id))
    if found is None:
        abort(404)
    form = with_custom_fields(AccountForm, db.session, "account")(obj=found)
    if request.method == "GET":
        fill_custom(form, found.custom)
    done = _save(form, lambda: services.update_account(db.session, found, _account_data(form)),
                 **ACCOUNT_SAVE, message="Account saved.")
    if done:
        return done
    status = 422 if form.errors else 200
    return render_template("crm/account_form.html", form=form, account=found), status


@bp.route("/accounts/<account_id>/delete", methods=["GET", "POST"])
@requires("crm:write")
def delete_account(account_id: str) -> ResponseReturnValue:
    found = services.get_account(db.session, _uuid(account_id))
    if found is None:
        abort(404)
    if request.method == "GET":
        return render_template("crm/confirm_delete.html", what="account", name=found.name,
                               back=url_for("crm.account", account_id=found.id))
    services.delete_account(db.session, found)
    db.session.commit()
    flash(f"Account {found.name} deleted.", "success")
    return redirect(url_for("crm.accounts"))


# --- contacts ------------------------------------------------------------------------------


def _contact_form(obj: Any = None) -> FlaskForm:
    form = with_custom_fields(ContactForm, db.session, "contact")(obj=obj)
    choices = [SelectChoice("", "(no account)")]
    choices += [SelectChoice(str(a.id), a.name)
                for a in services.list_accounts(db.session, per_page=200).items]
    form.account_id.choices = choices
    if obj is not None and request.method == "GET":
        form.account_id.data = str(obj.account_id) if obj.account_id else ""
        fill_custom(form, obj.custom)
    return form


def _contact_data(form: ContactForm) -> dict[str, Any]:
    return {"first_name": form.first_name.data or "", "last_name": form.last_name.data,
            "email": form.email.data or None, "phone": form.phone.data or "",
            "title": form.title.data or "",
            "account_id": uuid.UUID(form.account_id.data) if form.account_id.data else None,
            "custom": custom_data(form)}


@bp.get("/contacts")
@requires("crm:read")
def contacts() -> ResponseReturnValue:
    args = _list_args()
    page, cf = _filtered(services.list_contacts, "contact", args)
    names = {a.id: a.name for a in services.list_accounts(db.session, per_page=200).items}
    return render_template("crm/contacts.html", page=page, args=_shown(args, cf),
                           account_names=names,
                           cf=cf), 422 if cf.get("error") else 200


@bp.route("/contacts/new", methods=["GET", "POST"])
@requires("crm:write")
def new_contact() -> ResponseReturnValue:
    form = _contact_form()
    if request.method == "GET" and request.args.get("account_id"):
        form.account_id.data = request.args["account_id"]
    done = _save(form, lambda: services.create_contact(db.session, _contact_data(form)),
                 **CONTACT_SAVE, message="Contact created.")
    if done:
        return done
    status = 422 if form.errors else 200
    return render_template("crm/contact_form.html", form=form, contact=None), status


@bp.get("/contacts/<contact_id>")
@requires("crm:read")
def contact(contact_id: str) -> ResponseReturnValue:
    found = services.get_contact(db.session, _uuid(contact_id))
    if found is None:
        abort(404)
    account_row = services.get_account(db.session, found.account_id) if found.account_id else None
    return render_template("crm/contact.html", contact=found, account=account_row,
                           definitions=custom_fields.list_definitions(db.session, "contact"))


@bp.route("/contacts/<contact_id>/edit", methods=["GET", "POST"])
@requires("crm:write")
def edit_contact(contact_id: str) -> ResponseReturnValue:
    found = services.get_contact(db.session, _uuid(contact_id))
    if found is None:
        abort(404)
    form = _contact_form(found)
    done = _save(form, lambda: services.update_contact(db.session, found, _contact_data(form)),
                 **CONTACT_SAVE, message="Contact saved.")
    if done:
        return done
    status = 422 if form.errors else 200
    return render_template("crm/contact_form.html", form=form, contact=found), status


@bp.route("/contacts/<contact_id>/delete", methods=["GET", "POST"])
@requires("crm:write")
def delete_contact(contact_id: str) -> ResponseReturnValue:
    found = services.get_contact(db.session, _uuid(contact_id))
    if found is None:
        abort(404)
    if request.method == "GET":
        return render_template("crm/confirm_delete.html", what="contact",
                               name=f"{found.first_name} {found.last_name}".strip(),
                               back=url_for("crm.contact", contact_id=found.id))
    services.delete_contact(db.session, found)
    db.session.commit()
    flash("Contact deleted.", "success")
    return redirect(url_for("crm.contacts"))
