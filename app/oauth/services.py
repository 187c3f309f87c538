"""API clients and access tokens: create, authenticate, issue, look up, revoke.

Services take a session and never commit. Every function runs in the current
tenant's context (row-level security); the tenant is chosen by the caller from the
credential's tenant part before calling (see ``app.oauth`` for the design).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.auth import security_log
from app.db import utcnow
from tenants.context import require_context
from tenants.permissions import PERMISSIONS

from .models import ApiClient, OAuthToken

# Scope names are permission names: one vocabulary for roles, tokens and clients.
SCOPES: dict[str, str] = PERMISSIONS
CLIENT_ID_RE = re.compile(r"^erpc_([0-9a-f]{32})_([A-Za-z0-9_-]{16})$")
ACCESS_TOKEN_RE = re.compile(r"^erpat_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
TOUCH_EVERY = dt.timedelta(minutes=5)

_hasher = PasswordHasher()
# Verified against when the client is unknown, so an unknown client id costs as much
# as a wrong secret and timing does not tell which client ids exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(32))


class OAuthClientError(ValueError):
    """Bad input for an API client; the message is fit to show the admin."""


def parse_scopes(raw: str | Iterable[str] | None) -> list[str]:
    """Known scopes, sorted and de-duplicated, from a space (or comma) separated string
    or a list; raise naming any unknown one."""
    items = re.split(r"[\s,]+", raw) if isinstance(raw, str) else list(raw or [])
    clean = sorted({s.strip() for s in items if s and s.strip()})
    unknown = [s for s in clean if s not in SCOPES]
    if unknown:
        raise OAuthClientError(f"unknown scope(s): {', '.join(unknown)}")
    return clean


def _sha(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


# --- clients -------------------------------------------------------------------------


def create_client(session: Session, *, name: str, scopes: Iterable[str] | str,
                  created_by: uuid.UUID | None, ceiling: Iterable[str]) -> tuple[ApiClient, str]:
    """Create a client of the current tenant; return it and its secret (shown once).

    ``ceiling`` is what the creator may grant (their permissions): a client never
    gets a scope its creator does not hold.
    """
    ctx = require_context()
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise OAuthClientError("give the client a name of 1-100 characters (what uses it)")
    clean = parse_scopes(scopes)
    if not clean:
        raise OAuthClientError("choose at least one scope")
    beyond = sorted(set(clean) - set(ceiling))
    if beyond:
        raise OAuthClientError(f"you cannot grant scopes you do not hold: {', '.join(beyond)}")
    secret = secrets.token_urlsafe(32)
    client = ApiClient(client_id=f"erpc_{ctx.tenant_id.hex}_{secrets.token_urlsafe(12)}",
                       name=name, secret_hash=_hasher.hash(secret), scopes=clean,
                       created_by=created_by)
    session.add(client)
    session.flush()
    security_log.record(session, "api_client.created", tenant_id=ctx.tenant_id,
                        user_id=created_by, detail={"client_id": client.client_id,
                                                    "name": name, "scopes": clean})
    return client, secret


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.created_at.desc())))


def revoke_client(session: Session, client_pk: uuid.UUID, *,
                  by: uuid.UUID | None) -> ApiClient:
    """Revoke a client of the current tenant and every token it holds, at once."""
    ctx = require_context()
    client = session.scalar(select(ApiClient).where(ApiClient.id == client_pk)
                            .with_for_update())
    if client is None:
        raise OAuthClientError("no such client")
    if client.revoked_at is None:
        now = utcnow()
        client.revoked_at = now
        session.execute(update(OAuthToken)
                        .where(OAuthToken.client_id == client.id, OAuthToken.revoked_at.is_(None))
                        .values(revoked_at=now))
        session.flush()
        security_log.record(session, "api_client.revoked", tenant_id=ctx.tenant_id, user_id=by,
                            detail={"client_id": client.client_id, "name": client.name})
    return client


def tenant_of_client_id(client_id: str) -> uuid.UUID | None:
    match = CLIENT_ID_RE.match(client_id or "")
    return uuid.UUID(match.group(1)) if match else None


def find_client(session: Session, client_id: str) -> ApiClient | None:
    """The live client with this id in the current tenant."""
    return session.scalar(select(ApiClient).where(ApiClient.client_id == client_id,
                                                  ApiClient.revoked_at.is_(None)))


def check_secret(client: ApiClient | None, secret: str) -> bool:
    """Constant-cost secret check (argon2 even for an unknown client)."""
    stored = client.secret_hash if client is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, secret or "")
    except (VerificationError, InvalidHashError):
        return False
    return client is not None and client.revoked_at is None


# --- access tokens -------------------------------------------------------------------


def issue_token(session: Session, client: ApiClient, scopes: Iterable[str],
                lifetime: dt.timedelta) -> tuple[OAuthToken, str]:
    """Mint an access token for ``client`` (scopes already checked against it)."""
    ctx = require_context()
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    row = OAuthToken(client_id=client.id, token_hash=_sha(secret), scopes=sorted(set(scopes)),
                     expires_at=now + lifetime)
    client.last_used_at = now
    session.add(row)
    session.flush()
    return row, f"erpat_{ctx.tenant_id.hex}_{secret}"


def parse_access_token(token: str) -> tuple[uuid.UUID, str] | None:
    """(tenant id, secret) of a well-formed access token, else None."""
    match = ACCESS_TOKEN_RE.match(token or "")
    return (uuid.UUID(match.group(1)), match.group(2)) if match else None


def find_token(session: Session, token: str) -> OAuthToken | None:
    """The token row for this access token string in the current tenant, live or not
    (introspection and revocation must see expired and revoked ones too)."""
    parsed = parse_access_token(token)
    if parsed is None:
        return None
    return session.scalar(select(OAuthToken).where(OAuthToken.token_hash == _sha(parsed[1])))


def find_active_token(session: Session, secret: str) -> tuple[OAuthToken, ApiClient] | None:
    """The live token (not expired, not revoked, client not revoked) with this secret."""
    row = session.execute(
        select(OAuthToken, ApiClient)
        .join(ApiClient, (ApiClient.id == OAuthToken.client_id)
              & (ApiClient.tenant_id == OAuthToken.tenant_id))
        .where(OAuthToken.token_hash == _sha(secret), OAuthToken.revoked_at.is_(None),
               OAuthToken.expires_at > utcnow(), ApiClient.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    return row[0], row[1]


def is_active(token: OAuthToken, client: ApiClient | None = None) -> bool:
    if token.revoked_at is not None or token.expires_at <= utcnow():
        return False
    return client is None or client.revoked_at is None


def revoke_token(session: Session, token: OAuthToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
