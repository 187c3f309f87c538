"""Error pages and JSON error bodies.

Paths under ``/api/`` answer ``{"error": {"code", "message", "fields"}}``; everything
else gets a styled HTML page. Nothing from a database error is ever shown: FK and
unique violations can echo another tenant's values in their DETAIL.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

TITLES = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Sign in required", "Please sign in to continue."),
    403: ("Not allowed", "Your role does not allow this. Ask an administrator of this "
          "company if you need access."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Method not allowed", "That action is not available here."),
    409: ("Conflict", "The request conflicts with the current state."),
    422: ("Invalid input", "Some values were not accepted."),
    429: ("Too many attempts", "Too many requests in a short time. Wait a minute and try "
          "again."),
    500: ("Something went wrong", "The error has been logged with the request id below."),
}

CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 422: "invalid", 429: "rate_limited",
    500: "internal_error",
}


class ApiError(Exception):
    """Raise from API code to answer with the standard error shape."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 fields: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.fields = fields or {}


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/oauth/")) or request.path == "/api"


def json_error(status: int, message: str, code: str | None = None,
               fields: dict[str, Any] | None = None) -> Response:
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message,
                      "fields": fields or {}}}
    response = jsonify(body)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        response = json_error(exc.status, exc.message, exc.code, exc.fields)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="erp"'
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | tuple[str, int]:
        status = exc.code or 500
        title, default = TITLES.get(status, (exc.name, exc.description or ""))
        if wants_json():
            return json_error(status, default if status >= 500 else (exc.description or title))
        return render_template("error.html", status=status, title=title, message=default), status

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception) -> Response | tuple[str, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _http_error(InternalServerError())
