"""Per-user API tokens: ``erp_<tenant id>_<secret>``, hashed at rest, shown once.

The tenant id in the token is not a secret: it routes the look-up. The request sets
that tenant's context *before* authenticating, so the hash is searched only among
that tenant's tokens, under row-level security; a token can therefore never act in
another tenant, whatever id is written into it. The secret part has 256 bits of
entropy, so a plain SHA-256 (fast, constant per request) is the right hash here;
passwords, which people choose, get argon2 instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, UniqueConstraint, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db import Base, utcnow
from tenants.context import require_context
from tenants.models import Membership, Tenant, TenantScoped, User

TOKEN_RE = re.compile(r"^erp_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
TOUCH_EVERY = dt.timedelta(minutes=5)


class ApiToken(TenantScoped, Base):
    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("tenant_id", "token_hash"), {"schema": "core"})

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.users.id"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Scopes (permission names) the token is limited to; NULL means all of its user's
    # permissions. Either way the user's current roles are the ceiling.
    scopes: Mapped[list[str] | None] = mapped_column(ARRAY(String(40)))


class TokenError(ValueError):
    pass


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def create_token(session: Session, user_id: uuid.UUID, name: str,
                 scopes: Iterable[str] | str | None = None) -> tuple[ApiToken, str]:
    """Create a token for ``user_id`` in the current tenant; return it and the token
    string, which is never stored and cannot be shown again. ``scopes`` limits it
    (same names as OAuth scopes); None or empty means all of the user's permissions."""
    from app.oauth.services import OAuthClientError, parse_scopes

    ctx = require_context()
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise TokenError("give the token a name of 1-100 characters (what uses it)")
    try:
        clean = parse_scopes(scopes) or None
    except OAuthClientError as exc:
        raise TokenError(str(exc)) from None
    secret = secrets.token_urlsafe(32)
    token = f"erp_{ctx.tenant_id.hex}_{secret}"
    row = ApiToken(user_id=user_id, name=name, prefix=token[:12], token_hash=_hash(secret),
                   scopes=clean)
    session.add(row)
    session.flush()
    return row, token


def parse(token: str) -> tuple[uuid.UUID, str] | None:
    """(tenant id, secret) of a well-formed token, else None."""
    match = TOKEN_RE.match(token or "")
    if match is None:
        return None
    return uuid.UUID(match.group(1)), match.group(2)


def find_active(session: Session, secret: str
                ) -> tuple[ApiToken, Membership, Tenant] | None:
    """The live token with this secret in the current tenant, with its user's active
    membership and the (active) tenant; None when unknown, revoked, or the user,
    membership or tenant is disabled. One query: it runs on every API call."""
    row = session.execute(
        select(ApiToken, Membership, Tenant)
        .join(User, User.id == ApiToken.user_id)
        .join(Membership, (Membership.user_id == ApiToken.user_id)
              & (Membership.tenant_id == ApiToken.tenant_id))
        .join(Tenant, Tenant.id == ApiToken.tenant_id)
        .where(ApiToken.token_hash == _hash(secret), ApiToken.revoked_at.is_(None),
               User.is_active.is_(True), Membership.is_active.is_(True),
               Tenant.status == "active")
    ).first()
    if row is None:
        return None
    token, membership, tenant = row
    if token.last_used_at is None or utcnow() - token.last_used_at > TOUCH_EVERY:
        token.last_used_at = utcnow()
    return token, membership, tenant


def list_tokens(session: Session, user_id: uuid.UUID | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.created_at.desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(session.scalars(query))


def revoke(session: Session, token_id: uuid.UUID, *, user_id: uuid.UUID | None) -> ApiToken:
    """Revoke a token of the current tenant (only the caller's own unless user_id is
    None, which admins use)."""
    query = select(ApiToken).where(ApiToken.id == token_id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    row = session.scalar(query.with_for_update())
    if row is None:
        raise TokenError("no such token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    session.flush()
    return row
