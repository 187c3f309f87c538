"""Schema ``core``: the tenant registry, global identities, memberships, counters.

``TenantScoped`` is the mixin every tenant-owned table in every domain uses; the
rules it encodes (``tenant_id`` first, composite primary key, UUIDv7 ids) are the
ones the catalog test checks in ``pg_catalog``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from app.db import Base, Timestamps, currency_code, new_id, str_short, uuid_pk

from .context import require_context


def _context_tenant_id() -> uuid.UUID:
    return require_context().tenant_id


class TenantKey:
    """Mixin for tenant-owned tables: ``PRIMARY KEY (tenant_id, id)``.

    ``tenant_id`` defaults to the active context's tenant, so services do not pass
    it around; RLS's WITH CHECK refuses any other value anyway. Foreign keys from a
    tenant table to another must be composite ``(tenant_id, x_id)``: declare them
    with ``ForeignKeyConstraint`` in ``__table_args__``.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805 - SQLAlchemy passes the class
        return mapped_column(
            ForeignKey("core.tenants.id"),
            primary_key=True,
            default=_context_tenant_id,
            sort_order=-10,
        )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=new_id, server_default=text("app.uuid7()"), sort_order=-9
    )


class TenantScoped(TenantKey, Timestamps):
    """A tenant table with created_at/updated_at: what almost every table wants.
    (Append-only logs with their own time column use ``TenantKey`` alone.)"""


class Tenant(Timestamps, Base):
    """A customer company. Global: resolved from the URL slug before any context."""

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$'", name="slug_format"),
        CheckConstraint("base_currency ~ '^[A-Z]{3}$'", name="base_currency_iso"),
        CheckConstraint("status IN ('active', 'suspended')", name="status_known"),
        {"schema": "core"},
    )

    id: Mapped[uuid_pk]
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str_short]
    base_currency: Mapped[currency_code]
    status: Mapped[str] = mapped_column(String(20), server_default="active")
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class User(Timestamps, Base):
    """A person. Global: one identity may belong to several tenants."""

    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email_lower", func.lower(text("email")), unique=True),
        CheckConstraint("position('@' in email) > 1", name="email_has_at"),
        {"schema": "core"},
    )

    id: Mapped[uuid_pk]
    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str_short] = mapped_column(server_default="")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    is_platform_admin: Mapped[bool] = mapped_column(server_default=text("false"))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Stored in each session cookie at sign-in; raising it signs the user out everywhere.
    session_generation: Mapped[int] = mapped_column(server_default=text("0"))


class Membership(Timestamps, Base):
    """A user's roles in one tenant. Listed as global: read at sign-in, before a
    tenant is chosen, to offer the tenant switcher (see ``tenants.globals``). Its
    keys are tenant-led like a tenant table's, but it is not ``TenantScoped``, so
    the ORM tenant filter leaves it to the narrow functions in ``tenants.services``.
    """

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id"),
        Index("ix_memberships_user_id", "user_id"),
        CheckConstraint(
            "cardinality(roles) > 0 AND roles <@ ARRAY['owner','admin','sales','finance',"
            "'warehouse','hr','viewer']::varchar[]",
            name="roles_known",
        ),
        {"schema": "core"},
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.tenants.id"), primary_key=True)
    id: Mapped[uuid_pk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("core.users.id"))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))


class DocumentCounter(TenantScoped, Base):
    """Gapless numbering per tenant, document type and period.

    The row is locked by the UPDATE that takes a number and released at commit, so
    numbers are handed out in commit order and a rolled-back transaction gives its
    number back. That serialises issuing per (tenant, type, period), which is what
    auditors ask of invoice numbers, and costs nothing across tenants.
    """

    __tablename__ = "document_counters"
    __table_args__ = (
        UniqueConstraint("tenant_id", "doc_type", "period"),
        CheckConstraint("last_value >= 0", name="last_value_non_negative"),
        {"schema": "core"},
    )

    doc_type: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(20), server_default="")
    last_value: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
