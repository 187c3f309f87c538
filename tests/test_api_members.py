"""/api/v1/members: validation, permissions, idempotency and tenant fencing."""

from __future__ import annotations

import pytest

from app.api import tokens
from tenants import services

from .conftest import PASSWORD


@pytest.fixture
def owner_api(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, t.owner.id, "api")
    return t, {"Authorization": f"Bearer {value}"}


def test_list_add_and_change_members(client, owner_api):
    _, auth = owner_api
    listing = client.get("/api/v1/members", headers=auth).get_json()
    assert listing["total"] == 1 and listing["items"][0]["roles"] == ["owner"]
    created = client.post("/api/v1/members", headers={**auth, "Idempotency-Key": "m-1"},
                          json={"email": "new@staff.example.com", "roles": ["sales"],
                                "full_name": "New Staff"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["email"] == "new@staff.example.com" and body["roles"] == ["sales"]
    assert len(body["initial_password"]) >= 12
    replay = client.post("/api/v1/members", headers={**auth, "Idempotency-Key": "m-1"},
                         json={"email": "new@staff.example.com", "roles": ["sales"],
                               "full_name": "New Staff"})
    assert replay.get_json() == body and replay.headers["Idempotent-Replayed"] == "true"
    changed = client.patch(f"/api/v1/members/{body['id']}", headers=auth,
                           json={"roles": ["finance", "viewer"], "active": False})
    assert changed.status_code == 200
    assert changed.get_json()["roles"] == ["finance", "viewer"]
    assert changed.get_json()["active"] is False
    assert client.get("/api/v1/members?active=false", headers=auth).get_json()["total"] == 1


@pytest.mark.parametrize(("payload", "fields"), [
    ({"email": "not-an-email", "roles": ["sales"]}, {"email"}),
    ({"email": "a@b.example.com", "roles": []}, {"roles"}),
    ({"email": "a@b.example.com", "roles": ["boss"]}, {"roles"}),
    ({"email": "a@b.example.com", "roles": ["sales"], "nickname": "x"}, {"nickname"}),
    ({"email": "a@b.example.com", "roles": ["sales"], "password": "short"}, {"password"}),
    ({"roles": ["sales"]}, {"email"}),
])
def test_invalid_input_is_a_422_naming_the_fields(client, owner_api, payload, fields):
    _, auth = owner_api
    resp = client.post("/api/v1/members", headers=auth, json=payload)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "invalid" and set(error["fields"]) == fields


def test_malformed_bodies_are_400(client, owner_api):
    _, auth = owner_api
    assert client.post("/api/v1/members", headers=auth, data="{nope").status_code == 400
    assert client.post("/api/v1/members", headers=auth, json=[1, 2]).status_code == 400


def test_conflicts_are_409(client, owner_api, db_session):
    t, auth = owner_api
    resp = client.post("/api/v1/members", headers=auth,
                       json={"email": t.owner.email.upper(), "roles": ["viewer"]})
    assert resp.status_code == 409
    own = services.membership_of(db_session, t.id, t.owner.id)
    assert resp.get_json()["error"]["fields"] == {"id": str(own.id)}
    last_owner = client.patch(f"/api/v1/members/{own.id}", headers=auth,
                              json={"roles": ["viewer"]})
    assert last_owner.status_code == 409
    assert "at least one active owner" in last_owner.get_json()["error"]["message"]


def test_other_tenants_member_is_404_and_permissions_apply(client, owner_api, tenant_factory,
                                                          as_tenant, db_session):
    t, auth = owner_api
    other = tenant_factory()
    theirs = services.membership_of(db_session, other.id, other.owner.id)
    resp = client.patch(f"/api/v1/members/{theirs.id}", headers=auth, json={"active": False})
    assert resp.status_code == 404
    assert client.patch("/api/v1/members/not-a-uuid", headers=auth,
                        json={"active": False}).status_code == 404
    _, viewer, _ = services.add_member(db_session, t.tenant, email="v@api.example.com",
                                       roles=["viewer"], password=PASSWORD)
    with as_tenant(t.ctx) as s:
        _, viewer_token = tokens.create_token(s, viewer.id, "viewer")
    vh = {"Authorization": f"Bearer {viewer_token}"}
    assert client.get("/api/v1/members", headers=vh).status_code == 200
    denied = client.post("/api/v1/members", headers=vh,
                         json={"email": "x@y.example.com", "roles": ["owner"]})
    assert denied.status_code == 403
    assert denied.get_json()["error"]["code"] == "insufficient_permission"
