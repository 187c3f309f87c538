"""Roles and the named permissions they grant.

Views and services check permissions (``deals:write``), never role names, so a
tenant's roles can be re-cut later without touching code that checks access.
Each business domain adds its permissions here as it lands; the roles below are
the fixed set a membership can hold.
"""

from __future__ import annotations

from collections.abc import Iterable

ROLES: tuple[str, ...] = ("owner", "admin", "sales", "finance", "warehouse", "hr", "viewer")

ROLE_LABELS = {
    "owner": "Owner",
    "admin": "Administrator",
    "sales": "Sales",
    "finance": "Finance",
    "warehouse": "Warehouse",
    "hr": "Human resources",
    "viewer": "Viewer (read only)",
}

# Every permission the product knows, with what it allows. Grouped by area.
PERMISSIONS: dict[str, str] = {
    "tenant:read": "See the tenant's settings and members",
    "tenant:write": "Change the tenant's name, base currency and settings",
    "members:write": "Invite members and change their roles",
    "crm:read": "See accounts, contacts, leads and tickets",
    "crm:write": "Create and change accounts, contacts, leads and tickets",
    "deals:read": "See deals and the pipeline",
    "deals:write": "Create deals and move them between stages",
    "sales:read": "See quotes and sales orders",
    "sales:write": "Create quotes and sales orders",
    "inventory:read": "See products, warehouses and stock",
    "inventory:write": "Change products and record stock moves",
    "purchasing:read": "See suppliers and purchase orders",
    "purchasing:write": "Create purchase orders and receive goods",
    "purchasing:approve": "Approve purchase orders",
    "ledger:read": "See the chart of accounts, journal and reports",
    "ledger:post": "Post journal entries",
    "ledger:close": "Close accounting periods",
    "invoices:read": "See invoices and payments",
    "invoices:post": "Issue invoices and credit notes",
    "payments:write": "Record and allocate payments",
    "hr:read": "See employees, shifts and machinery logs",
    "hr:write": "Change employees, shifts and machinery logs",
    "reports:read": "See analytics reports",
    "exceptions:read": "See work that needs a person (the exceptions queue)",
    "exceptions:retry": "Retry work from the exceptions queue",
    "webhooks:manage": "Configure outbound webhooks and replay deliveries",
    "tokens:manage": "See and revoke every member's API tokens",
    "security:read": "Read the security log (sign-ins, role changes, API clients)",
}

# Read-only users see the business, not who signed in from where: the security log
# is for owners and admins.
_READ_ALL = {p for p in PERMISSIONS if p.endswith(":read")} - {"security:read"}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset(PERMISSIONS),
    "admin": frozenset(PERMISSIONS),
    "sales": frozenset(
        {"tenant:read", "crm:read", "crm:write", "deals:read", "deals:write",
         "sales:read", "sales:write", "inventory:read", "invoices:read", "reports:read",
         "exceptions:read"}
    ),
    "finance": frozenset(
        {"tenant:read", "crm:read", "deals:read", "sales:read", "inventory:read",
         "purchasing:read", "purchasing:approve", "ledger:read", "ledger:post",
         "ledger:close", "invoices:read", "invoices:post", "payments:write", "reports:read",
         "exceptions:read", "exceptions:retry"}
    ),
    "warehouse": frozenset(
        {"tenant:read", "inventory:read", "inventory:write", "purchasing:read",
         "purchasing:write", "sales:read", "exceptions:read", "exceptions:retry"}
    ),
    "hr": frozenset({"tenant:read", "hr:read", "hr:write"}),
    "viewer": frozenset(_READ_ALL),
}


class UnknownRole(ValueError):
    pass


def validate_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Return the roles sorted and de-duplicated, or raise naming the unknown one."""
    clean = sorted({r.strip().lower() for r in roles if r.strip()})
    for role in clean:
        if role not in ROLES:
            raise UnknownRole(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
    if not clean:
        raise UnknownRole("a membership needs at least one role")
    return tuple(clean)


def permissions_for(roles: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)
