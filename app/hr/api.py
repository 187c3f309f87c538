"""``/api/v1/employees``, ``/shifts`` (with the weekly timesheet), ``/machines`` and
``/machinery-logs``.

A shift that overlaps another of the same employee is refused with 409 naming the
other shift (the database's exclusion constraint backs the service's check).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from flask import jsonify
from flask.typing import ResponseReturnValue
from pydantic import AwareDatetime, BaseModel, EmailStr, Field

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.openapi import doc
from app.api.resources import dump, list_model, load, out_model, service_errors
from app.api.validation import Input, parse_body, parse_query
from app.db import db

from . import services
from .models import Employee, Machine, MachineryLog, Shift

EmployeeOut = out_model(Employee)
EmployeeList = list_model(EmployeeOut)
ShiftOut = out_model(Shift, extra={"employee_name": (str, ...)})
ShiftList = list_model(ShiftOut)
MachineOut = out_model(Machine, extra={
    "run_hours": (str, ...), "maintenance_hours": (str, ...), "breakdowns": (int, ...),
    "last_event": (dt.datetime | None, ...)})
MachineList = list_model(MachineOut)
LogOut = out_model(MachineryLog, name="MachineryLogOut")
LogList = list_model(LogOut, "MachineryLogList")


class EmployeeIn(Input):
    last_name: str = Field(min_length=1, max_length=100)
    first_name: str = Field(default="", max_length=100)
    email: EmailStr | None = None
    department: str = Field(default="", max_length=100)
    job_role: str = Field(default="", max_length=100)
    hourly_rate: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    hired_on: dt.date | None = None


class EmployeePatch(Input):
    last_name: str | None = Field(default=None, min_length=1, max_length=100)
    first_name: str | None = Field(default=None, max_length=100)
    email: EmailStr | None = None
    department: str | None = Field(default=None, max_length=100)
    job_role: str | None = Field(default=None, max_length=100)
    hourly_rate: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    hired_on: dt.date | None = None
    is_active: bool | None = None


class EmployeeQuery(Input):
    active_only: bool = False
    department: str | None = Field(default=None, max_length=100)


class ShiftIn(Input):
    employee_id: uuid.UUID
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    warehouse_id: uuid.UUID | None = None
    location: str = Field(default="", max_length=100)
    notes: str = Field(default="", max_length=500)


class WeekQuery(Input):
    week: dt.date = Field(default_factory=lambda: dt.date.today(),
                          description="Any day of the week (weeks start on Monday)")
    employee_id: uuid.UUID | None = None


class TimesheetRowOut(BaseModel):
    employee_id: uuid.UUID
    name: str
    shifts: int
    hours: str
    cost: str | None
    currency: str | None


class TimesheetOut(BaseModel):
    week_start: dt.date
    rows: list[TimesheetRowOut]


class MachineIn(Input):
    code: str = Field(min_length=1, max_length=30)
    name: str = Field(min_length=1, max_length=200)
    warehouse_id: uuid.UUID | None = None


class LogIn(Input):
    machine_id: uuid.UUID
    event_type: Literal["run", "maintenance", "breakdown"]
    occurred_at: AwareDatetime
    hours: Decimal = Field(default=Decimal(0), ge=0, max_digits=8, decimal_places=2)
    notes: str = Field(default="", max_length=5000)
    employee_id: uuid.UUID | None = None


class LogQuery(Input):
    machine_id: uuid.UUID | None = None
    limit: int = Field(default=200, ge=1, le=1000)


def _s(value: Decimal) -> str:
    text = format(value, "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


def _name(e: Employee) -> str:
    return f"{e.first_name} {e.last_name}".strip()


# --- employees ---------------------------------------------------------------------------


@bp.get("/employees")
@api_auth("hr:read")
@doc(summary="Employees", query=EmployeeQuery, response=EmployeeList, tags=["hr"])
def hr_list_employees() -> ResponseReturnValue:
    query = parse_query(EmployeeQuery)
    return jsonify(items=[dump(e, EmployeeOut) for e in services.list_employees(
        db.session, active_only=query.active_only, department=query.department)])


@bp.post("/employees")
@api_auth("hr:write")
@idempotent
@doc(summary="Add an employee", body=EmployeeIn, response=EmployeeOut, status=201,
     tags=["hr"])
def hr_create_employee() -> ResponseReturnValue:
    body = parse_body(EmployeeIn)
    with service_errors():
        employee = services.create_employee(db.session, body.model_dump())
    return jsonify(dump(employee, EmployeeOut)), 201


@bp.get("/employees/<employee_id>")
@api_auth("hr:read")
@doc(summary="An employee", response=EmployeeOut, tags=["hr"])
def hr_get_employee(employee_id: str) -> ResponseReturnValue:
    return jsonify(dump(load(services.get_employee, employee_id, "employee"), EmployeeOut))


@bp.patch("/employees/<employee_id>")
@api_auth("hr:write")
@doc(summary="Change an employee (is_active false: left the company)", body=EmployeePatch,
     response=EmployeeOut, tags=["hr"])
def hr_update_employee(employee_id: str) -> ResponseReturnValue:
    employee = load(services.get_employee, employee_id, "employee")
    body = parse_body(EmployeePatch)
    with service_errors():
        services.update_employee(db.session, employee, body.model_dump(exclude_unset=True))
    return jsonify(dump(employee, EmployeeOut))


# --- shifts and timesheet ------------------------------------------------------------------


@bp.get("/shifts")
@api_auth("hr:read")
@doc(summary="Shifts of a week", query=WeekQuery, response=ShiftList, tags=["hr"])
def hr_list_shifts() -> ResponseReturnValue:
    query = parse_query(WeekQuery)
    rows = services.shifts_in_week(db.session, query.week, query.employee_id)
    return jsonify(items=[dump(s, ShiftOut, employee_name=_name(e)) for s, e in rows])


@bp.post("/shifts")
@api_auth("hr:write")
@idempotent
@doc(summary="Plan a shift (409 when it overlaps another of the same employee)",
     body=ShiftIn, response=ShiftOut, status=201, tags=["hr"])
def hr_create_shift() -> ResponseReturnValue:
    body = parse_body(ShiftIn)
    with service_errors(services.ShiftOverlap):
        shift = services.create_shift(db.session, **body.model_dump())
    employee = services.get_employee(db.session, shift.employee_id)
    return jsonify(dump(shift, ShiftOut, employee_name=_name(employee) if employee else "")), 201


@bp.delete("/shifts/<shift_id>")
@api_auth("hr:write")
@doc(summary="Remove a planned shift", status=204, tags=["hr"])
def hr_delete_shift(shift_id: str) -> ResponseReturnValue:
    shift = load(services.get_shift, shift_id, "shift")
    with service_errors():
        services.delete_shift(db.session, shift)
    return "", 204


@bp.get("/timesheet")
@api_auth("hr:read")
@doc(summary="Hours and cost per employee in a week", query=WeekQuery, response=TimesheetOut,
     tags=["hr"])
def hr_timesheet() -> ResponseReturnValue:
    query = parse_query(WeekQuery)
    rows = services.timesheet(db.session, query.week)
    return jsonify(TimesheetOut(week_start=services.week_start(query.week), rows=[
        TimesheetRowOut(employee_id=r.employee.id, name=_name(r.employee), shifts=r.shifts,
                        hours=_s(r.hours), cost=_s(r.cost) if r.cost is not None else None,
                        currency=r.employee.currency if r.cost is not None else None)
        for r in rows]).model_dump(mode="json"))


# --- machines ----------------------------------------------------------------------------


@bp.get("/machines")
@api_auth("hr:read")
@doc(summary="Machines with their run and maintenance hours and breakdowns",
     response=MachineList, tags=["hr"])
def hr_list_machines() -> ResponseReturnValue:
    return jsonify(items=[dump(m.machine, MachineOut, run_hours=m.run_hours,
                               maintenance_hours=m.maintenance_hours, breakdowns=m.breakdowns,
                               last_event=m.last_event)
                          for m in services.machine_summaries(db.session)])


@bp.post("/machines")
@api_auth("hr:write")
@idempotent
@doc(summary="Add a machine", body=MachineIn, response=MachineOut, status=201, tags=["hr"])
def hr_create_machine() -> ResponseReturnValue:
    body = parse_body(MachineIn)
    with service_errors():
        machine = services.save_machine(db.session, body.model_dump())
    return jsonify(dump(machine, MachineOut, run_hours=Decimal(0),
                        maintenance_hours=Decimal(0), breakdowns=0, last_event=None)), 201


@bp.get("/machinery-logs")
@api_auth("hr:read")
@doc(summary="Machinery log, newest first", query=LogQuery, response=LogList, tags=["hr"])
def hr_list_logs() -> ResponseReturnValue:
    query = parse_query(LogQuery)
    return jsonify(items=[dump(entry, LogOut) for entry in services.machine_logs(
        db.session, query.machine_id, query.limit)])


@bp.post("/machinery-logs")
@api_auth("hr:write")
@idempotent
@doc(summary="Log a run, maintenance or breakdown", body=LogIn, response=LogOut, status=201,
     tags=["hr"])
def hr_log_event() -> ResponseReturnValue:
    body = parse_body(LogIn)
    with service_errors():
        entry = services.log_machine_event(db.session, **body.model_dump())
    return jsonify(dump(entry, LogOut)), 201
