"""Web security basics: CSRF on every form and htmx call, login throttling, headers.

Flask-WTF's CSRFProtect checks every POST/PUT/PATCH/DELETE that is not exempted;
htmx requests send the token in ``X-CSRFToken`` (set once on ``<body hx-headers>``).
The JSON API is exempt: it authenticates with bearer tokens, not cookies.

Content-Security-Policy: scripts and styles only from our origin or carrying this
response's nonce (``nonce="{{ csp_nonce() }}"`` on every ``<script>``/``<style>``;
a test fails on a template tag without it), no plugins, no ``<base>`` rewriting, no
framing (``frame-ancestors 'none'``), forms only to ourselves. The nonce is fresh
for every response, so an injected inline script cannot guess it. HSTS is sent only
on responses served over https (or when BASE_URL is https behind a proxy): over
plain http a browser ignores it and a local install must stay reachable.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


def csp_nonce() -> str:
    """This response's CSP nonce (made on first use, one per request)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def content_security_policy(nonce: str) -> str:
    return "; ".join((
        "default-src 'self'",
        "img-src 'self' data:",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ))


def init_security(app: Flask) -> None:
    settings = app.config["ERP_SETTINGS"]
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https,
        SESSION_COOKIE_NAME="erp_session",
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        WTF_CSRF_TIME_LIMIT=None,  # token lives as long as the session
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
    )
    if settings.proxy_hops:
        # Behind N trusted proxies the client is the Nth address from the right in
        # X-Forwarded-For; without this every client would share the proxy's
        # address, and the sign-in limit would become one limit for everybody.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops,  # type: ignore[method-assign]
                                x_proto=settings.proxy_hops, x_host=settings.proxy_hops)
    csrf.init_app(app)
    limiter.init_app(app)
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy",
                                    content_security_policy(csp_nonce()))
        if request.is_secure or settings.https:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        if request.path.startswith(("/t/", "/login", "/tenants")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
