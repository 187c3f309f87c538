"""The per-tenant security log: every kind is written where it belongs, it is
append-only, and only that tenant's admins can read it."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError

from app.auth import security_log
from app.auth.security_log import SecurityEvent
from app.oauth import services as oauth
from tenants import services

from .conftest import PASSWORD, csrf_from, login


def _events(as_tenant, t, kind=None):
    with as_tenant(t.ctx) as s:
        query = select(SecurityEvent).order_by(SecurityEvent.at, SecurityEvent.id)
        if kind:
            query = query.where(SecurityEvent.kind == kind)
        return list(s.scalars(query))


def test_sign_in_success_failure_and_sign_outs(client, two_tenants, as_tenant):
    a, b = two_tenants
    assert login(client, a.owner.email, "wrong password!").status_code == 422
    login(client, "nobody@nowhere.example.com", "wrong password!")
    resp = client.get("/login", headers={"User-Agent": "pytest-agent/1"})
    client.post("/login", headers={"User-Agent": "pytest-agent/1"},
                data={"email": a.owner.email, "password": PASSWORD,
                      "csrf_token": csrf_from(resp.get_data(as_text=True))})
    page = client.get(f"/t/{a.slug}/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    login(client, a.owner.email)
    page = client.get(f"/t/{a.slug}/").get_data(as_text=True)
    client.post("/logout/everywhere", data={"csrf_token": csrf_from(page)})

    kinds = [e.kind for e in _events(as_tenant, a)
             if e.kind.startswith(("signin", "signout"))]
    assert kinds == ["signin.failure", "signin.success", "signout", "signin.success",
                     "signout.everywhere"]
    failure, success = _events(as_tenant, a, "signin.failure")[0], \
        _events(as_tenant, a, "signin.success")[0]
    assert failure.user_id == a.owner.id and failure.detail == {"email": a.owner.email.lower()}
    assert success.ip == "127.0.0.1" and success.user_agent == "pytest-agent/1"
    # tenant B's log holds none of it (its owner is another person)
    assert [e for e in _events(as_tenant, b) if e.kind.startswith("sign")] == []


def test_membership_changes_are_logged_with_actor_and_member(client, tenant_factory,
                                                             as_tenant, db_session):
    t = tenant_factory()
    login(client, t.owner.email)
    page = client.get(f"/t/{t.slug}/settings").get_data(as_text=True)
    csrf = csrf_from(page)
    resp = client.post(f"/t/{t.slug}/settings/members",
                       data={"csrf_token": csrf, "email": "m@log.example.com",
                             "roles": ["viewer"], "password": PASSWORD})
    assert resp.status_code == 302
    member = next(m for m, u in services.tenant_members(db_session, t.id)
                  if u.email == "m@log.example.com")
    prefix = f"m{member.id.hex}"
    client.post(f"/t/{t.slug}/settings/members/{member.id}/roles",
                data={"csrf_token": csrf, f"{prefix}-roles": ["sales", "viewer"]})
    client.post(f"/t/{t.slug}/settings/members/{member.id}/active",
                data={"csrf_token": csrf, "active": "0"})
    client.post(f"/t/{t.slug}/settings/members/{member.id}/active",
                data={"csrf_token": csrf, "active": "1"})
    events = [e for e in _events(as_tenant, t) if e.kind.startswith("member.")]
    assert [e.kind for e in events] == ["member.added", "member.roles_changed",
                                        "member.disabled", "member.enabled"]
    assert all(e.user_id == t.owner.id for e in events)
    assert all(e.detail["target_user_id"] == str(member.user_id) for e in events)
    assert events[1].detail["before"] == ["viewer"]
    assert events[1].detail["after"] == ["sales", "viewer"]


def test_api_client_and_oauth_failures_are_logged(client, tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        row, secret = oauth.create_client(s, name="bi", scopes="crm:read",
                                          created_by=t.owner.id, ceiling=t.ctx.permissions)
        cid = row.client_id
    basic = base64.b64encode(f"{cid}:wrong".encode()).decode()
    client.post("/oauth/token", data={"grant_type": "client_credentials"},
                headers={"Authorization": f"Basic {basic}"})
    client.post("/oauth/token", data={"grant_type": "password", "client_id": cid,
                                      "client_secret": secret})
    with as_tenant(t.ctx) as s:
        oauth.revoke_client(s, row.id, by=t.owner.id)
    created = _events(as_tenant, t, "api_client.created")
    assert created[0].detail["client_id"] == cid and created[0].user_id == t.owner.id
    assert created[0].detail["scopes"] == ["crm:read"]
    assert _events(as_tenant, t, "api_client.revoked")[0].detail["client_id"] == cid
    failures = _events(as_tenant, t, "oauth.token_failed")
    assert [f.detail["error"] for f in failures] == ["invalid_client", "unsupported_grant_type"]
    assert all(f.detail["client_id"] == cid for f in failures)
    assert secret not in str([f.detail for f in failures])  # never the secret itself


def test_log_is_append_only_for_the_app(tenant_factory, as_tenant, db_session):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        security_log.record(s, "signout", tenant_id=t.id, user_id=t.owner.id)
    for statement in ("UPDATE core.security_events SET kind = 'signin.success'",
                      "DELETE FROM core.security_events"):
        with as_tenant(t.ctx) as s, pytest.raises(ProgrammingError, match="permission denied"), \
                s.begin_nested():
            s.execute(text(statement))


def test_unknown_kind_is_refused(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s, pytest.raises(ValueError, match="unknown security event"):
        security_log.record(s, "made.up", tenant_id=t.id)


def test_page_is_for_admins_of_the_tenant_only(client, two_tenants, as_tenant, db_session):
    a, b = two_tenants
    with as_tenant(b.ctx) as s:
        security_log.record(s, "signout", tenant_id=b.id, user_id=b.owner.id,
                            detail={"marker": "tenant-b-only"})
    for role in ("viewer", "sales", "finance"):
        services.add_member(db_session, a.tenant, email=f"{role}@sec.example.com",
                            roles=[role], password=PASSWORD)
    db_session.commit()
    for role in ("viewer", "sales", "finance"):
        c = client.application.test_client()
        login(c, f"{role}@sec.example.com")
        assert c.get(f"/t/{a.slug}/security-log/").status_code == 403, role
        assert "Security log" not in c.get(f"/t/{a.slug}/").get_data(as_text=True)
    login(client, a.owner.email)
    page = client.get(f"/t/{a.slug}/security-log/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Security log" in html and "tenant-b-only" not in html
    assert "signin-success" in html  # the owner's own sign-in just now
    # B's log through A's owner: not a member of B -> 404
    assert client.get(f"/t/{b.slug}/security-log/").status_code == 404


def test_filters_and_pagination(client, tenant_factory, as_tenant, db_session):
    t = tenant_factory()
    _, other, _ = services.add_member(db_session, t.tenant, email="o@sec.example.com",
                                      roles=["viewer"], password=PASSWORD)
    with as_tenant(t.ctx) as s:
        for i in range(security_log.PAGE_SIZE + 5):
            security_log.record(s, "signin.failure", tenant_id=t.id, user_id=other.id,
                                detail={"n": i})
        security_log.record(s, "signout", tenant_id=t.id, user_id=t.owner.id)
    login(client, t.owner.email)
    base = f"/t/{t.slug}/security-log/"
    first = client.get(f"{base}?kind=signin.failure&user={other.id}").get_data(as_text=True)
    assert first.count('class="event-signin-failure"') == security_log.PAGE_SIZE
    assert "Older" in first and "event-signout" not in first
    second = client.get(f"{base}?kind=signin.failure&user={other.id}&page=2")
    assert second.get_data(as_text=True).count('class="event-signin-failure"') == 5
    mine = client.get(f"{base}?user={t.owner.id}").get_data(as_text=True)
    assert "event-signout" in mine and "event-signin-failure" not in mine
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    future = client.get(f"{base}?since={tomorrow}").get_data(as_text=True)
    assert "No events match" in future
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert "event-signout" in client.get(f"{base}?since={today}&until={today}").get_data(
        as_text=True)
    bad = client.get(f"{base}?since=yesterday&kind=nope&user=bob")
    assert bad.status_code == 422 and "is not a date" in bad.get_data(as_text=True)
