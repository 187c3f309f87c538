"""The portal shell in a real browser: sign-in, the company chooser and switcher,
members' roles through htmx, read-only settings, sign-out, and clean consoles
(no script errors, no Content-Security-Policy violations)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from ..conftest import PASSWORD
from .conftest import Browsing, LiveServer

OWNER_LEFT = "a tenant must keep at least one active owner"


def _uid_in_cookie(live_server: LiveServer, b: Browsing) -> str | None:
    value = b.session_cookie()
    if value is None:
        return None
    serializer = live_server.app.session_interface.get_signing_serializer(live_server.app)
    return serializer.loads(value).get("uid")


def _next_of(b: Browsing) -> str:
    parts = urlsplit(b.page.url)
    assert parts.path == "/login", b.page.url
    return parse_qs(parts.query)["next"][0]


def _member_row(b: Browsing, email: str):
    row = b.page.locator("#members tbody tr", has_text=email)
    expect(row).to_have_count(1)
    return row


def _mark_document(b: Browsing) -> None:
    """A value on ``window`` survives an htmx swap and is gone after a page load."""
    b.page.evaluate("window.__e2eSameDocument = 'yes'")


def _same_document(b: Browsing) -> bool:
    return b.page.evaluate("window.__e2eSameDocument") == "yes"


# --- (a) sign-in --------------------------------------------------------------------


def test_login_lands_on_the_tenant_dashboard(live_server, browse):
    t = live_server.tenant()
    b = browse()
    b.goto("/login")
    expect(b.page).to_have_title("Sign in · ERP")
    b.shot("login")
    b.login(t.owner.email)

    assert b.path() == f"/t/{t.slug}/"
    expect(b.page.locator("main h1")).to_have_text(t.tenant.name)
    expect(b.page.locator(".topbar .tenant-name")).to_have_text(t.tenant.name)
    expect(b.page).to_have_title(f"Dashboard · {t.tenant.name} · ERP")
    expect(b.page.locator(".sidenav a[aria-current=page]")).to_have_text("Dashboard")
    # One company only: no switcher in the header.
    expect(b.page.locator(".switcher")).to_have_count(0)
    assert _uid_in_cookie(live_server, b) == str(t.owner.id)
    b.shot("dashboard")


# --- (b) chooser and switcher ---------------------------------------------------------


def test_user_in_two_companies_chooses_then_switches(live_server, browse):
    first = live_server.tenant()
    second = live_server.tenant(email=first.owner.email)  # same person owns both
    b = browse()
    b.login(first.owner.email)

    assert b.path() == "/tenants"
    expect(b.page.locator("main h1")).to_have_text("Choose a company")
    choices = b.page.locator("ul.choices li a")
    expect(choices).to_have_count(2)
    expect(choices.filter(has_text=first.tenant.name)).to_have_attribute(
        "href", f"/t/{first.slug}/")
    expect(choices.filter(has_text=second.tenant.name)).to_have_attribute(
        "href", f"/t/{second.slug}/")
    b.shot("chooser")

    choices.filter(has_text=first.tenant.name).click()
    b.page.wait_for_url(f"**/t/{first.slug}/")
    expect(b.page.locator("main h1")).to_have_text(first.tenant.name)

    switcher = b.page.locator("details.switcher")
    expect(switcher.get_by_role("link", name=second.tenant.name)).to_be_hidden()
    switcher.locator("summary").click()
    expect(switcher.get_by_role("link", name=first.tenant.name)).to_have_attribute(
        "aria-current", "page")
    b.shot("switcher-open")
    switcher.get_by_role("link", name=second.tenant.name).click()
    b.page.wait_for_url(f"**/t/{second.slug}/")
    expect(b.page.locator("main h1")).to_have_text(second.tenant.name)
    expect(b.page.locator(".topbar .tenant-name")).to_have_text(second.tenant.name)
    expect(b.page.locator("details.switcher a[aria-current=page]")).to_have_text(
        second.tenant.name)


# --- (c) roles through htmx -------------------------------------------------------------


def test_owner_changes_roles_in_place_and_cannot_drop_the_last_owner(live_server, browse):
    t = live_server.tenant()
    member = live_server.member(t, ["sales"], full_name="Sam Sales")
    b = browse()
    b.login(t.owner.email)
    b.goto(f"/t/{t.slug}/settings")
    expect(b.page.locator("main h1")).to_have_text("Company settings")
    b.shot("settings")

    # Give the sales member the finance role too: only the row is swapped.
    _mark_document(b)
    row = _member_row(b, member.email)
    row.get_by_label("Finance").check()
    with b.page.expect_response(lambda r: r.url.endswith("/roles")) as answer:
        row.get_by_role("button", name="Save roles").click()
    response = answer.value
    assert response.status == 200
    assert response.request.headers.get("hx-request") == "true"
    row = _member_row(b, member.email)
    expect(row.get_by_label("Finance")).to_be_checked()
    expect(row.get_by_label("Sales")).to_be_checked()
    expect(row.get_by_label("Owner")).not_to_be_checked()
    assert _same_document(b), "the whole page was reloaded instead of the row"
    expect(b.page.locator(".flash")).to_have_count(0)
    assert live_server.roles_of(t, member.id) == ["finance", "sales"]

    b.page.reload()
    assert not _same_document(b)
    row = _member_row(b, member.email)
    expect(row.get_by_label("Finance")).to_be_checked()
    expect(row.get_by_label("Sales")).to_be_checked()

    # The only owner tries to make themself an administrator instead: refused.
    _mark_document(b)
    own = _member_row(b, t.owner.email)
    own.get_by_label("Owner").uncheck()
    own.get_by_label("Administrator").check()
    with b.page.expect_response(lambda r: r.url.endswith("/roles")) as answer:
        own.get_by_role("button", name="Save roles").click()
    assert answer.value.status == 422
    own = _member_row(b, t.owner.email)
    expect(own.locator(".field-error")).to_have_text(re.compile(OWNER_LEFT, re.I))
    expect(own.locator(".field-error")).to_be_visible()
    assert _same_document(b)
    b.shot("settings-refused")
    assert live_server.roles_of(t, t.owner.id) == ["owner"]

    b.page.reload()
    own = _member_row(b, t.owner.email)
    expect(own.get_by_label("Owner")).to_be_checked()
    expect(own.get_by_label("Administrator")).not_to_be_checked()
    expect(own.locator(".field-error")).to_have_count(0)


# --- (d) read-only settings ---------------------------------------------------------------


def test_viewer_sees_settings_read_only(live_server, browse):
    t = live_server.tenant()
    viewer = live_server.member(t, ["viewer"])
    b = browse()
    b.login(viewer.email)
    assert b.path() == f"/t/{t.slug}/"

    b.goto(f"/t/{t.slug}/settings")
    main = b.page.locator("main")
    expect(main.locator("h1")).to_have_text("Company settings")
    expect(main.locator("form")).to_have_count(0)
    expect(main.locator("input, select, button")).to_have_count(0)
    expect(main.get_by_role("heading", name="Add a member")).to_have_count(0)
    details = main.locator("dl")
    expect(details.locator("dd").first).to_have_text(t.tenant.name)
    expect(details).to_contain_text("EUR")
    expect(_member_row(b, viewer.email).locator("td").nth(1)).to_have_text(
        "Viewer (read only)")
    expect(_member_row(b, t.owner.email).locator("td").nth(1)).to_have_text("Owner")
    nav = b.page.locator(".sidenav a")
    # a viewer reads every business area; admin pages that change things stay hidden
    expect(nav).to_have_text([
        "Dashboard", "Accounts", "Contacts", "Leads", "Deals", "Deal board", "Tickets",
        "Quotes", "Sales orders", "Deliveries", "Invoices", "Payments", "Receivables",
        "Products", "Stock moves", "Reorder", "Purchase orders", "Suppliers",
        "Supplier bills", "Chart of accounts", "Journal", "Financial reports", "Employees",
        "Shifts", "Machines", "Exceptions", "API tokens", "Settings"])
    b.shot("settings-viewer")

    # A page the role does not allow answers 403 with the styled page.
    response = b.page.goto(f"{b.base}/t/{t.slug}/webhooks/")
    assert response is not None and response.status == 403
    expect(b.page.locator("main h1")).to_have_text("Not allowed")
    expect(b.page.locator(".error-code")).to_have_text("403")
    b.shot("403")


# --- (e) wrong password -------------------------------------------------------------------


def test_wrong_password_is_refused_without_a_session(live_server, browse):
    t = live_server.tenant()
    b = browse()
    b.goto("/login")
    b.page.get_by_label("Email").fill(t.owner.email)
    b.page.get_by_label("Password").fill(PASSWORD + "x")
    with b.page.expect_navigation() as nav:
        b.page.get_by_role("button", name="Sign in").click()
    assert nav.value is not None and nav.value.status == 422
    assert b.path() == "/login"
    expect(b.page.locator(".field-error")).to_have_text("Wrong email or password.")
    expect(b.page.get_by_label("Email")).to_have_value(t.owner.email)
    expect(b.page.get_by_label("Password")).to_have_value("")
    expect(b.page.locator(".topbar .who")).to_have_count(0)
    assert _uid_in_cookie(live_server, b) is None
    b.shot("login-error")

    b.goto(f"/t/{t.slug}/")
    assert _next_of(b) == f"/t/{t.slug}/"


# --- (f) sign-out ---------------------------------------------------------------------------


def test_logout_returns_to_login_and_closes_the_portal(live_server, browse):
    t = live_server.tenant()
    b = browse()
    b.login(t.owner.email)
    assert b.path() == f"/t/{t.slug}/"
    with b.page.expect_navigation():
        b.page.get_by_role("button", name="Sign out", exact=True).click()

    assert b.path() == "/login"
    expect(b.page.locator(".flash-info")).to_have_text("You are signed out.")
    expect(b.page.get_by_role("button", name="Sign in")).to_be_visible()
    assert _uid_in_cookie(live_server, b) is None

    b.goto(f"/t/{t.slug}/")
    assert _next_of(b) == f"/t/{t.slug}/"
    expect(b.page.locator("main h1")).to_have_text("Sign in")


# --- (g) clean consoles ---------------------------------------------------------------------


def _assert_clean(b: Browsing, where: str, page_status: int | None = None) -> None:
    # Chromium reports an error page's own status as a failed load of that very URL;
    # that one message is expected, anything else (a 404 asset, say) is not.
    expected = f"the server responded with a status of {page_status} "
    errors = [e for e in b.console.errors
              if not (page_status and expected in e and e.endswith(f"({b.page.url})"))]
    assert errors == [], f"console errors on {where}: {errors}"
    assert b.console.page_errors == [], f"script errors on {where}: {b.console.page_errors}"
    assert b.console.csp == [], f"CSP violations on {where}: {b.console.csp}"
    # The stylesheet and htmx really loaded (a 404 or a blocked asset shows here too).
    assert b.page.evaluate("""() => [...document.styleSheets].some(
        (s) => (s.href || '').endsWith('/static/app.css') && s.cssRules.length > 0)"""), \
        f"app.css not applied on {where}"
    assert b.page.evaluate("typeof window.htmx") == "object", f"htmx missing on {where}"
    b.console.clear()


def test_pages_have_no_console_errors_or_csp_violations(live_server, browse):
    first = live_server.tenant()
    second = live_server.tenant(email=first.owner.email)
    member = live_server.member(first, ["sales"])
    viewer = live_server.member(first, ["viewer"])
    b = browse()

    b.goto("/login")
    # The browser asks for the favicon once per context, after the page loaded.
    b.page.wait_for_load_state("networkidle")
    _assert_clean(b, "login")
    b.login(first.owner.email)
    assert b.path() == "/tenants"
    _assert_clean(b, "chooser")
    b.goto(f"/t/{second.slug}/")
    _assert_clean(b, "dashboard")
    b.goto(f"/t/{first.slug}/settings")
    _assert_clean(b, "settings")

    row = _member_row(b, member.email)
    row.get_by_label("Warehouse").check()
    with b.page.expect_response(lambda r: r.url.endswith("/roles")) as answer:
        row.get_by_role("button", name="Save roles").click()
    assert answer.value.status == 200
    expect(_member_row(b, member.email).get_by_label("Warehouse")).to_be_checked()
    _assert_clean(b, "settings after an htmx swap")

    response = b.page.goto(f"{b.base}/t/no-such-{first.slug}/")
    assert response is not None and response.status == 404
    expect(b.page.locator("main h1")).to_have_text("Not found")
    b.shot("404")
    _assert_clean(b, "404 page", page_status=404)

    with b.page.expect_navigation():
        b.page.get_by_role("button", name="Sign out", exact=True).click()
    _assert_clean(b, "login after sign-out")
    b.login(viewer.email)
    response = b.page.goto(f"{b.base}/t/{first.slug}/webhooks/")
    assert response is not None and response.status == 403
    _assert_clean(b, "403 page", page_status=403)

    # The probe must see a violation when there is one, or a clean result means nothing.
    b.page.evaluate("""() => { const s = document.createElement('style');
                               s.textContent = 'body { color: red }';
                               document.head.appendChild(s); }""")
    b.page.wait_for_timeout(100)
    assert any("style-src" in v for v in b.console.csp), b.console.csp
