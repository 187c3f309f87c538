"""Portal forms for the tenant settings page."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.money import CURRENCIES
from tenants.permissions import ROLE_LABELS, ROLES

ROLE_CHOICES = [SelectChoice(r, ROLE_LABELS[r]) for r in ROLES]
CURRENCY_CHOICES = [SelectChoice(c) for c in sorted(CURRENCIES)]


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def at_least_one(_form: FlaskForm, field: SelectMultipleField) -> None:
    """Like DataRequired, but without the ``required`` flag: on checkboxes that flag
    makes a browser demand that *every* box is ticked."""
    if not field.data:
        raise ValidationError("Choose at least one role.")


class TenantForm(FlaskForm):
    name = StringField("Company name", validators=[DataRequired(), Length(max=200)])
    base_currency = SelectField(
        "Base currency", choices=CURRENCY_CHOICES, validators=[DataRequired()]
    )


class MemberForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False),
                                            Length(max=320)])
    full_name = StringField("Name", validators=[Optional(), Length(max=200)])
    password = PasswordField(
        "Initial password (new users only; leave empty to generate one)",
        validators=[Optional(), Length(min=10, max=200)],
    )
    roles = CheckboxesField("Roles", choices=ROLE_CHOICES, validators=[at_least_one])


class RolesForm(FlaskForm):
    roles = CheckboxesField("Roles", choices=ROLE_CHOICES, validators=[at_least_one])
