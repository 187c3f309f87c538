"""API clients (client credentials) and the access tokens issued to them."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from tenants.models import TenantScoped


class ApiClient(TenantScoped, Base):
    """A machine client of one tenant. ``client_id`` is public; the secret is kept
    only as an argon2 hash and shown once, at creation."""

    __tablename__ = "api_clients"
    __table_args__ = (
        UniqueConstraint("tenant_id", "client_id"),
        CheckConstraint("cardinality(scopes) > 0", name="has_scopes"),
        {"schema": "core"},
    )

    client_id: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("core.users.id"))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OAuthToken(TenantScoped, Base):
    """An opaque access token issued by the client credentials grant (hash only)."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        ForeignKeyConstraint(["tenant_id", "client_id"],
                             ["core.api_clients.tenant_id", "core.api_clients.id"]),
        Index("ix_oauth_tokens_tenant_id_client_id", "tenant_id", "client_id"),
        {"schema": "core"},
    )

    client_id: Mapped[uuid.UUID]
    token_hash: Mapped[bytes] = mapped_column(LargeBinary)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
