"""Per-user API tokens: shown once, hashed at rest, tenant-bound, revocable."""

from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import select

from app.api import tokens
from app.cli import main
from tenants import services

from .conftest import PASSWORD, csrf_from, login


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_works_shows_its_identity_and_is_hashed_at_rest(client, tenant_factory,
                                                              as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        row, value = tokens.create_token(s, t.owner.id, "ci")
    assert re.fullmatch(rf"erp_{t.id.hex}_[A-Za-z0-9_-]{{43}}", value)
    assert value.split("_")[-1].encode() not in row.token_hash
    resp = client.get("/api/v1/me", headers=_bearer(value))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["tenant"]["slug"] == t.slug and body["user_id"] == str(t.owner.id)
    assert body["roles"] == ["owner"] and "members:write" in body["permissions"]


def test_bad_tokens_get_one_401(client, tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, t.owner.id, "ci")
    forged_secret = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    for headers in ({}, {"Authorization": "Basic abc"}, _bearer("nonsense"),
                    _bearer(forged_secret), _bearer(f"erp_{'0' * 32}_{value[-43:]}")):
        resp = client.get("/api/v1/me", headers=headers)
        assert resp.status_code == 401, headers
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert resp.get_json()["error"]["code"] == "unauthorized"


def test_token_cannot_be_moved_to_another_tenant(client, two_tenants, as_tenant):
    a, b = two_tenants
    with as_tenant(a.ctx) as s:
        _, value = tokens.create_token(s, a.owner.id, "ci")
    secret = value.split("_", 2)[2]
    resp = client.get("/api/v1/me", headers=_bearer(f"erp_{b.id.hex}_{secret}"))
    assert resp.status_code == 401


def test_revoked_token_and_disabled_member_stop_working(client, tenant_factory, as_tenant,
                                                        db_session):
    t = tenant_factory()
    member, user, _ = services.add_member(db_session, t.tenant, email="m@tok.example.com",
                                          roles=["sales"], password=PASSWORD)
    with as_tenant(t.ctx) as s:
        _, value = tokens.create_token(s, user.id, "script")
        _, other = tokens.create_token(s, t.owner.id, "owner script")
    assert client.get("/api/v1/me", headers=_bearer(value)).status_code == 200
    services.set_member_active(db_session, t.tenant, member.id, False)
    db_session.commit()
    assert client.get("/api/v1/me", headers=_bearer(value)).status_code == 401
    with as_tenant(t.ctx) as s:
        tokens.revoke(s, _token_id(s, other), user_id=None)
    assert client.get("/api/v1/me", headers=_bearer(other)).status_code == 401


def _token_id(session, value):
    return session.scalar(select(tokens.ApiToken.id).where(
        tokens.ApiToken.token_hash == tokens._hash(value.split("_", 2)[2])))


def test_portal_creates_shows_once_and_revokes(client, tenant_factory):
    t = tenant_factory()
    login(client, t.owner.email)
    page = client.get(f"/t/{t.slug}/api-tokens/")
    token = csrf_from(page.get_data(as_text=True))
    bad = client.post(f"/t/{t.slug}/api-tokens/", data={"csrf_token": token, "name": ""})
    assert bad.status_code == 422 and "give the token a name" in bad.get_data(as_text=True)
    created = client.post(f"/t/{t.slug}/api-tokens/",
                          data={"csrf_token": token, "name": "warehouse sync"})
    html = created.get_data(as_text=True)
    value = re.search(r'<code id="new-token">([^<]+)</code>', html).group(1)
    assert client.get("/api/v1/me", headers=_bearer(value)).status_code == 200
    listing = client.get(f"/t/{t.slug}/api-tokens/").get_data(as_text=True)
    assert value not in listing and "warehouse sync" in listing
    token_id = re.search(r'id="token-([0-9a-f]{32})"', listing).group(1)
    client.post(f"/t/{t.slug}/api-tokens/{token_id}/revoke", data={"csrf_token": token})
    assert client.get("/api/v1/me", headers=_bearer(value)).status_code == 401


def test_member_cannot_revoke_someone_elses_token(client, tenant_factory, as_tenant,
                                                  db_session):
    t = tenant_factory()
    _, user, _ = services.add_member(db_session, t.tenant, email="v@tok.example.com",
                                     roles=["viewer"], password=PASSWORD)
    with as_tenant(t.ctx) as s:
        row, value = tokens.create_token(s, t.owner.id, "owner's")
    login(client, user.email)
    page = client.get(f"/t/{t.slug}/api-tokens/").get_data(as_text=True)
    assert "owner&#39;s" not in page and "owner's" not in page
    resp = client.post(f"/t/{t.slug}/api-tokens/{row.id}/revoke",
                       data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 404
    assert client.get("/api/v1/me", headers=_bearer(value)).status_code == 200


def test_cli_mints_a_token_printing_only_the_token(app, database, tmp_path):
    from app.db import db

    from .conftest import make_tenant

    with app.app_context():
        t = make_tenant(db.session)
        db.session.commit()
        db.session.remove()
    env = {"DATABASE_URL": database.app_url, "DATABASE_OWNER_URL": database.owner_url,
           "SECRET_KEY": "s" * 40, "LOG_LEVEL": "WARNING", "ERP_DATA_DIR": str(tmp_path)}
    out = CliRunner().invoke(main, ["token", "create", "--tenant", t.slug, "--user",
                                    t.owner.email, "--name", "nightly"], env=env)
    assert out.exit_code == 0, out.output
    assert re.fullmatch(rf"erp_{t.id.hex}_[A-Za-z0-9_-]{{43}}\n", out.output)
    client = app.test_client()
    resp = client.get("/api/v1/me", headers=_bearer(out.output.strip()))
    assert resp.get_json()["token"]["name"] == "nightly"
    bad = CliRunner().invoke(main, ["token", "create", "--tenant", t.slug, "--user",
                                    "nobody@x.example.com"], env=env)
    assert bad.exit_code == 2 and "is not an active member" in bad.output
