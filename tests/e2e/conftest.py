"""Real-browser harness: the app behind a real WSGI server, driven by Debian's chromium.

The browser's requests run on the server's own threads and connections, so the data
they read must be committed: these tests never use ``db_session``/``client``. They
create tenants through ``tenants.services`` on the real engine, commit, and pick
unique slugs; the session ``database`` is dropped at the end anyway.

One chromium per test session (started once, ~0.5 s); each test gets a fresh
browser context, so cookies never leak from one test to the next. Chromium comes
from the system (``tests/run.sh`` installs it with apt-get when missing): the
Playwright browser download is neither possible nor needed.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from app import create_app
from app.db import db
from app.security import limiter
from tenants import services
from tenants.context import tenant_scope
from tenants.models import Tenant, User

from ..conftest import PASSWORD, TenantFixture, TestDatabase, make_tenant

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the suite runs as root in CI containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Set E2E_SCREENSHOTS=/tmp/shots to keep a screenshot of every page the tests name.
SCREENSHOTS = os.environ.get("E2E_SCREENSHOTS")
TIMEOUT_MS = 10_000


@dataclass
class LiveServer:
    app: Flask
    url: str

    def session(self) -> Session:
        """A session on the real engine: its commits are real (call inside app_context)."""
        return Session(db.engine, expire_on_commit=False)

    def tenant(self, *, email: str | None = None) -> TenantFixture:
        """A committed tenant ``e2e-<hex>`` whose owner's password is PASSWORD."""
        with self.app.app_context(), self.session() as session:
            t = make_tenant(session, f"e2e-{secrets.token_hex(4)}", email=email)
            session.commit()
        return t

    def member(self, t: TenantFixture, roles: list[str], *, email: str | None = None,
               full_name: str = "") -> User:
        """Add a committed member with PASSWORD to tenant ``t``."""
        email = email or f"{roles[0]}-{secrets.token_hex(3)}@{t.slug}.example.com"
        # As the owner inside the tenant, like the settings page does it.
        with self.app.app_context(), tenant_scope(t.ctx), self.session() as session:
            tenant = session.get(Tenant, t.id)
            _, user, _ = services.add_member(session, tenant, email=email, roles=roles,
                                             password=PASSWORD, full_name=full_name)
            session.commit()
        return user

    def roles_of(self, t: TenantFixture, user_id: object) -> list[str]:
        with self.app.app_context(), self.session() as session:
            membership = services.membership_of(session, t.id, user_id)
            assert membership is not None
            return sorted(membership.roles)


@pytest.fixture(scope="session")
def live_server(database: TestDatabase) -> Iterator[LiveServer]:
    app = create_app(database.settings)
    app.config.update(WTF_CSRF_ENABLED=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-wsgi", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_login_limits() -> Iterator[None]:
    # Every browser comes from 127.0.0.1, so the per-address sign-in limit (10 a
    # minute) is shared by all tests; each test starts with a clean count.
    limiter.reset()
    yield
    limiter.reset()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: tests/run.sh installs it (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Console:
    """What the page reported: console errors/warnings, uncaught errors, CSP violations."""

    errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.text.startswith("csp-violation:"):
            self.csp.append(msg.text)
        elif msg.type in ("error", "warning"):
            self.errors.append(f"{msg.type}: {msg.text} ({msg.location.get('url', '')})")

    def clear(self) -> None:
        self.errors.clear()
        self.page_errors.clear()
        self.csp.clear()


# Registered before any page script runs (through the DevTools protocol, so the page's
# CSP does not apply to it): every CSP violation becomes a console message we collect.
CSP_PROBE = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.info('csp-violation: ' + e.violatedDirective + ' ' + (e.blockedURI || 'inline')
               + ' at ' + e.sourceFile + ':' + e.lineNumber);
});
"""


@dataclass
class Browsing:
    context: BrowserContext
    page: Page
    console: Console
    base: str

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def login(self, email: str, password: str = PASSWORD) -> None:
        self.goto("/login")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in").click()

    def path(self) -> str:
        return self.page.url.removeprefix(self.base)

    def session_cookie(self) -> str | None:
        for cookie in self.context.cookies(self.base):
            if cookie["name"] == "erp_session":
                return cookie["value"]
        return None

    def shot(self, name: str) -> None:
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture
def browse(browser: Browser, live_server: LiveServer) -> Iterator[Callable[[], Browsing]]:
    """``b = browse()``: a fresh browser context (own cookies) with one page."""
    opened: list[BrowserContext] = []

    def open_one() -> Browsing:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(CSP_PROBE)
        opened.append(context)
        page = context.new_page()
        console = Console()
        page.on("console", console.on_console)
        page.on("pageerror", lambda exc: console.page_errors.append(str(exc)))
        return Browsing(context, page, console, live_server.url)

    yield open_one
    for context in opened:
        context.close()
