"""HR pages: employees, the shift calendar with overlaps refused, timesheet, machines."""

from __future__ import annotations

import datetime as dt

from app.hr import services as hr
from tenants import services

from .conftest import PASSWORD, csrf_from, login

MONDAY = dt.date(2026, 11, 16)


def test_employees_shifts_and_timesheet(client, tenant_factory, as_tenant):
    t = tenant_factory()
    login(client, t.owner.email)
    base = f"/t/{t.slug}/hr"
    token = csrf_from(client.get(f"{base}/employees/new").get_data(as_text=True))
    bad = client.post(f"{base}/employees/new", data={"csrf_token": token, "last_name": "",
                                                     "hourly_rate": "20", "currency": "EUR"})
    assert bad.status_code == 422 and "last name" in bad.get_data(as_text=True)
    added = client.post(f"{base}/employees/new", data={
        "csrf_token": token, "first_name": "Ada", "last_name": "Byron", "hourly_rate": "20",
        "currency": "EUR", "department": "Assembly"})
    assert added.status_code == 302
    assert "Ada Byron" in client.get(f"{base}/employees").get_data(as_text=True)
    with as_tenant(t.ctx) as s:
        ada = hr.list_employees(s)[0].id
    shift = {"csrf_token": token, "employee_id": str(ada), "day": "2026-11-17",
             "start": "08:00", "end": "16:00", "location": "Line 1"}
    assert client.post(f"{base}/shifts?week={MONDAY}", data=shift).status_code == 302
    overlap = client.post(f"{base}/shifts?week={MONDAY}", data=shift | {"start": "15:00",
                                                                        "end": "18:00"})
    assert overlap.status_code == 422
    assert "overlaps this one" in overlap.get_data(as_text=True)
    night = client.post(f"{base}/shifts?week={MONDAY}", data=shift | {
        "day": "2026-11-18", "start": "22:00", "end": "06:00"})
    assert night.status_code == 302  # ends the next morning
    week = client.get(f"{base}/shifts?week={MONDAY}").get_data(as_text=True)
    assert "08:00\u201316:00 \u00b7 Line 1" in week and "22:00\u201306:00" in week
    assert "320.00 EUR" in week  # 16 hours at 20 EUR


def test_machines_and_logs(client, tenant_factory):
    t = tenant_factory()
    login(client, t.owner.email)
    url = f"/t/{t.slug}/hr/machines"
    token = csrf_from(client.get(url).get_data(as_text=True))
    assert client.post(url, data={"csrf_token": token, "what": "machine", "code": "PRESS-1",
                                  "name": "Press"}).status_code == 302
    page = client.get(url).get_data(as_text=True)
    machine_id = page.split('<option value="', 1)[1].split('"', 1)[0]
    logged = client.post(url, data={"csrf_token": token, "what": "log", "machine_id": machine_id,
                                    "event_type": "breakdown", "day": "2026-11-17",
                                    "time": "10:00", "hours": "2", "notes": "Seal failed"})
    assert logged.status_code == 302
    assert "Seal failed" in client.get(url).get_data(as_text=True)
    wrong = client.post(url, data={"csrf_token": token, "what": "log", "machine_id": machine_id,
                                   "event_type": "explosion", "day": "2026-11-17"})
    assert wrong.status_code == 422


def test_hr_pages_are_for_hr(client, tenant_factory, db_session, as_tenant):
    t, other = tenant_factory(), tenant_factory()
    with as_tenant(other.ctx) as s:
        theirs = hr.create_employee(s, {"last_name": "Theirs"})
    services.add_member(db_session, t.tenant, email="sales@hr-portal.example.com",
                        roles=["sales"], password=PASSWORD)
    login(client, t.owner.email)
    assert client.get(f"/t/{t.slug}/hr/employees/{theirs.id}").status_code == 404
    token = csrf_from(client.get(f"/t/{t.slug}/hr/employees").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    login(client, "sales@hr-portal.example.com")
    for path in ("employees", "shifts", "machines"):
        assert client.get(f"/t/{t.slug}/hr/{path}").status_code == 403
