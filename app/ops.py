"""Health endpoints for load balancers and orchestrators.

``/healthz`` says the process serves requests (no I/O, never flaps with the
database). ``/readyz`` says this instance can do useful work: the database answers
as the app role and its schema is at the migrations' head, so a node started
against an un-migrated database is kept out of rotation.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from .db import db

bp = Blueprint("ops", __name__)

_heads: set[str] | None = None


def _expected_heads() -> set[str]:
    global _heads
    if _heads is None:
        from .database import script_heads

        _heads = script_heads()
    return _heads


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Prometheus text format; see workers/metrics.py for what each series means.

    Operator data (how many tenants have a backlog, failure counts): readable with
    ``Authorization: Bearer $ERP_METRICS_TOKEN``, or, when no token is configured,
    from loopback only (a scraper on the same host or behind the same proxy).
    """
    import hmac

    from flask import abort, request
    from sqlalchemy.orm import Session

    token = current_app.config["ERP_SETTINGS"].metrics_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            abort(401)
    elif request.remote_addr not in ("127.0.0.1", "::1"):
        abort(403)

    from workers.metrics import render

    def factory() -> Session:
        # create_savepoint: when the bind is a connection already in a transaction
        # (the test harness), a rollback here must not end that transaction.
        return Session(bind=db.session.get_bind(), expire_on_commit=False,
                       join_transaction_mode="create_savepoint")

    body = render(factory)
    return body, 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    try:
        applied = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
        db.session.rollback()
    except Exception as exc:  # any failure means "not ready"; the reason is logged
        db.session.rollback()
        current_app.logger.warning("readyz: database not reachable: %s", type(exc).__name__)
        return jsonify(status="unavailable", database="unreachable"), 503
    expected = _expected_heads()
    if applied != expected:
        return jsonify(status="unavailable", database="ok", migrations="behind",
                       applied=sorted(applied), expected=sorted(expected)), 503
    return jsonify(status="ok", database="ok", migrations="head")
