"""Portal: the custom-fields settings page, and the helpers that put a tenant's
custom fields into any entity's WTForms form and list filter.

Form fields are named ``cf_<key>``. They only parse what the browser sent (a
number, a date); whether a value is required, a known choice or short enough is
decided by ``custom_fields.validate_custom`` in the service, whose per-field
messages ``attach_errors`` puts beside the right inputs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    Field,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import custom_fields
from .custom_fields import CustomFieldDefinition, CustomFieldError

bp = tenant_blueprint("custom_fields", __name__, "/settings/custom-fields",
                      template_folder="templates")
NAV.append(("Custom fields", "custom_fields.index", "tenant:write", 91))
PREFIX = "cf_"
ENTITY_LABELS = {"account": "Accounts", "contact": "Contacts", "deal": "Deals",
                 "lead": "Leads", "ticket": "Tickets", "product": "Products"}


# --- helpers for entity forms -------------------------------------------------------------


def _wtf_field(d: CustomFieldDefinition) -> Field:
    label = d.label + (" *" if d.required else "")
    if d.field_type == "number":
        return DecimalField(label, places=None, validators=[Optional()])
    if d.field_type == "date":
        return DateField(label, validators=[Optional()])
    if d.field_type == "boolean":
        return BooleanField(label)
    if d.field_type == "choice":
        return SelectField(label, choices=[SelectChoice("", "—")]
                           + [SelectChoice(c) for c in d.choices], validators=[Optional()])
    if d.field_type == "multi_choice":
        return SelectMultipleField(label, choices=[SelectChoice(c) for c in d.choices],
                                   validators=[Optional()])
    return StringField(label, validators=[Optional()])


def with_custom_fields(form_class: type[FlaskForm], session: Session, entity: str
                       ) -> type[FlaskForm]:
    """A subclass of ``form_class`` with one ``cf_<key>`` field per live definition."""
    definitions = custom_fields.list_definitions(session, entity)
    attrs: dict[str, Any] = {f"{PREFIX}{d.key}": _wtf_field(d) for d in definitions}
    attrs["custom_definitions"] = definitions
    return type(form_class.__name__, (form_class,), attrs)


def custom_inputs(form: FlaskForm) -> list[Field]:
    return [getattr(form, PREFIX + d.key) for d in getattr(form, "custom_definitions", [])]


def fill_custom(form: FlaskForm, values: dict[str, Any] | None) -> None:
    """Show a record's stored values (GET of an edit form)."""
    values = values or {}
    for d in getattr(form, "custom_definitions", []):
        value = values.get(d.key)
        field = getattr(form, PREFIX + d.key)
        if value is None:
            continue
        try:
            if d.field_type == "number":
                field.data = Decimal(str(value))
            elif d.field_type == "date":
                field.data = dt.date.fromisoformat(value)
            else:
                field.data = value
        except (ValueError, TypeError, ArithmeticError):
            continue  # an old value that no longer parses: show the field empty


def custom_data(form: FlaskForm) -> dict[str, Any]:
    """The form's custom values as JSON values (unset ones as None)."""
    data: dict[str, Any] = {}
    for d in getattr(form, "custom_definitions", []):
        value = getattr(form, PREFIX + d.key).data
        if d.field_type == "number":
            data[d.key] = value  # a Decimal: validate_custom checks and converts it
        elif d.field_type == "date":
            data[d.key] = value.isoformat() if value else None
        elif d.field_type == "boolean":
            data[d.key] = bool(value)
        elif d.field_type == "multi_choice":
            data[d.key] = list(value) or None
        else:
            data[d.key] = (value or "").strip() or None
    return data


def attach_errors(form: FlaskForm, exc: CustomFieldError, fallback: str) -> None:
    """Put each ``custom.<key>`` message beside its input (others on ``fallback``)."""
    for name, message in exc.fields.items():
        key = name.removeprefix("custom.")
        field = getattr(form, PREFIX + key, None) if name.startswith("custom.") else None
        (field or getattr(form, fallback)).errors.append(
            message if field else f"{key}: {message}")


def list_filter(session: Session, entity: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Read the list page's custom filter (``cf`` = key, ``cv`` = value): the filter
    for the service and what the template needs to show it."""
    key, value = request.args.get("cf") or "", request.args.get("cv") or ""
    definitions = custom_fields.list_definitions(session, entity)
    shown = {"cf": key or None, "cv": value or None, "definitions": definitions}
    return ({key: value} if key and value else {}), shown


# --- settings page ------------------------------------------------------------------------------


class DefinitionForm(FlaskForm):
    entity = SelectField("Record type", choices=[SelectChoice(e, ENTITY_LABELS[e])
                                                 for e in custom_fields.ENTITIES],
                         validators=[DataRequired()])
    key = StringField("Key", validators=[DataRequired(), Length(max=40), Regexp(
        custom_fields.KEY_RE.pattern, message="use a-z, 0-9 and _, starting with a letter")])
    label = StringField("Label", validators=[DataRequired(), Length(max=100)])
    field_type = SelectField("Type", choices=[SelectChoice(t, custom_fields.FIELD_TYPE_LABELS[t])
                                              for t in custom_fields.FIELD_TYPES],
                             validators=[DataRequired()])
    required = BooleanField("Required")
    choices = TextAreaField("Choices (one per line, for choice types)",
                            validators=[Optional(), Length(max=10000)])
    position = IntegerField("Position", validators=[Optional(), NumberRange(0, 100000)])


class DefinitionEditForm(FlaskForm):
    label = StringField("Label", validators=[DataRequired(), Length(max=100)])
    required = BooleanField("Required")
    choices = TextAreaField("Choices (one per line, for choice types)",
                            validators=[Optional(), Length(max=10000)])
    position = IntegerField("Position", validators=[Optional(), NumberRange(0, 100000)])


def _choices(raw: str | None) -> list[str]:
    return [line.strip() for line in (raw or "").splitlines() if line.strip()]


def _show_errors(form: FlaskForm, exc: CustomFieldError) -> None:
    for name, message in exc.fields.items():
        field = getattr(form, name, None)
        if field is None or not hasattr(field, "errors"):
            field = form.label
        field.errors.append(message)


def _index(form: DefinitionForm, status: int = 200) -> ResponseReturnValue:
    definitions = custom_fields.list_definitions(db.session)
    grouped = {e: [d for d in definitions if d.entity == e] for e in custom_fields.ENTITIES}
    return render_template("crm/custom_fields.html", form=form, grouped=grouped,
                           entity_labels=ENTITY_LABELS,
                           type_labels=custom_fields.FIELD_TYPE_LABELS), status


@bp.route("", methods=["GET", "POST"])
@requires("tenant:write")
def index() -> ResponseReturnValue:
    form = DefinitionForm()
    if form.validate_on_submit():
        try:
            custom_fields.create_definition(db.session, {
                "entity": form.entity.data, "key": form.key.data.strip(),
                "label": form.label.data, "field_type": form.field_type.data,
                "required": form.required.data, "choices": _choices(form.choices.data),
                "position": form.position.data})
        except CustomFieldError as exc:
            db.session.rollback()
            _show_errors(form, exc)
        else:
            db.session.commit()
            flash(f"Custom field {form.label.data} added.", "success")
            return redirect(url_for("custom_fields.index"))
    return _index(form, 422 if form.errors or any(f.errors for f in form) else 200)


def _load(definition_id: str) -> CustomFieldDefinition:
    try:
        found = custom_fields.get_definition(db.session, uuid.UUID(definition_id))
    except ValueError:
        found = None
    if found is None:
        abort(404)
    return found


@bp.route("/<definition_id>", methods=["GET", "POST"])
@requires("tenant:write")
def edit(definition_id: str) -> ResponseReturnValue:
    definition = _load(definition_id)
    form = DefinitionEditForm(obj=definition)
    if request.method == "GET":
        form.choices.data = "\n".join(definition.choices or [])
    if form.validate_on_submit():
        try:
            custom_fields.update_definition(db.session, definition, {
                "label": form.label.data, "required": form.required.data,
                "choices": _choices(form.choices.data), "position": form.position.data})
        except CustomFieldError as exc:
            db.session.rollback()
            _show_errors(form, exc)
        else:
            db.session.commit()
            flash("Custom field saved.", "success")
            return redirect(url_for("custom_fields.index"))
    status = 422 if any(f.errors for f in form) else 200
    return render_template("crm/custom_field_form.html", form=form, definition=definition,
                           entity_labels=ENTITY_LABELS,
                           type_labels=custom_fields.FIELD_TYPE_LABELS), status


@bp.route("/<definition_id>/delete", methods=["GET", "POST"])
@requires("tenant:write")
def delete(definition_id: str) -> ResponseReturnValue:
    definition = _load(definition_id)
    if request.method == "GET":
        return render_template("crm/confirm_delete.html", what="custom field",
                               name=definition.label, back=url_for("custom_fields.index"))
    custom_fields.delete_definition(db.session, definition)
    db.session.commit()
    flash(f"Custom field {definition.label} deleted.", "success")
    return redirect(url_for("custom_fields.index"))
