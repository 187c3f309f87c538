"""Flask application factory: one named initialiser per subsystem.

``create_app()`` with no argument reads the environment (and starts the embedded
PostgreSQL if ``DATABASE_URL`` is unset), so ``flask --app app run`` works as well
as ``erp serve``.
"""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Any

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider

from tenants.context import activate, set_request_id

from .settings import Settings, load_settings

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def create_app(settings: Settings | None = None) -> Flask:
    from .database import resolve_databases

    if settings is None:
        settings = load_settings()
    settings = resolve_databases(settings)

    app = Flask(__name__)
    app.json = DecimalJSONProvider(app)
    app.config["ERP_SETTINGS"] = settings
    app.config["SECRET_KEY"] = settings.secret_key
    app.config["TESTING"] = settings.testing

    from .logs import init_logging

    init_logging(settings.log_level, settings.log_format)
    init_request_ids(app)
    init_db(app, settings)

    from .security import init_security

    init_security(app)

    from .errors import register_error_handlers

    register_error_handlers(app)
    register_blueprints(app)

    from workers.consumers import load as load_consumers

    load_consumers()
    return app


class DecimalJSONProvider(DefaultJSONProvider):
    """JSON numbers with a fraction are read as Decimal, never float: money sent as
    ``0.1`` stays exactly 0.1. (Decimals are written back as strings by Flask.)"""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_float", Decimal)
        return json.loads(s, **kwargs)


def init_request_ids(app: Flask) -> None:
    """A request id on every response and log line; a caller's own id is kept when sane."""

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        g.request_id = rid
        set_request_id(rid)
        activate(None)

    @app.after_request
    def _stamp(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.teardown_request
    def _clear(_exc: BaseException | None) -> None:
        activate(None)
        set_request_id(None)


def init_db(app: Flask, settings: Settings) -> None:
    from tenants.orm import install_session_guard

    from . import models  # noqa: F401 - every model registered before first use
    from .db import ENGINE_OPTIONS, db, install_engine_hooks
    from .settings import sqlalchemy_url

    app.config["SQLALCHEMY_DATABASE_URI"] = sqlalchemy_url(settings.database_url or "")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(ENGINE_OPTIONS)
    db.init_app(app)
    with app.app_context():
        install_engine_hooks(db.engine)
    install_session_guard()


def register_blueprints(app: Flask) -> None:
    from .api import bp as api_bp
    from .api import me as _api_me  # noqa: F401 - registers its routes on bp
    from .api import members as _api_members  # noqa: F401 - registers its routes on bp
    from .api.openapi import docs_bp as api_docs_bp
    from .api.token_views import bp as api_tokens_bp
    from .auth.log_views import bp as security_log_bp
    from .auth.views import bp as auth_bp
    from .billing import api as _billing_api  # noqa: F401 - registers its routes on bp
    from .billing.views import bp as billing_bp
    from .crm import api as _crm_api  # noqa: F401 - registers its routes on bp
    from .crm import custom_fields_api as _crm_custom_fields_api  # noqa: F401 - on bp
    from .crm import pipeline_api as _crm_pipeline_api  # noqa: F401 - its routes on bp
    from .crm import tickets_api as _crm_tickets_api  # noqa: F401 - on bp
    from .crm.custom_fields_views import bp as crm_custom_fields_bp
    from .crm.pipeline_views import bp as pipeline_bp
    from .crm.tickets_views import bp as crm_tickets_bp
    from .crm.views import bp as crm_bp
    from .events.views import bp as events_bp
    from .events.webhook_views import bp as webhooks_bp
    from .hr import api as _hr_api  # noqa: F401 - registers its routes on bp
    from .hr.views import bp as hr_bp
    from .inventory import api as _inventory_api  # noqa: F401 - registers its routes on bp
    from .inventory.views import bp as inventory_bp
    from .ledger import api as _ledger_api  # noqa: F401 - registers its routes on bp
    from .ledger.views import bp as ledger_bp
    from .oauth.server import init_oauth
    from .oauth.views import bp as api_clients_bp
    from .ops import bp as ops_bp
    from .portal.views import bp as portal_bp
    from .purchasing import api as _purchasing_api  # noqa: F401 - registers its routes on bp
    from .purchasing.views import bp as purchasing_bp
    from .sales import api as _sales_api  # noqa: F401 - registers its routes on bp
    from .sales.views import bp as sales_bp

    app.register_blueprint(ops_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(crm_bp)
    app.register_blueprint(pipeline_bp)
    app.register_blueprint(ledger_bp)
    app.register_blueprint(inventory_bp)
    app.register_blueprint(purchasing_bp)
    app.register_blueprint(hr_bp)
    app.register_blueprint(sales_bp)
    app.register_blueprint(billing_bp)
    app.register_blueprint(crm_tickets_bp)
    app.register_blueprint(crm_custom_fields_bp)
    app.register_blueprint(events_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(api_tokens_bp)
    app.register_blueprint(api_clients_bp)
    app.register_blueprint(security_log_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(api_docs_bp)
    init_oauth(app)
