"""OAuth 2 client credentials for the API: issuance, refusal, expiry, revocation,
introspection, scopes on every endpoint, tenant isolation, rate limit, CLI."""

from __future__ import annotations

import base64
import json
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from app.api import tokens
from app.cli import main
from app.oauth import services as oauth
from app.oauth.models import OAuthToken

from .conftest import csrf_from, login


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_client(as_tenant):
    def factory(t, scopes="crm:read", name="sync"):
        with as_tenant(t.ctx) as s:
            row, secret = oauth.create_client(s, name=name, scopes=scopes,
                                              created_by=t.owner.id, ceiling=t.ctx.permissions)
            return row.client_id, secret
    return factory


def _token(client, client_id, secret, **extra):
    resp = client.post("/oauth/token", data={"grant_type": "client_credentials", **extra},
                       headers=_basic(client_id, secret))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_token_by_basic_and_by_post_then_api_use(client, tenant_factory, make_client):
    t = tenant_factory()
    cid, secret = make_client(t, "crm:read crm:write")
    assert re.fullmatch(rf"erpc_{t.id.hex}_[A-Za-z0-9_-]{{16}}", cid)
    body = _token(client, cid, secret)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["scope"] == "crm:read crm:write"
    assert re.fullmatch(rf"erpat_{t.id.hex}_[A-Za-z0-9_-]{{43}}", body["access_token"])
    posted = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                               "client_id": cid, "client_secret": secret,
                                               "scope": "crm:read"})
    assert posted.status_code == 200 and posted.get_json()["scope"] == "crm:read"
    assert posted.headers["Cache-Control"] == "no-store"
    me = client.get("/api/v1/me", headers=_bearer(body["access_token"])).get_json()
    assert me["tenant"]["slug"] == t.slug and me["user_id"] is None
    assert me["token"] == {"type": "oauth", "client_id": cid, "name": "sync"}
    assert me["permissions"] == ["crm:read", "crm:write"]
    created = client.post("/api/v1/accounts", json={"name": "Via OAuth", "currency": "EUR"},
                          headers={**_bearer(body["access_token"]), "Idempotency-Key": "k1"})
    assert created.status_code == 201, created.get_data(as_text=True)


def test_token_hashed_at_rest(client, tenant_factory, make_client, as_tenant):
    t = tenant_factory()
    cid, secret = make_client(t)
    value = _token(client, cid, secret)["access_token"]
    with as_tenant(t.ctx) as s:
        rows = s.scalars(select(OAuthToken)).all()
        clients = oauth.list_clients(s)
    assert len(rows) == 1 and value.split("_")[-1].encode() not in rows[0].token_hash
    assert clients[0].secret_hash.startswith("$argon2") and secret not in clients[0].secret_hash


def test_wrong_secret_unknown_and_revoked_clients_get_one_401(client, tenant_factory,
                                                             make_client, as_tenant):
    t = tenant_factory()
    cid, secret = make_client(t)
    cid2, secret2 = make_client(t, name="old")
    with as_tenant(t.ctx) as s:
        pk = next(c.id for c in oauth.list_clients(s) if c.client_id == cid2)
        oauth.revoke_client(s, pk, by=t.owner.id)
    attempts = [
        _basic(cid, secret + "x"),
        _basic(cid2, secret2),  # revoked
        _basic(f"erpc_{'0' * 32}_AAAAAAAAAAAAAAAA", secret),  # unknown tenant
        _basic("nonsense", "x"),
    ]
    for headers in attempts:
        resp = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers=headers)
        assert resp.status_code == 401, headers
        assert resp.get_json()["error"] == "invalid_client"
        assert resp.headers["WWW-Authenticate"].startswith("Basic")
    posted = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                               "client_id": cid, "client_secret": "wrong"})
    assert posted.status_code == 401 and posted.get_json()["error"] == "invalid_client"


def test_unsupported_grant_and_scope_beyond_client(client, tenant_factory, make_client):
    t = tenant_factory()
    cid, secret = make_client(t, "crm:read")
    for grant in ("password", "authorization_code", "refresh_token", ""):
        resp = client.post("/oauth/token", data={"grant_type": grant},
                           headers=_basic(cid, secret))
        assert resp.status_code == 400
        assert resp.get_json()["error"] == "unsupported_grant_type", grant
    wider = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                              "scope": "crm:read ledger:post"},
                        headers=_basic(cid, secret))
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_scope"


def test_expired_token_is_refused_and_inactive(client, app, tenant_factory, make_client,
                                              as_tenant):
    t = tenant_factory()
    cid, secret = make_client(t)
    value = _token(client, cid, secret)["access_token"]
    assert client.get("/api/v1/accounts", headers=_bearer(value)).status_code == 200
    with as_tenant(t.ctx) as s:
        s.execute(update(OAuthToken).values(expires_at=OAuthToken.created_at))
    resp = client.get("/api/v1/accounts", headers=_bearer(value))
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"
    info = client.post("/oauth/introspect", data={"token": value}, headers=_basic(cid, secret))
    assert info.get_json() == {"active": False}


def test_lifetime_follows_the_setting(app, client, tenant_factory, make_client, as_tenant):
    import dataclasses

    t = tenant_factory()
    cid, secret = make_client(t)
    settings = app.config["ERP_SETTINGS"]
    app.config["ERP_SETTINGS"] = dataclasses.replace(settings, oauth_token_minutes=2)
    try:
        body = _token(client, cid, secret)
    finally:
        app.config["ERP_SETTINGS"] = settings
    assert body["expires_in"] == 120
    with as_tenant(t.ctx) as s:
        row = s.scalars(select(OAuthToken)).one()
    from app.db import utcnow

    assert 100 < (row.expires_at - utcnow()).total_seconds() <= 120


def test_revocation_and_introspection(client, tenant_factory, make_client):
    t = tenant_factory()
    cid, secret = make_client(t, "crm:read deals:read")
    other_cid, other_secret = make_client(t, name="other")
    value = _token(client, cid, secret)["access_token"]
    info = client.post("/oauth/introspect", data={"token": value},
                       headers=_basic(cid, secret)).get_json()
    assert info["active"] is True and info["client_id"] == cid
    assert info["scope"] == "crm:read deals:read" and info["tenant"] == t.slug
    assert info["token_type"] == "Bearer" and info["exp"] > info["iat"]
    # another client may not read or revoke it
    peek = client.post("/oauth/introspect", data={"token": value},
                       headers=_basic(other_cid, other_secret))
    assert peek.get_json() == {"active": False}
    steal = client.post("/oauth/revoke", data={"token": value},
                        headers=_basic(other_cid, other_secret))
    assert steal.status_code == 400
    assert client.get("/api/v1/accounts", headers=_bearer(value)).status_code == 200
    # its own client revokes it: gone at once
    done = client.post("/oauth/revoke", data={"token": value, "token_type_hint": "access_token"},
                       headers=_basic(cid, secret))
    assert done.status_code == 200
    assert client.get("/api/v1/accounts", headers=_bearer(value)).status_code == 401
    assert client.post("/oauth/introspect", data={"token": value},
                       headers=_basic(cid, secret)).get_json() == {"active": False}
    # unknown tokens: 200 per RFC 7009, inactive per RFC 7662
    assert client.post("/oauth/revoke", data={"token": "nope"},
                       headers=_basic(cid, secret)).status_code == 200
    unauth = client.post("/oauth/introspect", data={"token": value})
    assert unauth.status_code == 401 and unauth.get_json()["error"] == "invalid_client"


def test_revoking_the_client_kills_its_tokens(client, tenant_factory, make_client, as_tenant):
    t = tenant_factory()
    cid, secret = make_client(t)
    value = _token(client, cid, secret)["access_token"]
    with as_tenant(t.ctx) as s:
        pk = oauth.list_clients(s)[0].id
        oauth.revoke_client(s, pk, by=t.owner.id)
    assert client.get("/api/v1/accounts", headers=_bearer(value)).status_code == 401


@pytest.mark.parametrize(("method", "path", "scope"), [
    ("get", "/api/v1/accounts", "crm:read"),
    ("post", "/api/v1/accounts", "crm:write"),
    ("get", "/api/v1/contacts", "crm:read"),
    ("get", "/api/v1/members", "tenant:read"),
    ("post", "/api/v1/members", "members:write"),
])
def test_missing_scope_is_403_insufficient_scope(client, tenant_factory, make_client,
                                                 method, path, scope):
    t = tenant_factory()
    cid, secret = make_client(t, "deals:read")
    value = _token(client, cid, secret)["access_token"]
    resp = getattr(client, method)(path, json={},
                                   headers={**_bearer(value), "Idempotency-Key": "k"})
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "insufficient_scope"
    assert resp.headers["WWW-Authenticate"] == (
        f'Bearer realm="erp", error="insufficient_scope", scope="{scope}"')


def test_every_api_route_declares_a_known_scope(app):
    from app.oauth.services import SCOPES

    routes = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/")
              and r.endpoint not in ("api.index", "api.me", "api.openapi_json")]
    assert routes
    for rule in routes:
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "required_permission", None) in SCOPES, rule.rule


def test_personal_token_scopes(client, tenant_factory, as_tenant, db_session):
    from tenants import services

    t = tenant_factory()
    _, user, _ = services.add_member(db_session, t.tenant, email="s@scopes.example.com",
                                     roles=["sales"], password="x" * 12)
    with as_tenant(t.ctx) as s:
        _, limited = tokens.create_token(s, t.owner.id, "read only", "crm:read")
        _, full = tokens.create_token(s, t.owner.id, "all")
        _, sales = tokens.create_token(s, user.id, "sales with ledger", "crm:read ledger:post")
        with pytest.raises(tokens.TokenError, match="unknown scope"):
            tokens.create_token(s, t.owner.id, "bad", "crm:read nonsense")
    assert client.get("/api/v1/accounts", headers=_bearer(limited)).status_code == 200
    denied = client.post("/api/v1/accounts", json={"name": "X", "currency": "EUR"},
                         headers={**_bearer(limited), "Idempotency-Key": "a"})
    assert denied.status_code == 403
    assert denied.get_json()["error"]["code"] == "insufficient_scope"
    assert client.post("/api/v1/accounts", json={"name": "X", "currency": "EUR"},
                       headers={**_bearer(full), "Idempotency-Key": "b"}).status_code == 201
    me = client.get("/api/v1/me", headers=_bearer(limited)).get_json()
    assert me["scopes"] == ["crm:read"] and me["permissions"] == ["crm:read"]
    # a scope never widens the user's role: the sales user has no members:write
    resp = client.post("/api/v1/members", json={"email": "n@x.example.com", "roles": ["viewer"]},
                       headers={**_bearer(sales), "Idempotency-Key": "c"})
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "insufficient_permission"
    assert client.get("/api/v1/me", headers=_bearer(sales)).get_json()["permissions"] == [
        "crm:read"]


def test_tenant_a_token_on_tenant_b(client, two_tenants, make_client, as_tenant):
    from app.crm import services as crm

    a, b = two_tenants
    cid, secret = make_client(a, "crm:read crm:write")
    value = _token(client, cid, secret)["access_token"]
    with as_tenant(b.ctx) as s:
        account = crm.create_account(s, {"name": "B customer", "currency": "EUR"})
    # B's id with A's token: A's context, so B's row does not exist -> 404
    resp = client.get(f"/api/v1/accounts/{account.id}", headers=_bearer(value))
    assert resp.status_code == 404
    listed = client.get("/api/v1/accounts", headers=_bearer(value)).get_json()
    assert all(row["id"] != str(account.id) for row in listed["items"])
    # A's secret re-addressed to tenant B: no such token there -> 401
    forged = f"erpat_{b.id.hex}_{value.split('_', 2)[2]}"
    assert client.get("/api/v1/accounts", headers=_bearer(forged)).status_code == 401
    # A's client cannot introspect under B either
    forged_client = f"erpc_{b.id.hex}_{cid.split('_', 2)[2]}"
    resp = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       headers=_basic(forged_client, secret))
    assert resp.status_code == 401


def test_token_types_are_not_interchangeable(client, tenant_factory, make_client, as_tenant):
    t = tenant_factory()
    cid, secret = make_client(t)
    with as_tenant(t.ctx) as s:
        _, personal = tokens.create_token(s, t.owner.id, "p")
    access = _token(client, cid, secret)["access_token"]
    # an access token is not a client secret, nor a personal token an access token
    assert client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       headers=_basic(cid, access)).status_code == 401
    assert client.post("/oauth/introspect", data={"token": personal},
                       headers=_basic(cid, secret)).get_json() == {"active": False}
    assert client.get("/api/v1/me", headers=_bearer(f"erp_{access[6:]}")).status_code == 401
    assert client.get("/api/v1/me", headers=_bearer(secret)).status_code == 401


def test_token_endpoint_is_rate_limited_per_client(client, tenant_factory, make_client):
    from app.oauth.server import LIMIT_PER_CLIENT

    t = tenant_factory()
    cid, secret = make_client(t)
    allowed = int(LIMIT_PER_CLIENT.split()[0])
    codes = [client.post("/oauth/token", data={"grant_type": "client_credentials"},
                         headers=_basic(cid, "wrong")).status_code
             for _ in range(allowed + 1)]
    assert codes[:allowed] == [401] * allowed and codes[-1] == 429
    limited = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                          headers=_basic(cid, secret))
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"


def test_portal_creates_shows_secret_once_and_revokes(client, tenant_factory, db_session):
    from tenants import services

    t = tenant_factory()
    login(client, t.owner.email)
    page = client.get(f"/t/{t.slug}/api-clients/")
    assert page.status_code == 200
    csrf = csrf_from(page.get_data(as_text=True))
    bad = client.post(f"/t/{t.slug}/api-clients/", data={"csrf_token": csrf, "name": "x"})
    assert bad.status_code == 422 and "choose at least one scope" in bad.get_data(as_text=True)
    made = client.post(f"/t/{t.slug}/api-clients/",
                       data={"csrf_token": csrf, "name": "erp sync",
                             "scopes": ["crm:read", "deals:read"]})
    html = made.get_data(as_text=True)
    cid = re.search(r'<code id="client-id">([^<]+)</code>', html).group(1)
    secret = re.search(r'<code id="client-secret">([^<]+)</code>', html).group(1)
    assert _token(client, cid, secret)["scope"] == "crm:read deals:read"
    listing = client.get(f"/t/{t.slug}/api-clients/").get_data(as_text=True)
    assert cid in listing and secret not in listing
    pk = re.search(r'id="client-([0-9a-f]{32})"', listing).group(1)
    client.post(f"/t/{t.slug}/api-clients/{pk}/revoke", data={"csrf_token": csrf})
    resp = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       headers=_basic(cid, secret))
    assert resp.status_code == 401
    # a sales member has no tenant:write: no page, no nav entry
    services.add_member(db_session, t.tenant, email="s@clients.example.com", roles=["sales"],
                        password="x" * 12)
    db_session.commit()
    client.post("/logout", data={"csrf_token": csrf})
    login(client, "s@clients.example.com", "x" * 12)
    assert client.get(f"/t/{t.slug}/api-clients/").status_code == 403
    assert "API clients" not in client.get(f"/t/{t.slug}/").get_data(as_text=True)


def test_portal_other_tenants_client_is_404(client, two_tenants, make_client, as_tenant):
    a, b = two_tenants
    make_client(b)
    with as_tenant(b.ctx) as s:
        pk = oauth.list_clients(s)[0].id
    login(client, a.owner.email)
    csrf = csrf_from(client.get(f"/t/{a.slug}/api-clients/").get_data(as_text=True))
    assert client.post(f"/t/{a.slug}/api-clients/{pk.hex}/revoke",
                       data={"csrf_token": csrf}).status_code == 404
    assert client.post(f"/t/{a.slug}/api-clients/not-a-uuid/revoke",
                       data={"csrf_token": csrf}).status_code == 404


def test_client_scopes_capped_by_creator(tenant_factory, as_tenant):
    t = tenant_factory()
    with as_tenant(t.ctx) as s, pytest.raises(oauth.OAuthClientError, match="do not hold"):
        oauth.create_client(s, name="x", scopes="crm:read ledger:post", created_by=t.owner.id,
                            ceiling={"crm:read"})


def test_cli_creates_a_client_printing_json(app, database, tmp_path):
    from app.db import db

    from .conftest import make_tenant

    with app.app_context():
        t = make_tenant(db.session)
        db.session.commit()
        db.session.remove()
    env = {"DATABASE_URL": database.app_url, "DATABASE_OWNER_URL": database.owner_url,
           "SECRET_KEY": "s" * 40, "LOG_LEVEL": "WARNING", "ERP_DATA_DIR": str(tmp_path)}
    out = CliRunner().invoke(main, ["api-client", "create", "--tenant", t.slug, "--scopes",
                                    "crm:read reports:read", "--name", "bi"], env=env)
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert body["client_id"].startswith(f"erpc_{t.id.hex}_") and body["name"] == "bi"
    assert body["scopes"] == ["crm:read", "reports:read"] and len(body["client_secret"]) == 43
    client = app.test_client()
    resp = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       headers=_basic(body["client_id"], body["client_secret"]))
    assert resp.status_code == 200 and resp.get_json()["scope"] == "crm:read reports:read"
    bad = CliRunner().invoke(main, ["api-client", "create", "--tenant", t.slug, "--scopes",
                                    "crm:read nope"], env=env)
    assert bad.exit_code == 2 and "unknown scope" in bad.output
    personal = CliRunner().invoke(main, ["token", "create", "--tenant", t.slug, "--user",
                                         t.owner.email, "--scopes", "crm:read"], env=env)
    assert personal.exit_code == 0, personal.output
    me = client.get("/api/v1/me", headers=_bearer(personal.output.strip())).get_json()
    assert me["scopes"] == ["crm:read"]


def test_token_minutes_setting_is_coerced():
    from app.settings import SettingsError, load_settings

    base = {"SECRET_KEY": "s" * 40}
    assert load_settings(base).oauth_token_minutes == 10
    assert load_settings({**base, "ERP_OAUTH_TOKEN_MINUTES": "5"}).oauth_token_minutes == 5
    for bad in ("0", "61", "ten", "-1"):
        with pytest.raises(SettingsError, match="ERP_OAUTH_TOKEN_MINUTES"):
            load_settings({**base, "ERP_OAUTH_TOKEN_MINUTES": bad})
