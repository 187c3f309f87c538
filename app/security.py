"""Web security basics: CSRF on every form and htmx call, login throttling, headers.

Flask-WTF's CSRFProtect checks every POST/PUT/PATCH/DELETE that is not exempted;
htmx requests send the token in ``X-CSRFToken`` (set once on ``<body hx-headers>``).
The JSON API is exempt: it authenticates with bearer tokens, not cookies.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


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

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        if settings.https:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        if request.path.startswith(("/t/", "/login", "/tenants")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
