"""Tenancy services: provisioning, identities, memberships, numbering.

Services take a session and never commit: the request, CLI command or job that
calls them owns the one commit or rollback. The functions that read the global
tables (``find_tenant_by_slug``, ``find_user_by_email``, ``memberships_of_user``,
``tenant_members``) are the only way code reaches them, and each filters by the key
it is given (see ``tenants.globals``).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, scoped_session

from app.db import apply_context, utcnow
from app.money import UnknownCurrency, validate_currency

from .context import TenantContext, activate, current_context, tenant_scope
from .models import Membership, Tenant, TenantKey, User
from .permissions import UnknownRole, permissions_for, validate_roles

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs the same as a hit and
# response times do not reveal which emails have accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class TenancyError(ValueError):
    """Bad input to a tenancy service; the message is fit to show the user."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- validation -------------------------------------------------------------------


def validate_slug(slug: str) -> str:
    clean = (slug or "").strip().lower()
    if not SLUG_RE.match(clean):
        raise TenancyError(
            "the slug must be 3-40 characters of a-z, 0-9 and '-', "
            "not starting or ending with '-'",
            "slug",
        )
    return clean


def validate_email(email: str) -> str:
    clean = (email or "").strip()
    if not EMAIL_RE.match(clean) or len(clean) > 320:
        raise TenancyError(f"{email!r} is not a valid email address", "email")
    return clean


def validate_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise TenancyError(f"the password must be at least {MIN_PASSWORD} characters", "password")
    return password


def _currency(code: str) -> str:
    try:
        return validate_currency(code)
    except UnknownCurrency as exc:
        raise TenancyError(str(exc), "base_currency") from None


def _roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    try:
        return list(validate_roles(roles))
    except UnknownRole as exc:
        raise TenancyError(str(exc), "roles") from None


# --- passwords --------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(validate_password(password))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or None (same cost either way)."""
    user = find_user_by_email(session, email)
    stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active or user.password_hash is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


# --- narrow readers of the global tables --------------------------------------------


def find_tenant_by_slug(session: Session, slug: str) -> Tenant | None:
    return session.scalar(select(Tenant).where(Tenant.slug == (slug or "").lower()))


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(
        select(User).where(func.lower(User.email) == (email or "").strip().lower())
    )


@dataclass(frozen=True)
class TenantChoice:
    tenant_id: uuid.UUID
    slug: str
    name: str
    roles: tuple[str, ...]


def memberships_of_user(session: Session, user_id: uuid.UUID) -> list[TenantChoice]:
    """Active tenants where the user has an active membership, for the switcher."""
    rows = session.execute(
        select(Tenant.id, Tenant.slug, Tenant.name, Membership.roles)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(
            Membership.user_id == user_id,
            Membership.is_active.is_(True),
            Tenant.status == "active",
        )
        .order_by(Tenant.name)
    ).all()
    return [TenantChoice(r.id, r.slug, r.name, tuple(r.roles)) for r in rows]


def tenant_members(session: Session, tenant_id: uuid.UUID) -> list[tuple[Membership, User]]:
    rows = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == tenant_id)
        .order_by(func.lower(User.email))
    ).all()
    return [(m, u) for m, u in rows]


def membership_of(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    return session.scalar(
        select(Membership).where(
            Membership.tenant_id == tenant_id, Membership.user_id == user_id
        )
    )


def is_member(session: Session, user_id: uuid.UUID) -> bool:
    """Whether ``user_id`` belongs to the current tenant: owners and assignees must.

    A foreign key to ``core.users`` alone would accept any user of the platform
    (and fail with a database error for an unknown id).
    """
    from .context import require_context

    return membership_of(session, require_context().tenant_id, user_id) is not None


# --- context ----------------------------------------------------------------------


def context_for(tenant: Tenant, membership: Membership) -> TenantContext:
    """Build the context from an authenticated membership: the only way one is made
    for web requests."""
    return TenantContext(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        user_id=membership.user_id,
        roles=frozenset(membership.roles),
        permissions=permissions_for(membership.roles),
    )


def bind_session_context(session: Session, ctx: TenantContext | None) -> None:
    """Make ``ctx`` current for the session's work from the next statement on.

    The engine hook writes the context when a transaction begins. When the session's
    open transaction began under no tenant (the global look-ups that found the
    membership or token) or under the same tenant, the new context is written into
    that transaction with the same ``set_config(..., true)``: a request then costs one
    transaction, not three. A transaction begun under another tenant is committed
    first: one transaction never acts for two tenants.
    """
    if isinstance(session, scoped_session):
        session = session()
    began_under = _transaction_tenant(session)
    if began_under is not None and (ctx is None or began_under != ctx.tenant_id):
        session.commit()
    _forget_other_tenants(session, ctx)
    activate(ctx)
    if session.in_transaction():
        from app.db import apply_context

        apply_context(session.connection())


def _transaction_tenant(session: Session) -> uuid.UUID | None:
    if not session.in_transaction():
        return None
    from app.db import TXN_TENANT

    return session.connection().info.get(TXN_TENANT)


def _forget_other_tenants(session: Session, ctx: TenantContext | None) -> None:
    # Session.get() answers from the identity map without SQL, so neither RLS nor the
    # ORM tenant filter would stop an object of the previous tenant being handed out.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, TenantKey) and (ctx is None or obj.tenant_id != ctx.tenant_id):
            session.expunge(obj)


@contextmanager
def acting_in(session: Session, tenant: Tenant) -> Iterator[None]:
    """Make sure the current transaction acts for ``tenant`` (memberships are
    audited, and the audit log accepts only rows of the transaction's tenant).

    Inside a request for that tenant this does nothing; from the CLI or a test it
    enters ``provisioning_scope``.
    """
    ctx = current_context()
    if ctx is not None and ctx.tenant_id == tenant.id:
        yield
        return
    with provisioning_scope(session, tenant):
        yield


@contextmanager
def provisioning_scope(session: Session, tenant: Tenant) -> Iterator[TenantContext]:
    """Act inside a tenant within the *current* transaction, for provisioning only.

    Creating a tenant and seeding its data must be one all-or-nothing transaction,
    but the transaction began before the tenant existed. This writes the new context
    into it through the same hook the engine uses, and restores the previous one
    (context and database settings) afterwards.
    """
    previous = current_context()
    ctx = TenantContext(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        user_id=previous.user_id if previous else None,
        roles=frozenset({"owner"}),
        permissions=permissions_for(["owner"]),
    )
    with tenant_scope(ctx):
        apply_context(session.connection())
        yield ctx
        session.flush()  # only on success: a flush after an error would hide it
    if previous is not None:
        _forget_other_tenants(session, previous)
    apply_context(session.connection())


# --- provisioning -------------------------------------------------------------------


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: Tenant
    admin: User
    password: str | None  # set only when generated here, to show once


def create_tenant(
    session: Session,
    *,
    slug: str,
    name: str,
    base_currency: str,
    admin_email: str,
    admin_password: str | None = None,
    admin_name: str = "",
) -> ProvisionedTenant:
    """Create a tenant and its first owner, all or nothing.

    The owner is an existing user (matched by email, case-insensitively) or a new
    one; a new user without a given password gets a generated one, returned once.
    """
    slug = validate_slug(slug)
    name = (name or "").strip()
    if not name:
        raise TenancyError("the tenant needs a name", "name")
    base_currency = _currency(base_currency)
    admin_email = validate_email(admin_email)
    if find_tenant_by_slug(session, slug):
        raise TenancyError(f"a tenant with slug {slug!r} already exists", "slug")

    tenant = Tenant(slug=slug, name=name, base_currency=base_currency, status="active")
    session.add(tenant)
    session.flush()
    user, generated = _get_or_create_user(session, admin_email, admin_password, admin_name)
    with provisioning_scope(session, tenant):
        session.add(Membership(tenant_id=tenant.id, user_id=user.id, roles=["owner"]))
        session.flush()
        # Domain seeding (chart of accounts, default stages, ...) joins here, inside
        # the same transaction, as those domains land.
        for seed in TENANT_SEEDERS:
            seed(session, tenant)
    session.flush()
    return ProvisionedTenant(tenant, user, generated)


# Functions called with (session, tenant) inside provisioning_scope when a tenant is
# created. Domains append theirs at import time.
TENANT_SEEDERS: list[Callable[[Session, Tenant], None]] = []


def _get_or_create_user(
    session: Session, email: str, password: str | None, full_name: str
) -> tuple[User, str | None]:
    user = find_user_by_email(session, email)
    if user is not None:
        return user, None
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(12)
    user = User(email=email, full_name=full_name.strip(), password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user, generated


def add_member(
    session: Session,
    tenant: Tenant,
    *,
    email: str,
    roles: list[str] | tuple[str, ...],
    password: str | None = None,
    full_name: str = "",
) -> tuple[Membership, User, str | None]:
    """Give a user (existing or new) a membership in ``tenant``."""
    email = validate_email(email)
    clean_roles = _roles(roles)
    user, generated = _get_or_create_user(session, email, password, full_name)
    if membership_of(session, tenant.id, user.id) is not None:
        raise TenancyError(f"{email} is already a member of {tenant.slug}", "email")
    membership = Membership(tenant_id=tenant.id, user_id=user.id, roles=clean_roles)
    with acting_in(session, tenant):
        session.add(membership)
        session.flush()
        _security_event(session, tenant, "member.added", membership, roles=clean_roles)
    return membership, user, generated


def _security_event(session: Session, tenant: Tenant, kind: str, membership: Membership,
                    **detail: object) -> None:
    """File a membership change in the tenant's security log: the actor is the
    context's user (None from the CLI), the member is ``target_user_id``."""
    from app.auth import security_log

    ctx = current_context()
    security_log.record(session, kind, tenant_id=tenant.id,
                        user_id=ctx.user_id if ctx else None,
                        detail={"membership_id": str(membership.id),
                                "target_user_id": str(membership.user_id), **detail})


class NoSuchMember(TenancyError):
    """The membership is not in this tenant (callers answer 404)."""


def _locked_membership(session: Session, tenant: Tenant, membership_id: uuid.UUID
                       ) -> Membership:
    membership = session.scalar(
        select(Membership)
        .where(Membership.tenant_id == tenant.id, Membership.id == membership_id)
        .with_for_update()
    )
    if membership is None:
        raise NoSuchMember("no such member", "membership")
    return membership


def change_member_roles(
    session: Session, tenant: Tenant, membership_id: uuid.UUID, roles: list[str]
) -> Membership:
    """Set a member's roles; the tenant always keeps at least one active owner."""
    clean_roles = _roles(roles)
    membership = _locked_membership(session, tenant, membership_id)
    if "owner" in membership.roles and "owner" not in clean_roles:
        _require_another_owner(session, tenant, membership)
    before = list(membership.roles)
    with acting_in(session, tenant):
        membership.roles = clean_roles
        session.flush()
        if before != clean_roles:
            _security_event(session, tenant, "member.roles_changed", membership,
                            before=before, after=clean_roles)
    return membership


def set_member_active(
    session: Session, tenant: Tenant, membership_id: uuid.UUID, active: bool
) -> Membership:
    membership = _locked_membership(session, tenant, membership_id)
    if not active and "owner" in membership.roles:
        _require_another_owner(session, tenant, membership)
    changed = membership.is_active != active
    with acting_in(session, tenant):
        membership.is_active = active
        session.flush()
        if changed:
            _security_event(session, tenant, "member.enabled" if active else "member.disabled",
                            membership)
    return membership


def _require_another_owner(session: Session, tenant: Tenant, membership: Membership) -> None:
    # Lock every owner row of the tenant so two admins demoting the last two
    # owners at once cannot both succeed.
    owners = session.scalars(
        select(Membership.id)
        .where(
            Membership.tenant_id == tenant.id,
            Membership.is_active.is_(True),
            Membership.roles.contains(["owner"]),
        )
        .with_for_update()
    ).all()
    if [o for o in owners if o != membership.id] == []:
        raise TenancyError("a tenant must keep at least one active owner", "roles")


def update_tenant(session: Session, tenant: Tenant, *, name: str, base_currency: str) -> Tenant:
    name = (name or "").strip()
    if not name:
        raise TenancyError("the tenant needs a name", "name")
    tenant.name = name
    tenant.base_currency = _currency(base_currency)
    session.flush()
    return tenant


# --- numbering ----------------------------------------------------------------------


def next_number(session: Session, doc_type: str, period: str = "") -> int:
    """Take the next gapless number for (current tenant, doc_type, period).

    One statement: insert the counter at 1 or, if it exists, increment it. The row
    stays locked until the caller's transaction ends, so concurrent callers queue
    and a rollback returns the number.
    """
    from .context import require_context

    ctx = require_context()
    return session.execute(
        text(
            "INSERT INTO core.document_counters (tenant_id, doc_type, period, last_value)"
            " VALUES (:t, :d, :p, 1)"
            " ON CONFLICT (tenant_id, doc_type, period)"
            " DO UPDATE SET last_value = core.document_counters.last_value + 1,"
            " updated_at = now()"
            " RETURNING last_value"
        ),
        {"t": ctx.tenant_id, "d": doc_type, "p": period},
    ).scalar_one()


def format_number(prefix: str, number: int, period: str = "", width: int = 6) -> str:
    """``INV-2026-000042``: the printed form of a gapless number."""
    parts = [prefix, period, f"{number:0{width}d}"] if period else [prefix, f"{number:0{width}d}"]
    return "-".join(parts)


__all__ = [
    "TenancyError",
    "add_member",
    "authenticate",
    "bind_session_context",
    "change_member_roles",
    "context_for",
    "create_tenant",
    "find_tenant_by_slug",
    "find_user_by_email",
    "format_number",
    "hash_password",
    "memberships_of_user",
    "next_number",
    "provisioning_scope",
    "set_member_active",
    "tenant_members",
    "update_tenant",
]
