"""Sign-in, sign-out and the tenant chooser.

Throttling: at most 10 sign-in attempts a minute per client address and 5 a minute
per email address (whatever the address), so neither one client guessing many
accounts nor many clients guessing one account gets far.
"""

from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.db import db
from app.security import limiter
from tenants import services

from . import security_log
from .forms import LoginForm
from .session import (
    current_user,
    login_required,
    safe_next,
    sign_in,
    sign_out,
    sign_out_everywhere,
)

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


def _email_key() -> str:
    return "login-email:" + (request.form.get("email") or "").strip().lower()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
@limiter.limit("5 per minute", key_func=_email_key, methods=["POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        if current_user() is not None:
            return redirect(form.next.data or url_for("auth.tenants"))
    if form.validate_on_submit():
        user = services.authenticate(db.session, form.email.data, form.password.data)
        if user is None:
            db.session.rollback()
            log.info("sign-in failed for %s", form.email.data.lower())
            known = services.find_user_by_email(db.session, form.email.data)
            if known is not None:
                security_log.record_for_user(db.session, "signin.failure", known.id,
                                             {"email": form.email.data.strip().lower()})
            db.session.commit()
            form.password.errors.append("Wrong email or password.")
        else:
            choices = services.memberships_of_user(db.session, user.id)
            security_log.record_for_user(db.session, "signin.success", user.id,
                                         {"method": "password"})
            db.session.commit()
            sign_in(user)
            log.info("signed in user %s", user.id)
            target = safe_next(form.next.data)
            if target:
                return redirect(target)
            if len(choices) == 1:
                return redirect(url_for("portal.dashboard", slug=choices[0].slug))
            return redirect(url_for("auth.tenants"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    user = current_user()
    if user is not None:
        security_log.record_for_user(db.session, "signout", user.id)
        db.session.commit()
    sign_out()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere() -> ResponseReturnValue:
    user = current_user()
    security_log.record_for_user(db.session, "signout.everywhere", user.id)
    sign_out_everywhere(user)
    flash("You are signed out on every device.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/")
def home() -> ResponseReturnValue:
    return redirect(url_for("auth.tenants") if current_user() else url_for("auth.login"))


@bp.get("/tenants")
@login_required
def tenants() -> ResponseReturnValue:
    choices = services.memberships_of_user(db.session, current_user().id)
    return render_template("auth/tenants.html", choices=choices)
