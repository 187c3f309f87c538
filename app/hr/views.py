"""Portal: employees, the week's shift calendar (employees by day, overlaps refused with
the other shift named), the weekly timesheet, machines and their logs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.db import db
from app.inventory import services as inventory
from app.portal.tenancy import requires, tenant_blueprint
from app.portal.views import NAV

from . import services

bp = tenant_blueprint("hr", __name__, "/hr", template_folder="templates")
NAV.append(("Employees", "hr.employees", "hr:read", 60))
NAV.append(("Shifts", "hr.shifts", "hr:read", 61))
NAV.append(("Machines", "hr.machines", "hr:read", 62))
EMPLOYEE_KEYS = ("first_name", "last_name", "email", "department", "job_role", "hourly_rate",
                 "currency", "hired_on")


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw or "")
    except ValueError:
        return None


def _week() -> dt.date:
    try:
        day = dt.date.fromisoformat(request.args.get("week") or "")
    except ValueError:
        day = dt.date.today()
    return services.week_start(day)


def _moment(day: str, time: str, field: str, errors: dict[str, str]) -> dt.datetime | None:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(day), dt.time.fromisoformat(time),
                                   dt.UTC)
    except ValueError:
        errors[field] = "give a date and a time, like 2026-11-23 and 08:00"
        return None


@bp.get("/employees")
@requires("hr:read")
def employees() -> ResponseReturnValue:
    show_all = request.args.get("all") == "1"
    return render_template("hr/employees.html", show_all=show_all,
                           employees=services.list_employees(db.session,
                                                             active_only=not show_all))


def _employee_form(employee: Any = None) -> ResponseReturnValue:
    values = {k: "" if getattr(employee, k, None) is None else str(getattr(employee, k))
              for k in EMPLOYEE_KEYS}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {k: (request.form.get(k) or "").strip() for k in EMPLOYEE_KEYS}
        data: dict[str, Any] = dict(values)
        try:
            data["hired_on"] = dt.date.fromisoformat(values["hired_on"]) if values[
                "hired_on"] else None
        except ValueError:
            errors["hired_on"] = "a date, like 2026-11-23"
        if not data["hourly_rate"]:
            data["hourly_rate"], data["currency"] = None, None
        if "active" in request.form and employee is not None:
            data["is_active"] = request.form.get("active") == "1"
        if not errors:
            try:
                saved = (services.update_employee(db.session, employee, data) if employee
                         else services.create_employee(db.session, data))
                db.session.commit()
            except services.HrError as exc:
                db.session.rollback()
                errors[exc.field or "last_name"] = str(exc)
            else:
                flash(f"{saved.full_name} saved.", "success")
                return redirect(url_for("hr.employees"))
    return render_template("hr/employee_form.html", employee=employee, values=values,
                           errors=errors), (422 if errors else 200)


@bp.route("/employees/new", methods=["GET", "POST"])
@requires("hr:write")
def new_employee() -> ResponseReturnValue:
    return _employee_form()


@bp.route("/employees/<employee_id>", methods=["GET", "POST"])
@requires("hr:write")
def edit_employee(employee_id: str) -> ResponseReturnValue:
    employee = services.get_employee(db.session, _uuid(employee_id) or uuid.UUID(int=0))
    if employee is None:
        abort(404)
    return _employee_form(employee)


@bp.route("/shifts", methods=["GET", "POST"])
@requires("hr:read")
def shifts() -> ResponseReturnValue:
    monday = _week()
    errors: dict[str, str] = {}
    form = {"employee_id": "", "day": monday.isoformat(), "start": "08:00", "end": "16:00",
            "location": "", "warehouse_id": ""}
    if request.method == "POST":
        from flask import g

        if not g.ctx.can("hr:write"):
            abort(403)
        form = {k: (request.form.get(k) or "").strip() for k in form}
        starts = _moment(form["day"], form["start"], "start", errors)
        ends = _moment(form["day"], form["end"], "end", errors)
        if starts and ends and ends <= starts:
            ends += dt.timedelta(days=1)  # a night shift ends the next morning
        employee = _uuid(form["employee_id"])
        if employee is None:
            errors["employee_id"] = "choose an employee"
        if not errors and starts and ends and employee:
            try:
                services.create_shift(db.session, employee_id=employee, starts_at=starts,
                                      ends_at=ends, warehouse_id=_uuid(form["warehouse_id"]),
                                      location=form["location"])
                db.session.commit()
            except services.HrError as exc:
                db.session.rollback()
                errors[exc.field or "start"] = str(exc)
            else:
                flash("Shift planned.", "success")
                return redirect(url_for("hr.shifts", week=monday.isoformat()))
    days = [monday + dt.timedelta(days=i) for i in range(7)]
    grid: dict[uuid.UUID, dict[dt.date, list[Any]]] = {}
    staff = services.list_employees(db.session, active_only=True)
    for shift, employee in services.shifts_in_week(db.session, monday):
        grid.setdefault(employee.id, {}).setdefault(shift.starts_at.date(), []).append(shift)
    return render_template(
        "hr/shifts.html", monday=monday, days=days, grid=grid, staff=staff, form=form,
        errors=errors, timesheet=services.timesheet(db.session, monday),
        warehouses=inventory.list_warehouses(db.session, active_only=True),
        previous=(monday - dt.timedelta(days=7)).isoformat(),
        next=(monday + dt.timedelta(days=7)).isoformat()), (422 if errors else 200)


@bp.post("/shifts/<shift_id>/delete")
@requires("hr:write")
def delete_shift(shift_id: str) -> ResponseReturnValue:
    shift = services.get_shift(db.session, _uuid(shift_id) or uuid.UUID(int=0))
    if shift is None:
        abort(404)
    week = services.week_start(shift.starts_at.date())
    services.delete_shift(db.session, shift)
    db.session.commit()
    flash("Shift removed.", "success")
    return redirect(url_for("hr.shifts", week=week.isoformat()))


@bp.route("/machines", methods=["GET", "POST"])
@requires("hr:read")
def machines() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    form: dict[str, str] = {}
    if request.method == "POST":
        from flask import g

        if not g.ctx.can("hr:write"):
            abort(403)
        form = {k: (request.form.get(k) or "").strip() for k in (
            "what", "code", "name", "machine_id", "event_type", "day", "time", "hours",
            "notes", "employee_id")}
        try:
            if form["what"] == "machine":
                services.save_machine(db.session, {"code": form["code"], "name": form["name"]})
            else:
                occurred = _moment(form["day"], form["time"] or "12:00", "day", errors)
                if errors or occurred is None:
                    raise services.HrError(errors.get("day", "give a date"), "day")
                services.log_machine_event(
                    db.session, machine_id=_uuid(form["machine_id"]) or uuid.UUID(int=0),
                    event_type=form["event_type"], occurred_at=occurred,
                    hours=form["hours"] or "0", notes=form["notes"],
                    employee_id=_uuid(form["employee_id"]))
            db.session.commit()
        except services.HrError as exc:
            db.session.rollback()
            errors[exc.field or "code"] = str(exc)
        else:
            flash("Saved.", "success")
            return redirect(url_for("hr.machines"))
    return render_template(
        "hr/machines.html", summaries=services.machine_summaries(db.session),
        logs=services.machine_logs(db.session, limit=50),
        machines={m.id: m for m in services.list_machines(db.session)},
        staff=services.list_employees(db.session, active_only=True), errors=errors, form=form,
        today=dt.date.today()), (422 if errors else 200)
