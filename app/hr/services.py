"""HR services: employees, shift planning, weekly timesheets, machines and their logs.

Times are stored as ``timestamptz`` and weeks run Monday 00:00 to Monday 00:00 UTC;
the tenant has no time zone setting yet, so pages show UTC and say so.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.inventory import services as inventory
from app.money import CURRENCIES, UnknownCurrency, quantize, validate_currency

from .models import EVENT_TYPES, Employee, Machine, MachineryLog, Shift

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_SHIFT = dt.timedelta(hours=24)
ZERO = Decimal(0)


class HrError(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ShiftOverlap(HrError):
    """The shift overlaps another of the same employee: a conflict, not bad input."""


def _aware(moment: dt.datetime, field_name: str) -> dt.datetime:
    if moment.tzinfo is None:
        raise HrError("times need a time zone (UTC is assumed by the forms)", field_name)
    return moment


# --- employees ------------------------------------------------------------------------------


EMPLOYEE_FIELDS = ("first_name", "last_name", "email", "department", "job_role", "hourly_rate",
                   "currency", "hired_on", "is_active")


def _clean_employee(data: dict[str, Any]) -> dict[str, Any]:
    clean = {k: v for k, v in data.items() if k in EMPLOYEE_FIELDS}
    for key in ("first_name", "last_name", "department", "job_role"):
        if key in clean:
            clean[key] = (clean[key] or "").strip()[:100]
    if "last_name" in clean and not clean["last_name"]:
        raise HrError("the employee needs a last name", "last_name")
    if "email" in clean:
        clean["email"] = (clean["email"] or "").strip() or None
        if clean["email"] and not EMAIL_RE.match(clean["email"]):
            raise HrError(f"{clean['email']!r} is not an email address", "email")
    if "hourly_rate" in clean or "currency" in clean:
        rate = clean.get("hourly_rate")
        if rate in (None, ""):
            clean["hourly_rate"], clean["currency"] = None, None
        else:
            try:
                currency = validate_currency(clean.get("currency") or "")
            except UnknownCurrency as exc:
                raise HrError(str(exc), "currency") from None
            try:
                clean["hourly_rate"] = inventory.parse_decimal(rate, "hourly_rate",
                                                               CURRENCIES[currency])
            except inventory.InventoryError as exc:
                raise HrError(str(exc), "hourly_rate") from None
            clean["currency"] = currency
    return clean


def _flush_employee(session: Session, employee: Employee, new: bool) -> None:
    if employee.email:
        clash = select(Employee.id).where(func.lower(Employee.email) == employee.email.lower())
        if not new:
            clash = clash.where(Employee.id != employee.id)
        if session.scalar(clash):
            raise HrError(f"another employee has the email {employee.email}", "email")
    try:
        with session.begin_nested():
            if new:
                session.add(employee)
            session.flush()
    except IntegrityError:
        raise HrError(f"another employee has the email {employee.email}", "email") from None


def create_employee(session: Session, data: dict[str, Any]) -> Employee:
    clean = _clean_employee(data)
    if not clean.get("last_name"):
        raise HrError("the employee needs a last name", "last_name")
    employee = Employee(**clean)
    _flush_employee(session, employee, new=True)
    return employee


def update_employee(session: Session, employee: Employee, data: dict[str, Any]) -> Employee:
    for key, value in _clean_employee(data).items():
        setattr(employee, key, value)
    _flush_employee(session, employee, new=False)
    return employee


def get_employee(session: Session, employee_id: uuid.UUID) -> Employee | None:
    return session.scalar(select(Employee).where(Employee.id == employee_id))


def list_employees(session: Session, *, active_only: bool = False,
                   department: str | None = None) -> list[Employee]:
    query = select(Employee).order_by(Employee.last_name, Employee.first_name)
    if active_only:
        query = query.where(Employee.is_active.is_(True))
    if department:
        query = query.where(Employee.department == department)
    return list(session.scalars(query))


# --- shifts ------------------------------------------------------------------------------------


def _check_shift(session: Session, employee_id: uuid.UUID, starts_at: dt.datetime,
                 ends_at: dt.datetime, warehouse_id: uuid.UUID | None,
                 exclude: uuid.UUID | None = None) -> Employee:
    employee = get_employee(session, employee_id)
    if employee is None:
        raise HrError("no such employee", "employee_id")
    if not employee.is_active:
        raise HrError(f"{employee.full_name} is not active", "employee_id")
    starts_at, ends_at = _aware(starts_at, "starts_at"), _aware(ends_at, "ends_at")
    if ends_at <= starts_at:
        raise HrError("the shift must end after it starts", "ends_at")
    if ends_at - starts_at > MAX_SHIFT:
        raise HrError("a shift lasts at most 24 hours", "ends_at")
    if warehouse_id is not None and inventory.get_warehouse(session, warehouse_id) is None:
        raise HrError("no such warehouse", "warehouse_id")
    clash = select(Shift).where(Shift.employee_id == employee_id, Shift.starts_at < ends_at,
                                Shift.ends_at > starts_at)
    if exclude is not None:
        clash = clash.where(Shift.id != exclude)
    other = session.scalar(clash.limit(1))
    if other is not None:
        raise ShiftOverlap(_overlap_message(employee, other), "starts_at")
    return employee


def _overlap_message(employee: Employee, other: Shift) -> str:
    return (f"{employee.full_name} already has a shift from "
            f"{other.starts_at:%Y-%m-%d %H:%M} to {other.ends_at:%Y-%m-%d %H:%M} UTC that "
            "overlaps this one")


def _flush_shift(session: Session, shift: Shift, employee: Employee, new: bool) -> None:
    try:
        with session.begin_nested():
            if new:
                session.add(shift)
            session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == "23P01":  # a concurrent planner won
            raise ShiftOverlap(f"{employee.full_name} already has an overlapping shift",
                          "starts_at") from None
        raise


def create_shift(session: Session, *, employee_id: uuid.UUID, starts_at: dt.datetime,
                 ends_at: dt.datetime, warehouse_id: uuid.UUID | None = None,
                 location: str = "", notes: str = "") -> Shift:
    employee = _check_shift(session, employee_id, starts_at, ends_at, warehouse_id)
    shift = Shift(employee_id=employee_id, starts_at=starts_at, ends_at=ends_at,
                  warehouse_id=warehouse_id, location=(location or "").strip()[:100],
                  notes=(notes or "")[:500])
    _flush_shift(session, shift, employee, new=True)
    return shift


def update_shift(session: Session, shift: Shift, *, starts_at: dt.datetime,
                 ends_at: dt.datetime, warehouse_id: uuid.UUID | None = None,
                 location: str = "", notes: str = "") -> Shift:
    employee = _check_shift(session, shift.employee_id, starts_at, ends_at, warehouse_id,
                            exclude=shift.id)
    shift.starts_at, shift.ends_at, shift.warehouse_id = starts_at, ends_at, warehouse_id
    shift.location, shift.notes = (location or "").strip()[:100], (notes or "")[:500]
    _flush_shift(session, shift, employee, new=False)
    return shift


def delete_shift(session: Session, shift: Shift) -> None:
    """Shifts are a plan, not a document: removing one is allowed (and audited)."""
    session.delete(shift)
    session.flush()


def get_shift(session: Session, shift_id: uuid.UUID) -> Shift | None:
    return session.scalar(select(Shift).where(Shift.id == shift_id))


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _week_bounds(monday: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(week_start(monday), dt.time(), dt.UTC)
    return start, start + dt.timedelta(days=7)


def shifts_in_week(session: Session, monday: dt.date, employee_id: uuid.UUID | None = None
                   ) -> list[tuple[Shift, Employee]]:
    start, end = _week_bounds(monday)
    query = (select(Shift, Employee)
             .join(Employee, (Employee.tenant_id == Shift.tenant_id)
                   & (Employee.id == Shift.employee_id))
             .where(Shift.starts_at < end, Shift.ends_at > start)
             .order_by(Shift.starts_at, Employee.last_name))
    if employee_id is not None:
        query = query.where(Shift.employee_id == employee_id)
    return [(s, e) for s, e in session.execute(query).all()]


@dataclass(frozen=True)
class TimesheetRow:
    employee: Employee
    shifts: int
    hours: Decimal
    cost: Decimal | None  # in the employee's currency, when a rate is set


def timesheet(session: Session, monday: dt.date) -> list[TimesheetRow]:
    """Hours per employee in the week (shifts crossing the week's edges count only
    their part inside it), with the cost at each employee's hourly rate."""
    start, end = _week_bounds(monday)
    seconds: dict[uuid.UUID, float] = {}
    counts: dict[uuid.UUID, int] = {}
    employees: dict[uuid.UUID, Employee] = {}
    for shift, employee in shifts_in_week(session, monday):
        inside = min(shift.ends_at, end) - max(shift.starts_at, start)
        seconds[employee.id] = seconds.get(employee.id, 0.0) + inside.total_seconds()
        counts[employee.id] = counts.get(employee.id, 0) + 1
        employees[employee.id] = employee
    rows = []
    for employee_id, employee in sorted(employees.items(),
                                        key=lambda kv: (kv[1].last_name, kv[1].first_name)):
        hours = (Decimal(int(seconds[employee_id])) / 3600).quantize(Decimal("0.01"))
        cost = (quantize(hours * employee.hourly_rate, employee.currency)
                if employee.hourly_rate is not None and employee.currency else None)
        rows.append(TimesheetRow(employee, counts[employee_id], hours, cost))
    return rows


# --- machines and logs -------------------------------------------------------------------------


def save_machine(session: Session, data: dict[str, Any], machine: Machine | None = None
                 ) -> Machine:
    code = (data.get("code") or "").strip().upper()
    name = (data.get("name") or "").strip()
    if not re.match(r"^[A-Z0-9][A-Z0-9_.-]{0,29}$", code):
        raise HrError("the code must be 1-30 letters, digits, '.', '-' or '_'", "code")
    if not name:
        raise HrError("the machine needs a name", "name")
    clash = select(Machine.id).where(Machine.code == code)
    if machine is not None:
        clash = clash.where(Machine.id != machine.id)
    if session.scalar(clash):
        raise HrError(f"machine code {code} is taken", "code")
    warehouse_id = data.get("warehouse_id")
    if warehouse_id is not None and inventory.get_warehouse(session, warehouse_id) is None:
        raise HrError("no such warehouse", "warehouse_id")
    if machine is None:
        machine = Machine(code=code, name=name)
        session.add(machine)
    machine.code, machine.name, machine.warehouse_id = code, name, warehouse_id
    if "is_active" in data:
        machine.is_active = bool(data["is_active"])
    session.flush()
    return machine


def list_machines(session: Session, *, active_only: bool = False) -> list[Machine]:
    query = select(Machine).order_by(Machine.code)
    if active_only:
        query = query.where(Machine.is_active.is_(True))
    return list(session.scalars(query))


def get_machine(session: Session, machine_id: uuid.UUID) -> Machine | None:
    return session.scalar(select(Machine).where(Machine.id == machine_id))


def log_machine_event(session: Session, *, machine_id: uuid.UUID, event_type: str,
                      occurred_at: dt.datetime, hours: Decimal | str = ZERO, notes: str = "",
                      employee_id: uuid.UUID | None = None) -> MachineryLog:
    machine = get_machine(session, machine_id)
    if machine is None:
        raise HrError("no such machine", "machine_id")
    if event_type not in EVENT_TYPES:
        raise HrError(f"the event is one of {', '.join(EVENT_TYPES)}", "event_type")
    try:
        hours_value = inventory.parse_decimal(hours if hours not in (None, "") else 0,
                                              "hours", 2)
    except inventory.InventoryError as exc:
        raise HrError(str(exc), "hours") from None
    if hours_value > 744:
        raise HrError("at most 744 hours (a month) per entry", "hours")
    if employee_id is not None and get_employee(session, employee_id) is None:
        raise HrError("no such employee", "employee_id")
    log = MachineryLog(machine_id=machine.id, event_type=event_type,
                       occurred_at=_aware(occurred_at, "occurred_at"), hours=hours_value,
                       notes=notes or "", employee_id=employee_id)
    session.add(log)
    session.flush()
    return log


def machine_logs(session: Session, machine_id: uuid.UUID | None = None, limit: int = 200
                 ) -> list[MachineryLog]:
    query = select(MachineryLog).order_by(MachineryLog.occurred_at.desc()).limit(limit)
    if machine_id is not None:
        query = query.where(MachineryLog.machine_id == machine_id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class MachineSummary:
    machine: Machine
    run_hours: Decimal
    maintenance_hours: Decimal
    breakdowns: int
    last_event: dt.datetime | None


def machine_summaries(session: Session) -> list[MachineSummary]:
    """Per machine: hours run and in maintenance, breakdowns, last event."""
    stats = {row.machine_id: row for row in session.execute(
        select(MachineryLog.machine_id,
               func.coalesce(func.sum(MachineryLog.hours).filter(
                   MachineryLog.event_type == "run"), 0).label("run"),
               func.coalesce(func.sum(MachineryLog.hours).filter(
                   MachineryLog.event_type == "maintenance"), 0).label("maintenance"),
               func.count().filter(MachineryLog.event_type == "breakdown").label("breakdowns"),
               func.max(MachineryLog.occurred_at).label("last"))
        .group_by(MachineryLog.machine_id))}
    result = []
    for machine in list_machines(session):
        row = stats.get(machine.id)
        result.append(MachineSummary(machine, row.run if row else ZERO,
                                     row.maintenance if row else ZERO,
                                     row.breakdowns if row else 0, row.last if row else None))
    return result
