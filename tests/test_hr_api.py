"""HR over the API: employees, shifts that cannot overlap, timesheet, machines, fencing."""

from __future__ import annotations

import datetime as dt

import pytest

from app.api import tokens
from tenants import services

from .conftest import PASSWORD

MONDAY = dt.date(2026, 11, 16)


def _auth(as_tenant, t, user_id=None) -> dict[str, str]:
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, user_id or t.owner.id, "hr")
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def api(client, tenant_factory, as_tenant):
    t = tenant_factory()
    auth = _auth(as_tenant, t)
    ada = client.post("/api/v1/employees", headers=auth, json={
        "first_name": "Ada", "last_name": "Byron", "email": "ada@plant.example.com",
        "department": "Assembly", "hourly_rate": "20", "currency": "EUR"})
    assert ada.status_code == 201
    return t, auth, ada.get_json()["id"]


def _shift(client, auth, employee, start="2026-11-16T08:00:00Z", end="2026-11-16T16:30:00Z"):
    return client.post("/api/v1/shifts", headers=auth, json={
        "employee_id": employee, "starts_at": start, "ends_at": end, "location": "Line 1"})


def test_shifts_timesheet_and_overlap(client, api):
    _, auth, ada = api
    assert _shift(client, auth, ada).status_code == 201
    assert _shift(client, auth, ada, "2026-11-17T08:00:00Z", "2026-11-17T12:00:00Z"
                  ).status_code == 201
    overlap = _shift(client, auth, ada, "2026-11-16T16:00:00Z", "2026-11-16T20:00:00Z")
    assert overlap.status_code == 409
    assert "overlaps" in overlap.get_json()["error"]["message"]
    backwards = _shift(client, auth, ada, "2026-11-18T10:00:00Z", "2026-11-18T09:00:00Z")
    assert backwards.status_code == 422 and "ends_at" in backwards.get_json()["error"]["fields"]
    naive = _shift(client, auth, ada, "2026-11-19T10:00:00", "2026-11-19T12:00:00")
    assert naive.status_code == 422
    week = client.get(f"/api/v1/shifts?week={MONDAY + dt.timedelta(days=3)}",
                      headers=auth).get_json()["items"]
    assert [s["employee_name"] for s in week] == ["Ada Byron", "Ada Byron"]
    sheet = client.get(f"/api/v1/timesheet?week={MONDAY}", headers=auth).get_json()
    assert sheet["week_start"] == str(MONDAY)
    assert [(r["hours"], r["cost"], r["shifts"]) for r in sheet["rows"]] == [
        ("12.5", "250", 2)]
    assert client.delete(f"/api/v1/shifts/{week[0]['id']}", headers=auth).status_code == 204


def test_machines_and_logs(client, api):
    _, auth, ada = api
    press = client.post("/api/v1/machines", headers=auth, json={"code": "PRESS-1",
                                                                "name": "Hydraulic press"})
    assert press.status_code == 201
    machine = press.get_json()["id"]
    for kind, hours in (("run", "6.5"), ("maintenance", "1"), ("breakdown", "0")):
        logged = client.post("/api/v1/machinery-logs", headers=auth, json={
            "machine_id": machine, "event_type": kind, "hours": hours, "employee_id": ada,
            "occurred_at": "2026-11-16T10:00:00Z"})
        assert logged.status_code == 201
    bad = client.post("/api/v1/machinery-logs", headers=auth, json={
        "machine_id": machine, "event_type": "explosion", "occurred_at": "2026-11-16T10:00:00Z"})
    assert bad.status_code == 422
    summary = client.get("/api/v1/machines", headers=auth).get_json()["items"][0]
    assert (summary["run_hours"], summary["maintenance_hours"], summary["breakdowns"]) == (
        "6.5", "1", 1)
    logs = client.get(f"/api/v1/machinery-logs?machine_id={machine}", headers=auth).get_json()
    assert len(logs["items"]) == 3


def test_permissions_and_fencing(client, api, db_session, as_tenant, tenant_factory):
    t, auth, ada = api
    _, sales, _ = services.add_member(db_session, t.tenant, email="s@hr.example.com",
                                      roles=["sales"], password=PASSWORD)
    sales_auth = _auth(as_tenant, t, sales.id)
    assert client.get("/api/v1/employees", headers=sales_auth).status_code == 403
    shift = _shift(client, auth, ada).get_json()
    other_auth = _auth(as_tenant, tenant_factory())
    assert client.get(f"/api/v1/employees/{ada}", headers=other_auth).status_code == 404
    assert client.patch(f"/api/v1/employees/{ada}", headers=other_auth,
                        json={"department": "X"}).status_code == 404
    assert client.delete(f"/api/v1/shifts/{shift['id']}", headers=other_auth).status_code == 404
    assert _shift(client, other_auth, ada).status_code == 422  # not their employee
    duplicate = client.post("/api/v1/employees", headers=auth, json={
        "last_name": "Other", "email": "ADA@plant.example.com"})
    assert duplicate.status_code == 422
