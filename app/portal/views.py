"""Portal shell: dashboard, tenant settings and members.

Views load, authorise and act: the tenant is resolved by ``load_tenant`` before any
view runs, permissions are declared with ``@requires``, the work is a call to a
tenancy service, and the view owns the single commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.db import db
from tenants import services
from tenants.permissions import PERMISSIONS

from .forms import MemberForm, RolesForm, TenantForm
from .tenancy import requires, tenant_blueprint

bp = tenant_blueprint("portal", __name__)

# Navigation of the portal: (label, endpoint, permission, position). Each domain
# appends its entries when its views are imported, so the menu only ever shows areas
# that exist; the position orders it (business areas 10-70, administration 80+).
NAV: list[tuple[str, str, str, int]] = [
    ("Dashboard", "portal.dashboard", "tenant:read", 0),
    ("Settings", "portal.settings", "tenant:read", 90),
]


@bp.get("/")
@requires("tenant:read")
def dashboard() -> ResponseReturnValue:
    members = services.tenant_members(db.session, g.tenant.id)
    active = sum(1 for m, _ in members if m.is_active)
    permissions = sorted((p, PERMISSIONS[p]) for p in g.ctx.permissions)
    return render_template("portal/dashboard.html", members_active=active,
                           members_total=len(members), permissions=permissions)


@bp.route("/settings", methods=["GET", "POST"])
@requires("tenant:read")
def settings() -> ResponseReturnValue:
    form = TenantForm(obj=g.tenant)
    if request.method == "POST":
        if not g.ctx.can("tenant:write"):
            abort(403)
        if form.validate_on_submit():
            try:
                services.update_tenant(db.session, g.tenant, name=form.name.data,
                                       base_currency=form.base_currency.data)
            except services.TenancyError as exc:
                db.session.rollback()
                getattr(form, exc.field or "name").errors.append(str(exc))
            else:
                db.session.commit()
                flash("Company settings saved.", "success")
                return redirect(url_for("portal.settings"))
    return _render_settings(form=form, member_form=MemberForm(),
                            status=422 if form.errors else 200)


def _render_settings(form: TenantForm, member_form: MemberForm, status: int = 200,
                     ) -> ResponseReturnValue:
    members = services.tenant_members(db.session, g.tenant.id)
    role_forms = {m.id: RolesForm(roles=m.roles, prefix=f"m{m.id.hex}") for m, _ in members}
    return render_template("portal/settings.html", form=form, member_form=member_form,
                           members=members, role_forms=role_forms), status


@bp.post("/settings/members")
@requires("members:write")
def add_member() -> ResponseReturnValue:
    member_form = MemberForm()
    if member_form.validate_on_submit():
        try:
            _, user, generated = services.add_member(
                db.session, g.tenant, email=member_form.email.data,
                roles=member_form.roles.data, password=member_form.password.data or None,
                full_name=member_form.full_name.data or "",
            )
        except services.TenancyError as exc:
            db.session.rollback()
            field = exc.field if exc.field in ("email", "roles", "password") else "email"
            getattr(member_form, field).errors.append(str(exc))
        else:
            db.session.commit()
            if generated:
                flash(f"{user.email} added. Their initial password is {generated} "
                      "(shown once: pass it on securely).", "success")
            else:
                flash(f"{user.email} added.", "success")
            return redirect(url_for("portal.settings"))
    return _render_settings(form=TenantForm(obj=g.tenant), member_form=member_form, status=422)


def _member_or_404(membership_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(membership_id)
    except ValueError:
        abort(404)


@bp.post("/settings/members/<membership_id>/roles")
@requires("members:write")
def change_roles(membership_id: str) -> ResponseReturnValue:
    mid = _member_or_404(membership_id)
    form = RolesForm(prefix=f"m{mid.hex}")
    if not form.validate_on_submit():
        return _member_row_response(mid, "Choose at least one role.")
    return _apply(mid, services.change_member_roles, form.roles.data)


@bp.post("/settings/members/<membership_id>/active")
@requires("members:write")
def toggle_active(membership_id: str) -> ResponseReturnValue:
    mid = _member_or_404(membership_id)
    return _apply(mid, services.set_member_active, request.form.get("active") == "1")


def _apply(mid: uuid.UUID, change: Callable[..., object], value: object) -> ResponseReturnValue:
    """Run a membership change, commit, and answer with the member's row."""
    try:
        change(db.session, g.tenant, mid, value)
    except services.NoSuchMember:
        db.session.rollback()
        abort(404)
    except services.TenancyError as exc:
        db.session.rollback()
        return _member_row_response(mid, str(exc))
    db.session.commit()
    return _member_row_response(mid, None)


def _member_row_response(mid: uuid.UUID, error: str | None) -> ResponseReturnValue:
    """htmx swaps just the row; a plain form post goes back to the page."""
    if request.headers.get("HX-Request") != "true":
        flash(error or "Member updated.", "error" if error else "success")
        return redirect(url_for("portal.settings"))
    for membership, user in services.tenant_members(db.session, g.tenant.id):
        if membership.id == mid:
            # formdata=None: show what is stored, not what was posted (and refused)
            form = RolesForm(formdata=None, roles=membership.roles, prefix=f"m{mid.hex}")
            status = 422 if error else 200
            return render_template("portal/_member_row.html", m=membership, u=user,
                                   rform=form, error=error), status
    abort(404)
