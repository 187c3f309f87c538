"""Local sign-in, the tenant switcher and the portal shell, through real forms."""

from __future__ import annotations

import re

from tenants import services

from .conftest import PASSWORD, csrf_from, login


def _token(client, path: str) -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


def _session_uid(app, client):
    cookie = client.get_cookie("erp_session")
    if cookie is None:
        return None
    return app.session_interface.get_signing_serializer(app).loads(cookie.value).get("uid")


# --- sign-in ---------------------------------------------------------------------------


def test_login_with_one_tenant_lands_on_its_dashboard(app, client, tenant_factory):
    t = tenant_factory()
    resp = login(client, t.owner.email)
    assert resp.status_code == 302 and resp.headers["Location"] == f"/t/{t.slug}/"
    page = client.get(resp.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f"<h1>{t.tenant.name}</h1>" in html
    assert "members:write" in html  # the owner's permissions are listed
    assert _session_uid(app, client) == str(t.owner.id)


def test_session_cookie_flags(client, tenant_factory):
    t = tenant_factory()
    resp = login(client, t.owner.email)
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # BASE_URL is http in tests; https turns it on


def test_wrong_password_is_refused_without_a_session(app, client, tenant_factory):
    t = tenant_factory()
    resp = login(client, t.owner.email, "not the password")
    assert resp.status_code == 422
    assert "Wrong email or password." in resp.get_data(as_text=True)
    assert _session_uid(app, client) is None
    resp = login(client, "nobody@nowhere.example.com")
    assert "Wrong email or password." in resp.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, tenant_factory):
    t = tenant_factory()
    client.get("/login")
    resp = client.post("/login", data={"email": t.owner.email, "password": PASSWORD})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)


def test_login_is_throttled_per_account(client, tenant_factory):
    t = tenant_factory()
    statuses = [login(client, t.owner.email, "wrong password!").status_code for _ in range(6)]
    assert statuses == [422] * 5 + [429]
    # even the right password waits out the window: the account is being guessed
    assert login(client, t.owner.email).status_code == 429
    other = tenant_factory()
    assert login(client, other.owner.email).status_code == 302


def test_next_only_redirects_to_same_origin_paths(client, tenant_factory):
    t = tenant_factory()
    for hostile in ("//evil.example.com/x", "https://evil.example.com/", "/\\evil.example.com"):
        client.get(f"/login?next={hostile}")
        token = _token(client, f"/login?next={hostile}")
        resp = client.post("/login", data={"email": t.owner.email, "password": PASSWORD,
                                           "csrf_token": token, "next": hostile})
        assert resp.headers["Location"] == f"/t/{t.slug}/", hostile
        client.post("/logout", data={"csrf_token": _token(client, f"/t/{t.slug}/")})
    token = _token(client, "/login")
    resp = client.post("/login", data={"email": t.owner.email, "password": PASSWORD,
                                       "csrf_token": token, "next": f"/t/{t.slug}/settings"})
    assert resp.headers["Location"] == f"/t/{t.slug}/settings"


def test_portal_requires_login_and_returns_there(client, tenant_factory):
    t = tenant_factory()
    resp = client.get(f"/t/{t.slug}/settings")
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"/login?next=/t/{t.slug}/settings"


def test_logout_needs_post_with_csrf_and_ends_the_session(app, client, tenant_factory):
    t = tenant_factory()
    login(client, t.owner.email)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert _session_uid(app, client) == str(t.owner.id)
    resp = client.post("/logout", data={"csrf_token": _token(client, f"/t/{t.slug}/")})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert _session_uid(app, client) is None
    assert client.get(f"/t/{t.slug}/").status_code == 302


def test_login_rotates_the_session(app, client, tenant_factory):
    t = tenant_factory()
    client.get("/login")
    before = client.get_cookie("erp_session").value
    login(client, t.owner.email)
    data = app.session_interface.get_signing_serializer(app).loads(
        client.get_cookie("erp_session").value)
    assert client.get_cookie("erp_session").value != before
    assert "csrf_token" not in data  # the pre-login token does not survive sign-in


def test_disabling_a_user_ends_their_session_at_once(client, db_session, tenant_factory):
    t = tenant_factory()
    login(client, t.owner.email)
    assert client.get(f"/t/{t.slug}/").status_code == 200
    t.owner.is_active = False
    db_session.commit()
    assert client.get(f"/t/{t.slug}/").status_code == 302


def test_disabled_membership_hides_the_tenant(client, db_session, tenant_factory):
    t = tenant_factory()
    member, user, _ = services.add_member(db_session, t.tenant, email="m@member.example.com",
                                          roles=["sales"], password=PASSWORD)
    db_session.commit()
    login(client, user.email)
    assert client.get(f"/t/{t.slug}/").status_code == 200
    services.set_member_active(db_session, t.tenant, member.id, False)
    db_session.commit()
    assert client.get(f"/t/{t.slug}/").status_code == 404


def test_user_in_two_tenants_chooses_and_switches(client, tenant_factory):
    a = tenant_factory(email="both@multi.example.com")
    b = tenant_factory(email="both@multi.example.com")
    resp = login(client, "both@multi.example.com")
    assert resp.headers["Location"] == "/tenants"
    chooser = client.get("/tenants").get_data(as_text=True)
    assert f'href="/t/{a.slug}/"' in chooser and f'href="/t/{b.slug}/"' in chooser
    page = client.get(f"/t/{a.slug}/").get_data(as_text=True)
    assert "Switch company" in page and f'href="/t/{b.slug}/"' in page
    assert client.get(f"/t/{b.slug}/").status_code == 200


def test_user_without_membership_sees_an_empty_chooser(client, db_session):
    from tenants.models import User

    user = User(email="lonely@none.example.com", password_hash=services.hash_password(PASSWORD))
    db_session.add(user)
    db_session.commit()
    assert login(client, user.email).headers["Location"] == "/tenants"
    assert "not a member of any company" in client.get("/tenants").get_data(as_text=True)


# --- settings and members ------------------------------------------------------------------


def test_owner_updates_company_settings(client, tenant_factory, db_session):
    t = tenant_factory()
    login(client, t.owner.email)
    token = _token(client, f"/t/{t.slug}/settings")
    resp = client.post(f"/t/{t.slug}/settings", data={"csrf_token": token, "name": "Renamed",
                                                      "base_currency": "GBP"})
    assert resp.status_code == 302
    db_session.expire_all()
    tenant = services.find_tenant_by_slug(db_session, t.slug)
    assert (tenant.name, tenant.base_currency) == ("Renamed", "GBP")


def test_bad_settings_input_gives_form_errors_and_changes_nothing(client, tenant_factory,
                                                                  db_session):
    t = tenant_factory()
    login(client, t.owner.email)
    token = _token(client, f"/t/{t.slug}/settings")
    resp = client.post(f"/t/{t.slug}/settings", data={"csrf_token": token, "name": "",
                                                      "base_currency": "XXZ"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "This field is required." in html and "Not a valid choice." in html
    db_session.expire_all()
    assert services.find_tenant_by_slug(db_session, t.slug).name == t.tenant.name


def test_add_member_shows_generated_password_once(client, tenant_factory, db_session):
    t = tenant_factory()
    login(client, t.owner.email)
    token = _token(client, f"/t/{t.slug}/settings")
    resp = client.post(f"/t/{t.slug}/settings/members", data={
        "csrf_token": token, "email": "new@staff.example.com", "full_name": "New Person",
        "roles": ["sales", "viewer"]}, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "new@staff.example.com added. Their initial password is" in html
    password = html.split("initial password is ")[1].split(" ")[0]
    assert services.authenticate(db_session, "new@staff.example.com", password)
    again = client.get(f"/t/{t.slug}/settings").get_data(as_text=True)
    assert "initial password is" not in again
    dup = client.post(f"/t/{t.slug}/settings/members", data={
        "csrf_token": token, "email": "NEW@staff.example.com", "roles": ["viewer"]})
    assert dup.status_code == 422 and "already a member" in dup.get_data(as_text=True)


def test_htmx_role_change_swaps_the_row(client, tenant_factory, db_session):
    t = tenant_factory()
    member, _, _ = services.add_member(db_session, t.tenant, email="r@roles.example.com",
                                       roles=["viewer"], password=PASSWORD)
    db_session.commit()
    login(client, t.owner.email)
    token = _token(client, f"/t/{t.slug}/settings")
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    resp = client.post(f"/t/{t.slug}/settings/members/{member.id}/roles",
                       data={f"m{member.id.hex}-roles": ["finance", "sales"]}, headers=headers)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and html.lstrip().startswith(f'<tr id="member-{member.id.hex}"')
    db_session.expire_all()
    assert services.membership_of(db_session, t.id, member.user_id).roles == ["finance", "sales"]
    own = services.membership_of(db_session, t.id, t.owner.id)
    resp = client.post(f"/t/{t.slug}/settings/members/{own.id}/roles",
                       data={f"m{own.id.hex}-roles": ["admin"]}, headers=headers)
    assert resp.status_code == 422
    row = resp.get_data(as_text=True)
    assert "at least one active owner" in row
    # the row shows what is stored (owner), not the refused choice (admin)
    checked = re.findall(r'<input checked [^>]*value="(\w+)"', row)
    assert checked == ["owner"]
    assert "required" not in row  # a required flag on checkboxes demands every box
    db_session.expire_all()
    assert services.membership_of(db_session, t.id, t.owner.id).roles == ["owner"]


def test_htmx_post_without_csrf_header_is_refused(client, tenant_factory, db_session):
    t = tenant_factory()
    member, _, _ = services.add_member(db_session, t.tenant, email="c@csrf.example.com",
                                       roles=["viewer"], password=PASSWORD)
    db_session.commit()
    login(client, t.owner.email)
    resp = client.post(f"/t/{t.slug}/settings/members/{member.id}/roles",
                       data={f"m{member.id.hex}-roles": ["owner"]},
                       headers={"HX-Request": "true"})
    assert resp.status_code == 400
    db_session.expire_all()
    assert services.membership_of(db_session, t.id, member.user_id).roles == ["viewer"]


def test_viewer_reads_settings_but_cannot_change_anything(client, tenant_factory, db_session):
    t = tenant_factory()
    _, viewer, _ = services.add_member(db_session, t.tenant, email="v@view.example.com",
                                       roles=["viewer"], password=PASSWORD)
    db_session.commit()
    login(client, viewer.email)
    page = client.get(f"/t/{t.slug}/settings")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Add a member" not in html and "Save roles" not in html
    token = csrf_from(html)
    assert client.post(f"/t/{t.slug}/settings", data={
        "csrf_token": token, "name": "Hijacked", "base_currency": "EUR"}).status_code == 403
    assert client.post(f"/t/{t.slug}/settings/members", data={
        "csrf_token": token, "email": "x@x.example.com", "roles": ["owner"]}).status_code == 403
    own = services.membership_of(db_session, t.id, viewer.id)
    assert client.post(f"/t/{t.slug}/settings/members/{own.id}/roles", data={
        "csrf_token": token, f"m{own.id.hex}-roles": ["owner"]}).status_code == 403
    forbidden = client.post(f"/t/{t.slug}/settings/members", data={"csrf_token": token})
    assert "Not allowed" in forbidden.get_data(as_text=True)
    db_session.expire_all()
    assert services.find_tenant_by_slug(db_session, t.slug).name == t.tenant.name
    assert services.membership_of(db_session, t.id, viewer.id).roles == ["viewer"]


def test_nav_shows_only_existing_areas_the_user_may_see(client, tenant_factory, db_session):
    from app.portal.views import NAV

    t = tenant_factory()
    _, hr_user, _ = services.add_member(db_session, t.tenant, email="hr@people.example.com",
                                        roles=["hr"], password=PASSWORD)
    db_session.commit()
    login(client, hr_user.email)
    html = client.get(f"/t/{t.slug}/").get_data(as_text=True)
    nav = html.split('aria-label="Business areas"')[1].split("</nav>")[0]
    from tenants.permissions import permissions_for

    allowed = permissions_for(["hr"])
    for label, _endpoint, permission, _position in NAV:
        assert (f">{label}</a>" in nav) == (permission in allowed), label


def test_sessions_end_after_idle_and_absolute_timeouts(client, tenant_factory, monkeypatch):
    import datetime as dt

    from app.auth import session as auth_session

    t = tenant_factory()
    start = dt.datetime(2030, 1, 1, 8, 0, tzinfo=dt.UTC)
    clock = {"now": start}
    monkeypatch.setattr(auth_session, "utcnow", lambda: clock["now"])
    login(client, t.owner.email)

    def at(**delta) -> int:
        clock["now"] = start + dt.timedelta(**delta)
        return client.get(f"/t/{t.slug}/").status_code

    assert at(minutes=90) == 200  # active within the idle window
    assert at(hours=3, minutes=20) == 200  # 1h50 after the last click: still fine
    assert at(hours=5, minutes=30) == 302  # 2h10 idle: signed out
    clock["now"] = start
    login(client, t.owner.email)
    for hour in range(1, 12):
        assert at(hours=hour) == 200  # busy all day, never idle
    assert at(hours=12, minutes=5) == 302  # but 12 hours after sign-in it ends


def test_behind_a_proxy_each_client_is_throttled_separately(database):
    import dataclasses

    from app import create_app
    from app.db import db

    from .conftest import make_tenant

    app = create_app(dataclasses.replace(database.settings, proxy_hops=1))
    with app.app_context():
        t = make_tenant(db.session)
        db.session.commit()
        db.session.remove()
    try:
        def attempt(client_ip: str, email: str) -> int:
            client = app.test_client()
            page = client.get("/login", headers={"X-Forwarded-For": client_ip})
            return client.post("/login", headers={"X-Forwarded-For": client_ip}, data={
                "email": email, "password": "wrong password!",
                "csrf_token": csrf_from(page.get_data(as_text=True))}).status_code

        # one client guessing 10 different accounts reaches the per-address limit ...
        codes = [attempt("203.0.113.7", f"u{i}@guess.example.com") for i in range(11)]
        assert codes[-1] == 429
        # ... while another client behind the same proxy is not affected
        assert attempt("198.51.100.9", t.owner.email) == 422
    finally:
        from app.security import limiter

        limiter.reset()
        with app.app_context():
            db.engine.dispose()


def test_sign_out_everywhere_ends_copied_sessions(app, tenant_factory, db_session):
    t = tenant_factory()
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, t.owner.email)
    login(phone, t.owner.email)
    stolen = app.test_client()
    stolen.set_cookie("erp_session", phone.get_cookie("erp_session").value)
    assert stolen.get(f"/t/{t.slug}/").status_code == 200
    page = laptop.get(f"/t/{t.slug}/").get_data(as_text=True)
    assert "Sign out everywhere" in page
    resp = laptop.post("/logout/everywhere", data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    for client in (laptop, phone, stolen):
        assert client.get(f"/t/{t.slug}/").status_code == 302
    assert login(phone, t.owner.email).status_code == 302  # signing in again works
    assert phone.get(f"/t/{t.slug}/").status_code == 200
