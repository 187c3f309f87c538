"""``/oauth``: the token endpoint (client credentials), introspection (RFC 7662) and
revocation (RFC 7009), built on Authlib's authorization server.

What is ours rather than Authlib's, and why:

* Client authentication (``client_secret_basic`` and ``client_secret_post``) goes
  through one function that always runs the argon2 check and answers the same
  ``401 invalid_client`` for an unknown client, a revoked one and a wrong secret
  (Authlib's own says "does not exist" for unknown ids, and 400 for the post form).
* Requested scopes are checked against the client's scopes (Authlib checks only a
  server-wide list); no scope asked for means all of the client's scopes.
* Tokens are opaque and stored hashed as they are minted (``app.oauth``), with a
  lifetime of ``ERP_OAUTH_TOKEN_MINUTES`` (Authlib's default would be ten days).

The client id names its tenant; authenticating the client binds that tenant's
context to the request, so every later look-up (tokens to introspect or revoke)
runs under that tenant's row-level security.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Blueprint, Flask, Response, current_app, g, request

from app.auth import security_log
from app.db import db
from app.security import csrf, limiter
from tenants import services as tenancy
from tenants.context import TenantContext
from tenants.models import Tenant

from . import services
from .models import ApiClient, OAuthToken

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
# Per client address and per client id: a client needs a token every few minutes,
# so these leave plenty of room while making secret guessing pointless.
LIMIT_PER_IP = "30 per minute"
LIMIT_PER_CLIENT = "10 per minute"

bp = Blueprint("oauth", __name__, url_prefix="/oauth")
csrf.exempt(bp)  # form posts authenticated by client credentials, never by cookie


class Client(ClientMixin):
    """Authlib's view of an ``ApiClient`` row."""

    def __init__(self, row: ApiClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.row.scopes)
        return " ".join(s for s in scope_to_list(scope) or [] if s in allowed)

    def check_client_secret(self, client_secret: str) -> bool:
        return services.check_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False


class Token(TokenMixin):
    """Authlib's view of an ``OAuthToken`` row."""

    def __init__(self, row: OAuthToken) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.row.id

    def get_scope(self) -> str:
        return " ".join(self.row.scopes)

    def get_expires_in(self) -> int:
        return max(0, int((self.row.expires_at - dt.datetime.now(dt.UTC)).total_seconds()))

    def is_expired(self) -> bool:
        return self.row.expires_at <= dt.datetime.now(dt.UTC)

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


def _query_client(client_id: str) -> Client | None:
    """Bind the tenant named by the client id, then find the live client in it."""
    tenant_id = services.tenant_of_client_id(client_id)
    if tenant_id is None:
        return None
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None or tenant.status != "active":
        return None
    tenancy.bind_session_context(db.session, TenantContext(tenant_id=tenant.id,
                                                           tenant_slug=tenant.slug))
    g.oauth_tenant = tenant
    row = services.find_client(db.session, client_id)
    return Client(row) if row is not None else None


def _authenticate(client_id: str | None, secret: str | None) -> Client | None:
    if not client_id or not secret:
        return None
    g.oauth_client_id = client_id
    client = _query_client(client_id)
    if services.check_secret(client.row if client else None, secret):
        g.oauth_client = client
        return client
    return None


def _auth_basic(_query: Any, req: Any) -> Client | None:
    return _authenticate(*extract_basic_authorization(req.headers))


def _auth_post(_query: Any, req: Any) -> Client | None:
    return _authenticate(req.form.get("client_id"), req.form.get("client_secret"))


class ClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        requested = scope_to_list(self.request.payload.scope) or []
        beyond = sorted(set(requested) - set(self.request.client.row.scopes))
        if beyond:
            raise InvalidScopeError(f"scope not allowed for this client: {' '.join(beyond)}")


def _generate(grant_type: str, client: Client, user: Any = None, scope: str | None = None,
              expires_in: int | None = None, include_refresh_token: bool = False,
              ) -> dict[str, Any]:
    # The hash is stored as the token is minted (save_token has nothing left to do),
    # so the plain token exists only in this response.
    minutes = current_app.config["ERP_SETTINGS"].oauth_token_minutes
    scopes = scope_to_list(scope) or list(client.row.scopes)
    _, value = services.issue_token(db.session, client.row, scopes,
                                    dt.timedelta(minutes=minutes))
    return {"token_type": "Bearer", "access_token": value, "expires_in": minutes * 60,
            "scope": " ".join(sorted(set(scopes)))}


class _TokenLookup:
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        row = services.find_token(db.session, token_string)
        return Token(row) if row is not None else None


class Introspection(_TokenLookup, IntrospectionEndpoint):
    """A client may introspect its own tokens (anything else reads ``active: false``)."""

    def check_permission(self, token: Token, client: Client, request: Any) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: Token) -> dict[str, Any]:
        client = g.oauth_client.row
        return {"active": True, "client_id": client.client_id, "token_type": "Bearer",
                "scope": token.get_scope(), "sub": client.client_id,
                "tenant": g.oauth_tenant.slug,
                "iat": int(token.row.created_at.timestamp()),
                "exp": int(token.row.expires_at.timestamp())}


class Revocation(_TokenLookup, RevocationEndpoint):
    def revoke_token(self, token: Token, request: Any) -> None:
        services.revoke_token(db.session, token.row)


def init_oauth(app: Flask) -> None:
    """One authorization server per app (Authlib keeps its grants per instance)."""
    server = AuthorizationServer()
    server.init_app(app, query_client=_query_client, save_token=lambda _token, _req: None)
    server.register_token_generator("default", _generate)
    server.register_client_auth_method("client_secret_basic", _auth_basic)
    server.register_client_auth_method("client_secret_post", _auth_post)
    server.register_grant(ClientCredentials)
    server.register_endpoint(Introspection)
    server.register_endpoint(Revocation)
    app.extensions["erp_oauth_server"] = server
    app.register_blueprint(bp)


def _server() -> AuthorizationServer:
    return current_app.extensions["erp_oauth_server"]


def _client_key() -> str:
    client_id, _ = extract_basic_authorization(request.headers)
    return "oauth-client:" + (client_id or request.form.get("client_id") or "")


def _finish(response: Response, endpoint: str) -> Response:
    """Commit what succeeded; on a refusal, roll back and log it for the client's
    tenant (when the client id named a real tenant)."""
    if response.status_code < 400:
        db.session.commit()
        return response
    db.session.rollback()
    tenant = g.get("oauth_tenant") or _tenant_named_by_request()
    if tenant is not None:
        error = (response.get_json(silent=True) or {}).get("error", "")
        security_log.record(db.session, "oauth.token_failed", tenant_id=tenant.id,
                            detail={"client_id": g.get("oauth_client_id"),
                                    "endpoint": endpoint, "error": error,
                                    "grant_type": request.form.get("grant_type")})
        db.session.commit()
    return response


def _tenant_named_by_request() -> Tenant | None:
    # A refusal before client authentication (unsupported grant type, malformed
    # request) is still filed under the tenant its client id names. The id is
    # public, so this can only add refusals to a log, never read one; the endpoint
    # is rate limited.
    client_id = _client_key().removeprefix("oauth-client:")
    tenant_id = services.tenant_of_client_id(client_id)
    if tenant_id is None:
        return None
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None or tenant.status != "active":
        return None
    g.oauth_client_id = client_id
    return tenant


@bp.post("/token")
@limiter.limit(LIMIT_PER_IP)
@limiter.limit(LIMIT_PER_CLIENT, key_func=_client_key)
def token() -> Response:
    return _finish(_server().create_token_response(), "token")


@bp.post("/introspect")
@limiter.limit(LIMIT_PER_IP)
def introspect() -> Response:
    return _finish(_server().create_endpoint_response("introspection"), "introspect")


@bp.post("/revoke")
@limiter.limit(LIMIT_PER_IP)
def revoke() -> Response:
    return _finish(_server().create_endpoint_response("revocation"), "revoke")
