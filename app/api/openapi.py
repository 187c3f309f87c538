"""The OpenAPI 3.1 document of ``/api/v1``, built from the code at request time.

Each API view declares its query, body and response pydantic models with ``@doc``;
the route itself (method, path, path parameters) comes from Flask's URL map and the
required permission from ``@api_auth``. The document is assembled with apispec from
those facts, so it cannot drift from what the code accepts and answers: a route
without ``@doc`` is refused by ``undocumented_routes()`` (and the test suite), and the
schemathesis test checks every documented response against the running app.

Pydantic emits JSON Schema 2020-12, which is the dialect of OpenAPI 3.1, so model
schemas are used as they are; their ``$defs`` are hoisted into ``components``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from flask import Blueprint, Flask, current_app, jsonify, render_template, send_from_directory
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

from . import bp

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    400: "Malformed request (not JSON, not an object)",
    401: "Missing, unknown or revoked token",
    403: "The token lacks the permission this operation needs",
    404: "No such record in this tenant (another tenant's ids look exactly like this)",
    409: "Conflict with the current state (duplicate, wrong status)",
    422: "Some fields are not valid; `fields` maps each to its message",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, Any] = Field(default_factory=dict)


class Error(BaseModel):
    """Every 4xx of the API has this shape."""

    error: ErrorBody


def doc(*, summary: str, query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
        status: int = 200, tags: list[str] | None = None,
        errors: tuple[int, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach the OpenAPI facts to a view; changes nothing about how it runs.

    ``response=None`` with ``status=204`` documents an empty answer. ``errors`` adds
    error statuses beyond the ones implied (401/403 always; 404 with a path
    parameter; 400/422 with a body or query; 409 for POST).
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        view.__api_doc__ = {  # type: ignore[attr-defined]
            "summary": summary, "query": query, "body": body, "response": response,
            "status": status, "tags": tags, "errors": errors,
        }
        return view

    return decorator


def _api_doc(view: Callable[..., Any]) -> dict[str, Any] | None:
    seen: set[int] = set()
    while view is not None and id(view) not in seen:
        seen.add(id(view))
        found = getattr(view, "__api_doc__", None)
        if found is not None:
            return found
        view = getattr(view, "__wrapped__", None)
    return None


def _permission(view: Callable[..., Any]) -> str | None:
    return getattr(view, "required_permission", None)


def _api_rules(app: Flask) -> list[Any]:
    return [r for r in app.url_map.iter_rules()
            if r.endpoint.startswith("api.") and r.endpoint not in PUBLIC_ENDPOINTS]


PUBLIC_ENDPOINTS = {"api.openapi_json", "api.index", "api.static"}


def undocumented_routes(app: Flask) -> list[str]:
    """Routes of the API without ``@doc``: a test keeps this list empty."""
    missing = []
    for rule in _api_rules(app):
        if _api_doc(app.view_functions[rule.endpoint]) is None:
            methods = ",".join(sorted(rule.methods - {"HEAD", "OPTIONS"}))
            missing.append(f"{methods} {rule.rule}")
    return sorted(missing)


class _Schemas:
    """Collects component schemas, hoisting pydantic's ``$defs``."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        name = model.__name__
        schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        for def_name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(def_name, definition)
        self.components.setdefault(name, schema)
        return {"$ref": REF.format(model=name)}

    def query_parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = model.model_json_schema(ref_template=REF, mode="validation")
        for def_name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(def_name, definition)
        required = set(schema.get("required", []))
        params = []
        for name, prop in schema.get("properties", {}).items():
            description = prop.pop("description", None)
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
        return params


_PATH_PARAM = re.compile(r"<(?:[a-z_]+:)?([a-z_][a-z0-9_]*)>")


def build(app: Flask) -> dict[str, Any]:
    """The whole document for ``app``'s API routes."""
    spec = APISpec(
        title="ERP API", version="v1", openapi_version="3.1.0",
        info={"description": "Tenant-scoped REST API. Authenticate with "
                             "`Authorization: Bearer <token>`; the token names the tenant."},
        servers=[{"url": "/api/v1"}],
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer",
                   "description": "A personal API token (erp_...) or an OAuth 2 access token"})
    schemas = _Schemas()
    error_ref = schemas.ref(Error, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(_api_rules(app), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        facts = _api_doc(view)
        if facts is None:
            continue
        path = _PATH_PARAM.sub(r"{\1}", rule.rule.removeprefix("/api/v1")) or "/"
        path_params = _PATH_PARAM.findall(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operation: dict[str, Any] = {
                "summary": facts["summary"],
                "operationId": rule.endpoint.removeprefix("api.") + (
                    "" if len(rule.methods - {"HEAD", "OPTIONS"}) == 1 else f"_{method.lower()}"),
                "tags": facts["tags"] or [_tag(path)],
                "security": [{"bearer": []}],
            }
            permission = _permission(view)
            if permission:
                operation["description"] = f"Needs the permission (scope) `{permission}`."
                operation["x-permission"] = permission
            params = [{"name": p, "in": "path", "required": True,
                       "schema": {"type": "string"}} for p in path_params]
            if facts["query"] is not None:
                params += schemas.query_parameters(facts["query"])
            if method == "POST":
                params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                               "schema": {"type": "string", "minLength": 1,
                                                          "maxLength": 200},
                               "description": "Replays the first response for the same key "
                                              "and body; 422 for a different body"})
            if params:
                operation["parameters"] = params
            if facts["body"] is not None:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": schemas.ref(facts["body"], "validation")}}}
            status = facts["status"]
            responses: dict[str, Any] = {}
            if facts["response"] is None:
                responses[str(status)] = {"description": "Done"}
            else:
                responses[str(status)] = {"description": "OK", "content": {
                    "application/json": {"schema": schemas.ref(facts["response"],
                                                               "serialization")}}}
            errors = {401, *facts["errors"]}
            if permission:
                errors.add(403)
            if path_params:
                errors.add(404)
            if facts["body"] is not None or facts["query"] is not None:
                errors |= {400, 422}
            if method == "POST":
                errors |= {400, 409, 422}  # 400: a malformed Idempotency-Key
            for code in sorted(errors):
                responses[str(code)] = {"description": ERROR_STATUSES[code], "content": {
                    "application/json": {"schema": error_ref}}}
            operation["responses"] = responses
            paths.setdefault(path, {})[method.lower()] = operation
    for name, schema in sorted(schemas.components.items()):
        spec.components.schema(name, schema)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _tag(path: str) -> str:
    return path.strip("/").split("/")[0] or "api"


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    """Public like any API reference; it lists shapes, never data."""
    return jsonify(build(current_app))


# Interactive docs at /api/docs, with Swagger UI's files served from the installed
# swagger-ui-bundle package (nothing is fetched from a CDN).
docs_bp = Blueprint("api_docs", __name__, url_prefix="/api/docs",
                    template_folder="templates", static_folder="static")


def _swagger_dir() -> str:
    from swagger_ui_bundle import swagger_ui_path

    return str(swagger_ui_path)


@docs_bp.get("/")
def docs() -> ResponseReturnValue:
    """Swagger UI sets style attributes from script, so this one page allows inline
    styles; scripts stay 'self' only."""
    response = current_app.make_response(render_template("api/docs.html"))
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
    return response


@docs_bp.get("/assets/<path:filename>")
def swagger_asset(filename: str) -> ResponseReturnValue:
    if filename not in {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}:
        return jsonify(error={"code": "not_found", "message": "no such file", "fields": {}}), 404
    return send_from_directory(_swagger_dir(), filename, max_age=86400)
