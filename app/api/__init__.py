"""REST API v1 root. Domain packages add their resources to ``bp``.

The API authenticates with bearer tokens (added by the CRM and SSO issues), never
the session cookie, so it is exempt from CSRF and cannot be driven by a forged
cross-site form post.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from app.security import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


@bp.get("/")
def index() -> ResponseReturnValue:
    """Discovery document: which version this is and where the health checks are."""
    return jsonify(api="erp", version="v1", health="/healthz", ready="/readyz")
