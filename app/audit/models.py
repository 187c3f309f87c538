"""Schema ``audit``: the change log and its hash-chain seals."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from tenants.models import TenantKey


class AuditEntry(TenantKey, Base):
    __tablename__ = "log"
    __table_args__ = (
        CheckConstraint("op IN ('I', 'U', 'D')", name="op_known"),
        Index("ix_log_tenant_id_table_name_row_id", "tenant_id", "table_name", "row_id"),
        {"schema": "audit"},
    )

    table_name: Mapped[str] = mapped_column(String(130))
    row_id: Mapped[uuid.UUID | None]
    op: Mapped[str] = mapped_column(String(1))
    old: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    new: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    user_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                            server_default=text("clock_timestamp()"))


class AuditSeal(TenantKey, Base):
    __tablename__ = "seals"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq"),
        UniqueConstraint("tenant_id", "log_id"),
        ForeignKeyConstraint(["tenant_id", "log_id"], ["audit.log.tenant_id", "audit.log.id"]),
        {"schema": "audit"},
    )

    seq: Mapped[int] = mapped_column(BigInteger)
    log_id: Mapped[uuid.UUID]
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                   server_default=text("now()"))
