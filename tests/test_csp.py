"""Portal hardening headers: CSP with a per-response nonce, framing refused, HSTS only
over https, Referrer-Policy, and same-origin-only ``next=``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.auth.session import safe_next

from .conftest import login

ROOT = Path(__file__).resolve().parent.parent


def _directives(header: str) -> dict[str, str]:
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2]
            for d in header.split(";") if d.strip()}


def test_csp_nonce_matches_every_script_of_the_page(client, tenant_factory):
    t = tenant_factory()
    login(client, t.owner.email)
    resp = client.get(f"/t/{t.slug}/")
    csp = _directives(resp.headers["Content-Security-Policy"])
    nonce = re.fullmatch(r"'self' 'nonce-([A-Za-z0-9_-]{24})'", csp["script-src"]).group(1)
    assert csp["style-src"] == f"'self' 'nonce-{nonce}'"
    html = resp.get_data(as_text=True)
    tags = re.findall(r"<(?:script|style)\b[^>]*>", html)
    assert tags, "the layout loads at least one script"
    for tag in tags:
        assert f'nonce="{nonce}"' in tag, tag
    again = client.get(f"/t/{t.slug}/")
    assert nonce not in again.headers["Content-Security-Policy"]


def test_csp_forbids_framing_plugins_and_base(client):
    csp = _directives(client.get("/login").headers["Content-Security-Policy"])
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["default-src"] == "'self'" and csp["form-action"] == "'self'"
    assert "unsafe-inline" not in str(csp) and "unsafe-eval" not in str(csp)


def test_every_inline_script_and_style_in_templates_carries_the_nonce():
    tags = []
    for path in ROOT.glob("app/**/templates/**/*.html"):
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", path.read_text()):
            tags.append((path.relative_to(ROOT), tag))
    assert tags
    for path, tag in tags:
        assert 'nonce="{{ csp_nonce() }}"' in tag, f"{path}: {tag}"
    inline_handlers = [p for p in ROOT.glob("app/**/templates/**/*.html")
                       if re.search(r"\son[a-z]+=", p.read_text())]
    assert inline_handlers == [], "inline event handlers are blocked by the CSP"


def test_hsts_only_over_https_and_referrer_policy(client):
    plain = client.get("/login")
    assert "Strict-Transport-Security" not in plain.headers
    assert plain.headers["Referrer-Policy"] == "same-origin"
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    secure = client.get("/login", base_url="https://erp.example.com")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.parametrize("target", [
    "//evil.example.com/x", "https://evil.example.com/", "/\\evil.example.com",
    "\\\\evil.example.com", "javascript:alert(1)", "/\t/evil.example.com",
    "evil.example.com", "", None, "http:/evil.example.com", "/\n/evil",
])
def test_safe_next_refuses_anything_but_a_same_origin_path(target):
    assert safe_next(target) is None


def test_safe_next_keeps_relative_paths():
    assert safe_next("/t/acme/settings?tab=members") == "/t/acme/settings?tab=members"


def test_login_page_carries_only_a_safe_next(client):
    html = client.get("/login?next=//evil.example.com").get_data(as_text=True)
    assert "evil.example.com" not in html
