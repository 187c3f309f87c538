"""Portal forms for the tenant settings page."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.money import CURRENCIES
from tenants.permissions import ROLE_LABELS, ROLES

ROLE_CHOICES = [SelectChoice(r, ROLE_LABELS[r]) for r in ROLES]
CURRENCY_CHOICES = [SelectChoice(c) for c in sorted(CURRENCIES)]


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


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
    roles = CheckboxesField("Roles", choices=ROLE_CHOICES, validators=[DataRequired()])


class RolesForm(FlaskForm):
    roles = CheckboxesField("Roles", choices=ROLE_CHOICES, validators=[DataRequired()])
