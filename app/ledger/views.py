"""Portal: chart of accounts, journal (list, entry form, post, reverse), trial balance,
balance sheet, profit and loss, and period closing.

The journal entry form keeps what the user typed when it is refused: an unbalanced
entry shows the ledger's sentence (debits, credits, difference) above the lines, and
nothing is written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DBAPIError

from app.db import db
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import services
from .models import ACCOUNT_TYPES

bp = tenant_blueprint("ledger", __name__, "/ledger", template_folder="templates")
NAV.append(("Chart of accounts", "ledger.accounts", "ledger:read", 50))
NAV.append(("Journal", "ledger.entries", "ledger:read", 51))
NAV.append(("Financial reports", "ledger.trial_balance", "ledger:read", 52))
FORM_LINES = 8


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        abort(404)


def _date(raw: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(raw) if raw else default
    except ValueError:
        return default


def _refusal(exc: Exception) -> str | None:
    if isinstance(exc, services.LedgerError):
        return str(exc)
    if isinstance(exc, DBAPIError):
        return services.db_refusal(exc)
    return None


# --- chart of accounts ---------------------------------------------------------------------


@bp.route("/accounts", methods=["GET", "POST"])
@requires("ledger:read")
def accounts() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    values = {"code": "", "name": "", "type": "expense", "description": ""}
    if request.method == "POST":
        if not _can("ledger:post"):
            abort(403)
        values = {k: (request.form.get(k) or "").strip() for k in values}
        try:
            services.create_account(db.session, values)
            db.session.commit()
        except services.LedgerError as exc:
            db.session.rollback()
            errors[exc.field or "code"] = str(exc)
        else:
            flash(f"Account {values['code']} {values['name']} added.", "success")
            return redirect(url_for("ledger.accounts"))
    return render_template("ledger/accounts.html", accounts=services.list_accounts(db.session),
                           types=ACCOUNT_TYPES, errors=errors, values=values), (
        422 if errors else 200)


@bp.post("/accounts/<account_id>/active")
@requires("ledger:post")
def set_account_active(account_id: str) -> ResponseReturnValue:
    account = services.get_account(db.session, _uuid(account_id))
    if account is None:
        abort(404)
    active = request.form.get("active") == "1"
    try:
        services.update_account(db.session, account, {"is_active": active})
        db.session.commit()
        flash(f"{account.code} {account.name} is {'active' if active else 'inactive'}.",
              "success")
    except services.LedgerError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("ledger.accounts"))


def _can(permission: str) -> bool:
    from flask import g

    return bool(g.ctx.can(permission))


# --- journal -------------------------------------------------------------------------------


@bp.get("/entries")
@requires("ledger:read")
def entries() -> ResponseReturnValue:
    status = request.args.get("status") if request.args.get("status") in (
        "draft", "posted") else None
    try:
        page_no = max(1, min(100_000, int(request.args.get("page", "1"))))
    except ValueError:
        page_no = 1
    page = services.list_entries(db.session, status=status, page=page_no, per_page=25)
    totals = services.entry_totals(db.session, [e.id for e in page.items])
    return render_template("ledger/entries.html", page=page, totals=totals, status=status)


def _lines_from_form() -> tuple[list[dict[str, str]], list[services.LineInput], dict[int, str]]:
    rows, lines, errors = [], [], {}
    for i in range(FORM_LINES):
        row = {k: (request.form.get(f"{k}-{i}") or "").strip()
               for k in ("account_id", "debit", "credit", "currency", "rate", "description")}
        rows.append(row)
        if not any(row[k] for k in ("account_id", "debit", "credit")):
            continue
        try:
            account_id = uuid.UUID(row["account_id"])
        except ValueError:
            errors[i] = "choose an account"
            continue
        try:
            debit = Decimal(row["debit"] or "0")
            credit = Decimal(row["credit"] or "0")
            rate = Decimal(row["rate"]) if row["rate"] else None
        except InvalidOperation:
            errors[i] = "amounts and rates are numbers, like 1250.00"
            continue
        lines.append(services.LineInput(account_id=account_id, debit=debit, credit=credit,
                                        currency=row["currency"] or None, rate=rate,
                                        description=row["description"]))
    return rows, lines, errors


@bp.route("/entries/new", methods=["GET", "POST"])
@requires("ledger:post")
def new_entry() -> ResponseReturnValue:
    today = dt.date.today()
    header: dict[str, Any] = {"entry_date": today.isoformat(), "description": ""}
    rows = [{"account_id": "", "debit": "", "credit": "", "currency": "", "rate": "",
             "description": ""} for _ in range(FORM_LINES)]
    line_errors: dict[int, str] = {}
    error = None
    if request.method == "POST":
        header = {"entry_date": request.form.get("entry_date", ""),
                  "description": (request.form.get("description") or "").strip()}
        rows, lines, line_errors = _lines_from_form()
        try:
            entry_date = dt.date.fromisoformat(header["entry_date"])
        except ValueError:
            error = "the entry date is a date, like 2026-11-22"
        if error is None and not line_errors:
            post_now = request.form.get("action") == "post"
            save = services.post_entry if post_now else services.save_draft
            try:
                entry = save(db.session, entry_date=entry_date,
                             description=header["description"], lines=lines)
                db.session.commit()
            except (services.LedgerError, DBAPIError) as exc:
                db.session.rollback()
                error = _refusal(exc)
                if error is None:
                    raise
            else:
                flash(f"Entry {entry.number or '(draft)'} "
                      f"{'posted' if post_now else 'saved as a draft'}.", "success")
                return redirect(url_for("ledger.entry", entry_id=entry.id))
    status = 422 if (error or line_errors) else 200
    return render_template("ledger/entry_form.html", header=header, rows=rows, error=error,
                           line_errors=line_errors,
                           accounts=services.list_accounts(db.session, active_only=True),
                           base=services.base_currency(db.session)), status


@bp.get("/entries/<entry_id>")
@requires("ledger:read")
def entry(entry_id: str) -> ResponseReturnValue:
    found = services.get_entry(db.session, _uuid(entry_id))
    if found is None:
        abort(404)
    accounts = {a.id: a for a in services.list_accounts(db.session)}
    return render_template("ledger/entry.html", entry=found, accounts=accounts,
                           lines=services.entry_lines(db.session, found.id),
                           reversal=services.reversal_of(db.session, found.id))


@bp.post("/entries/<entry_id>/<action>")
@requires("ledger:post")
def entry_action(entry_id: str, action: str) -> ResponseReturnValue:
    found = services.get_entry(db.session, _uuid(entry_id))
    if found is None or action not in ("post", "reverse", "delete"):
        abort(404)
    try:
        if action == "post":
            services.post(db.session, found)
        elif action == "reverse":
            reversal = services.reverse(db.session, found,
                                        _date(request.form.get("on_date"), dt.date.today()))
        else:
            services.delete_draft(db.session, found)
        db.session.commit()
    except (services.LedgerError, DBAPIError) as exc:
        db.session.rollback()
        message = _refusal(exc)
        if message is None:
            raise
        flash(message, "error")
        return redirect(url_for("ledger.entry", entry_id=found.id))
    if action == "delete":
        flash("Draft deleted.", "success")
        return redirect(url_for("ledger.entries"))
    if action == "reverse":
        flash(f"Entry {found.number} reversed by {reversal.number}.", "success")
        return redirect(url_for("ledger.entry", entry_id=reversal.id))
    flash(f"Entry {found.number} posted.", "success")
    return redirect(url_for("ledger.entry", entry_id=found.id))


# --- reports and periods ------------------------------------------------------------------


@bp.get("/reports")
@requires("ledger:read")
def trial_balance() -> ResponseReturnValue:
    today = dt.date.today()
    as_of = _date(request.args.get("as_of"), today)
    start = _date(request.args.get("start"), as_of.replace(month=1, day=1))
    if start > as_of:
        start = as_of.replace(month=1, day=1)
    return render_template(
        "ledger/reports.html", as_of=as_of, start=start,
        tb=services.trial_balance(db.session, as_of),
        bs=services.balance_sheet(db.session, as_of),
        pl=services.profit_and_loss(db.session, start, as_of),
        periods=services.list_periods(db.session))


@bp.post("/periods/<int:year>/<int:month>/<action>")
@requires("ledger:close")
def period_action(year: int, month: int, action: str) -> ResponseReturnValue:
    if action not in ("close", "reopen") or not 1 <= month <= 12 or not 1900 < year < 3000:
        abort(404)
    try:
        (services.close_period if action == "close" else services.reopen_period)(
            db.session, year, month)
        db.session.commit()
        flash(f"{year}-{month:02d} {'closed' if action == 'close' else 'reopened'}.", "success")
    except services.LedgerError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect(url_for("ledger.trial_balance"))
