"""Schema ``hr``: employees, shifts, machines and machinery logs.

Overlapping shifts of one employee are refused by the database itself: an
exclusion constraint over ``tstzrange(starts_at, ends_at)`` (migration ``0203_hr``),
so two planners saving at the same moment cannot double-book anyone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from tenants.models import TenantScoped

EVENT_TYPES = ("run", "maintenance", "breakdown")


def _fk(column: str, target: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", column], [f"{target}.tenant_id", f"{target}.id"])


class Employee(TenantScoped, Base):
    __tablename__ = "employees"
    __table_args__ = (
        Index("uq_employees_tenant_id_email", "tenant_id", func.lower(text("email")),
              unique=True, postgresql_where=text("email IS NOT NULL")),
        Index("ix_employees_tenant_id_last_name", "tenant_id", "last_name"),
        CheckConstraint("(hourly_rate IS NULL) = (currency IS NULL)", name="rate_has_currency"),
        CheckConstraint("hourly_rate IS NULL OR hourly_rate >= 0", name="rate_non_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        {"schema": "hr"},
    )

    first_name: Mapped[str] = mapped_column(String(100), server_default="")
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    department: Mapped[str] = mapped_column(String(100), server_default="")
    job_role: Mapped[str] = mapped_column(String(100), server_default="")
    hourly_rate: Mapped[Decimal | None] = mapped_column(Numeric(19, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    hired_on: Mapped[dt.date | None] = mapped_column(Date)
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Shift(TenantScoped, Base):
    __tablename__ = "shifts"
    __table_args__ = (
        _fk("employee_id", "hr.employees"),
        _fk("warehouse_id", "inventory.warehouses"),
        CheckConstraint("ends_at > starts_at AND ends_at - starts_at <= interval '24 hours'",
                        name="length"),
        ExcludeConstraint(("tenant_id", "="), ("employee_id", "="),
                          (func.tstzrange(text("starts_at"), text("ends_at")), "&&"),
                          name="ex_shifts_no_overlap", using="gist"),
        Index("ix_shifts_tenant_id_starts_at", "tenant_id", "starts_at"),
        {"schema": "hr"},
    )

    employee_id: Mapped[uuid.UUID]
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    warehouse_id: Mapped[uuid.UUID | None]
    location: Mapped[str] = mapped_column(String(100), server_default="")
    notes: Mapped[str] = mapped_column(String(500), server_default="")

    @property
    def hours(self) -> Decimal:
        return (Decimal((self.ends_at - self.starts_at).total_seconds())
                / 3600).quantize(Decimal("0.01"))


class Machine(TenantScoped, Base):
    __tablename__ = "machines"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        _fk("warehouse_id", "inventory.warehouses"),
        {"schema": "hr"},
    )

    code: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    warehouse_id: Mapped[uuid.UUID | None]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))


class MachineryLog(TenantScoped, Base):
    """What happened to a machine: a run, maintenance or a breakdown, and for how long."""

    __tablename__ = "machinery_logs"
    __table_args__ = (
        _fk("machine_id", "hr.machines"),
        _fk("employee_id", "hr.employees"),
        CheckConstraint("event_type IN ('run', 'maintenance', 'breakdown')",
                        name="event_type_known"),
        CheckConstraint("hours >= 0 AND hours <= 744", name="hours_range"),
        Index("ix_machinery_logs_tenant_id_machine_id_occurred_at", "tenant_id", "machine_id",
              "occurred_at"),
        {"schema": "hr"},
    )

    machine_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    hours: Mapped[Decimal] = mapped_column(Numeric(8, 2), server_default=text("0"))
    notes: Mapped[str] = mapped_column(Text, server_default="")
    employee_id: Mapped[uuid.UUID | None]
