"""HR: employees, shifts without overlaps (checked by the database), timesheets,
machinery logs."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from app.db import ENGINE_OPTIONS, db, install_engine_hooks
from app.hr import services as hr
from app.hr.models import Shift
from app.hr.services import HrError
from app.settings import sqlalchemy_url
from tenants.context import tenant_scope

from .conftest import make_tenant

D = Decimal
MONDAY = dt.date(2026, 11, 16)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)


def test_employee_rules(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        ann = hr.create_employee(s, {"first_name": "Ann", "last_name": "Lee", "email":
                                     "ann@example.com", "department": "Warehouse",
                                     "job_role": "Picker", "hourly_rate": "18.50",
                                     "currency": "eur"})
        assert (ann.full_name, ann.currency, ann.hourly_rate) == ("Ann Lee", "EUR", D("18.50"))
        for data, message in [
            ({"last_name": ""}, "needs a last name"),
            ({"last_name": "X", "email": "ANN@example.com"}, "another employee has the email"),
            ({"last_name": "X", "email": "nope"}, "not an email address"),
            ({"last_name": "X", "hourly_rate": "10", "currency": "XXY"}, "not an ISO 4217"),
            ({"last_name": "X", "hourly_rate": "-1", "currency": "EUR"}, "cannot be negative"),
        ]:
            with pytest.raises(HrError, match=message):
                hr.create_employee(s, data)
        assert [e.last_name for e in hr.list_employees(s)] == ["Lee"]


def test_overlapping_shifts_are_refused(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        ann = hr.create_employee(s, {"first_name": "Ann", "last_name": "Lee"})
        bob = hr.create_employee(s, {"first_name": "Bob", "last_name": "Ray"})
        first = hr.create_shift(s, employee_id=ann.id, starts_at=at(17, 8), ends_at=at(17, 16))
        hr.create_shift(s, employee_id=ann.id, starts_at=at(17, 16), ends_at=at(17, 20))  # touches
        hr.create_shift(s, employee_id=bob.id, starts_at=at(17, 8), ends_at=at(17, 16))
        with pytest.raises(HrError, match="Ann Lee already has a shift from 2026-11-17 08:00 to "
                                          "2026-11-17 16:00 UTC that overlaps"):
            hr.create_shift(s, employee_id=ann.id, starts_at=at(17, 15), ends_at=at(17, 17))
        with pytest.raises(HrError, match="must end after it starts"):
            hr.create_shift(s, employee_id=ann.id, starts_at=at(18, 9), ends_at=at(18, 9))
        with pytest.raises(HrError, match="at most 24 hours"):
            hr.create_shift(s, employee_id=ann.id, starts_at=at(18, 9), ends_at=at(19, 10))
        with pytest.raises(HrError, match="overlaps"):
            hr.update_shift(s, first, starts_at=at(17, 9), ends_at=at(17, 17))
        hr.update_shift(s, first, starts_at=at(17, 7), ends_at=at(17, 15))
    with as_tenant(t.ctx) as s:
        # the database refuses an overlap whatever the application checked
        with pytest.raises(Exception, match="ex_shifts_no_overlap"):
            s.execute(text("INSERT INTO hr.shifts (tenant_id, employee_id, starts_at, ends_at)"
                           " VALUES (app.current_tenant_id(), :e, :a, :b)"),
                      {"e": ann.id, "a": at(17, 12), "b": at(17, 13)})
        s.rollback()


def test_two_planners_booking_the_same_employee_at_once(app, database):
    """The first planner's shift is written but not committed when the second saves
    an overlapping one: the application check cannot see it, the exclusion
    constraint makes the second wait and then refuses it."""
    with app.app_context():
        t = make_tenant(db.session, f"hr-{secrets.token_hex(3)}")
        db.session.commit()
        with tenant_scope(t.ctx):
            employee_id = hr.create_employee(db.session, {"last_name": "Busy"}).id
            db.session.commit()
        db.session.remove()
    engine = create_engine(sqlalchemy_url(database.app_url),
                           **{**ENGINE_OPTIONS, "pool_size": 2, "max_overflow": 0})
    install_engine_hooks(engine)
    first_written = threading.Event()
    outcomes: dict[str, str] = {}

    def first() -> None:
        with tenant_scope(t.ctx), Session(engine) as session:
            hr.create_shift(session, employee_id=employee_id, starts_at=at(20, 8),
                            ends_at=at(20, 12))
            first_written.set()
            time.sleep(0.5)  # the second planner is now blocked on the constraint
            session.commit()
            outcomes["first"] = "ok"

    def second() -> None:
        first_written.wait(timeout=10)
        with tenant_scope(t.ctx), Session(engine) as session:
            try:
                hr.create_shift(session, employee_id=employee_id, starts_at=at(20, 10),
                                ends_at=at(20, 14))
                session.commit()
                outcomes["second"] = "ok"
            except HrError as exc:
                session.rollback()
                outcomes["second"] = str(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    with tenant_scope(t.ctx), Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(Shift))
    engine.dispose()
    assert outcomes == {"first": "ok", "second": "Busy already has an overlapping shift"}
    assert count == 1


def test_weekly_timesheet_clips_shifts_to_the_week(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        ann = hr.create_employee(s, {"first_name": "Ann", "last_name": "Lee",
                                     "hourly_rate": "20", "currency": "EUR"})
        bob = hr.create_employee(s, {"first_name": "Bob", "last_name": "Ray"})
        hr.create_shift(s, employee_id=ann.id, starts_at=at(16, 8), ends_at=at(16, 16, 30))
        hr.create_shift(s, employee_id=ann.id, starts_at=at(22, 20), ends_at=at(23, 4))
        hr.create_shift(s, employee_id=bob.id, starts_at=at(15, 22), ends_at=at(16, 6))
        rows = hr.timesheet(s, MONDAY + dt.timedelta(days=3))  # any day picks its week
        assert [(r.employee.last_name, r.shifts, r.hours, r.cost) for r in rows] == [
            ("Lee", 2, D("12.50"), D("250.00")), ("Ray", 1, D("6.00"), None)]
        assert len(hr.shifts_in_week(s, MONDAY, ann.id)) == 2


def test_machinery_logs(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        press = hr.save_machine(s, {"code": "press-1", "name": "Hydraulic press"})
        ann = hr.create_employee(s, {"last_name": "Lee"})
        hr.log_machine_event(s, machine_id=press.id, event_type="run", occurred_at=at(17, 8),
                             hours="7.5", employee_id=ann.id)
        hr.log_machine_event(s, machine_id=press.id, event_type="breakdown",
                             occurred_at=at(17, 16), notes="seal leak")
        hr.log_machine_event(s, machine_id=press.id, event_type="maintenance",
                             occurred_at=at(18, 9), hours="2")
        [summary] = hr.machine_summaries(s)
        assert (summary.machine.code, summary.run_hours, summary.maintenance_hours,
                summary.breakdowns, summary.last_event) == ("PRESS-1", D("7.5"), D(2), 1,
                                                            at(18, 9))
        with pytest.raises(HrError, match="the event is one of run, maintenance, breakdown"):
            hr.log_machine_event(s, machine_id=press.id, event_type="nap", occurred_at=at(18, 9))
        with pytest.raises(HrError, match="at most 744 hours"):
            hr.log_machine_event(s, machine_id=press.id, event_type="run", occurred_at=at(18, 9),
                                 hours="800")
        with pytest.raises(HrError, match="code PRESS-1 is taken"):
            hr.save_machine(s, {"code": "PRESS-1", "name": "Other"})
        assert len(hr.machine_logs(s, press.id)) == 3
