"""``erp``: everything an operator does, as one click group.

Each command loads and validates the settings first; a bad variable prints one
clear line per problem and exits with status 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from .settings import Settings, SettingsError, load_settings

DEMO_SLUG = "demo"
DEMO_EMAIL = "admin@demo.example.com"


def _fail(message: str, code: int = 2) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def with_settings(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Load settings (and the embedded server if needed) before the command runs."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .database import DatabaseSetupError, resolve_databases

        try:
            settings = resolve_databases(load_settings())
            return fn(settings, *args, **kwargs)
        except SettingsError as exc:
            for problem in exc.problems:
                click.secho(f"configuration error: {problem}", fg="red", err=True)
            sys.exit(2)
        except DatabaseSetupError as exc:
            _fail(str(exc))

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Multi-tenant ERP/CRM: operator commands."""


# --- database -----------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database roles and migrations."""


@db.command("upgrade", short_help="Create roles, migrate, grant privileges.")
@click.argument("revision", default="heads")
@with_settings
def db_upgrade(settings: Settings, revision: str) -> None:
    """Create missing roles, migrate to REVISION (default: heads), grant privileges."""
    from .database import upgrade
    from .logs import init_logging

    init_logging(settings.log_level, settings.log_format)
    upgrade(settings, revision)
    click.echo(f"database is at {revision}")


@db.command("downgrade", short_help="Migrate down to REVISION.")
@click.argument("revision")
@with_settings
def db_downgrade(settings: Settings, revision: str) -> None:
    """Migrate down to REVISION (e.g. -1, base, or a revision id)."""
    from .database import downgrade

    downgrade(settings, revision)
    click.echo(f"database downgraded to {revision}")


@db.command("current", short_help="Show the revision and whether it is head.")
@with_settings
def db_current(settings: Settings) -> None:
    """Show the revision(s) the database is at and whether that is head."""
    from .database import current, script_heads

    applied = set(current(settings))
    heads = script_heads()
    state = "(head)" if applied == heads else f"(behind; head is {', '.join(sorted(heads))})"
    click.echo(f"{', '.join(sorted(applied)) or '<none>'} {state}")


@db.command("check", short_help="Check tenancy rules on the live schema.")
@with_settings
def db_check(settings: Settings) -> None:
    """Check the live schema and roles against the tenancy rules (exit 1 on findings)."""
    import psycopg

    from tenants.catalog import audit_problems, catalog_problems
    from tenants.globals import AUDITED_SCHEMAS, GLOBAL_TABLES, TENANT_SCHEMAS, UNAUDITED_TABLES

    from .database import runtime_roles
    from .settings import libpq_url

    app_role, analytics_role = runtime_roles(settings)
    with psycopg.connect(libpq_url(settings.database_url or "")) as conn:
        problems = catalog_problems(conn, TENANT_SCHEMAS, GLOBAL_TABLES,
                                    [app_role.name, analytics_role.name])
        problems += audit_problems(conn, AUDITED_SCHEMAS, UNAUDITED_TABLES)
    for problem in problems:
        click.secho(problem, fg="red")
    if problems:
        sys.exit(1)
    click.echo("tenancy rules hold: every tenant table is fenced, runtime roles are safe")


# --- tenants and users -----------------------------------------------------------------


@contextmanager
def _app_context(settings: Settings) -> Iterator[Any]:
    """An app context for one command; its connections are closed at the end."""
    from . import create_app
    from .db import db as database

    app = create_app(settings)
    with app.app_context() as ctx:
        try:
            yield ctx
        finally:
            database.session.remove()
            database.engine.dispose()


@main.group()
def tenant() -> None:
    """Create and list tenants."""


@tenant.command("create", short_help="Create a tenant with its first owner.")
@click.argument("slug")
@click.option("--name", required=True, help="Company name shown in the portal.")
@click.option("--admin-email", required=True, help="Email of the tenant's first owner.")
@click.option("--admin-password", help="Password for a new owner (generated if omitted).")
@click.option("--admin-name", default="", help="Full name of the owner.")
@click.option("--currency", "base_currency", default="EUR", show_default=True,
              help="Base currency (ISO 4217).")
@with_settings
def tenant_create(settings: Settings, slug: str, name: str, admin_email: str,
                  admin_password: str | None, admin_name: str, base_currency: str) -> None:
    """Create tenant SLUG with its first owner."""
    from tenants import services

    from .db import db as database

    with _app_context(settings):
        try:
            result = services.create_tenant(
                database.session, slug=slug, name=name, base_currency=base_currency,
                admin_email=admin_email, admin_password=admin_password, admin_name=admin_name,
            )
            database.session.commit()
        except services.TenancyError as exc:
            database.session.rollback()
            _fail(str(exc))
        click.echo(f"created tenant {result.tenant.slug} ({result.tenant.name})")
        click.echo(f"portal: {settings.base_url}/t/{result.tenant.slug}/")
        click.echo(f"owner: {result.admin.email}")
        if result.password:
            click.echo(f"password: {result.password}  (generated; shown once)")


@tenant.command("list", short_help="List tenants, status and members.")
@with_settings
def tenant_list(settings: Settings) -> None:
    """List tenants with their status and member count."""
    from sqlalchemy import func, select

    from tenants.models import Membership, Tenant

    from .db import db as database

    with _app_context(settings):
        rows = database.session.execute(
            select(Tenant.slug, Tenant.name, Tenant.base_currency, Tenant.status,
                   func.count(Membership.id))
            .outerjoin(Membership, Membership.tenant_id == Tenant.id)
            .group_by(Tenant.id)
            .order_by(Tenant.slug)
        ).all()
    if not rows:
        click.echo("no tenants yet: erp tenant create SLUG --name ... --admin-email ...")
    for slug, name, currency, status, members in rows:
        click.echo(f"{slug:<24} {currency}  {status:<9} {members:>4} members  {name}")


@main.group()
def user() -> None:
    """Manage users and memberships."""


@user.command("add", short_help="Add a user to a tenant with roles.")
@click.argument("email")
@click.option("--tenant", "slug", required=True, help="Tenant slug to add the user to.")
@click.option("--role", "roles", multiple=True, default=("viewer",), show_default=True,
              help="Role in the tenant; repeat for several.")
@click.option("--password", help="Password for a new user (generated if omitted).")
@click.option("--name", "full_name", default="", help="Full name.")
@with_settings
def user_add(settings: Settings, email: str, slug: str, roles: tuple[str, ...],
             password: str | None, full_name: str) -> None:
    """Add EMAIL (new or existing user) to a tenant with the given roles."""
    from tenants import services

    from .db import db as database

    with _app_context(settings):
        tenant_row = services.find_tenant_by_slug(database.session, slug)
        if tenant_row is None:
            _fail(f"no tenant with slug {slug!r} (see: erp tenant list)")
        try:
            membership, member, generated = services.add_member(
                database.session, tenant_row, email=email, roles=list(roles),
                password=password, full_name=full_name,
            )
            database.session.commit()
        except services.TenancyError as exc:
            database.session.rollback()
            _fail(str(exc))
        click.echo(f"added {member.email} to {slug} as {', '.join(membership.roles)}")
        if generated:
            click.echo(f"password: {generated}  (generated; shown once)")


# --- workers and events --------------------------------------------------------------------


@main.command(short_help="Run event consumers and the outbox relay.")
@click.option("--threads", default=4, show_default=True, help="Consumer threads per process.")
@click.option("--no-relay", is_flag=True, help="Do not run the outbox relay in this process.")
@click.option("--metrics-port", type=int, help="Serve this process's /metrics on 127.0.0.1.")
@with_settings
def worker(settings: Settings, threads: int, no_relay: bool, metrics_port: int | None) -> None:
    """Run background workers: event consumers and the outbox relay."""
    from workers.runtime import run

    from .logs import init_logging

    init_logging(settings.log_level, settings.log_format)
    run(settings, threads=threads, relay=not no_relay, metrics_port=metrics_port)


@main.group()
def events() -> None:
    """Inspect and replay the event store (outbox)."""


@events.command("replay", short_help="Re-drive consumers with past events.")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--since", required=True, type=click.DateTime(),
              help="Replay events created at or after this time (UTC).")
@click.option("--type", "event_types", multiple=True, help="Only this event type (repeatable).")
@with_settings
def events_replay(settings: Settings, slug: str, since: Any, event_types: tuple[str, ...]) -> None:
    """Re-drive consumers with a tenant's events; consumers skip what they already did."""
    import datetime as dt

    from app.events import services as event_services
    from tenants import services
    from tenants.context import TenantContext, tenant_scope

    from .db import db as database

    with _app_context(settings):
        found = services.find_tenant_by_slug(database.session, slug)
        if found is None:
            _fail(f"no tenant with slug {slug!r} (see: erp tenant list)")
        database.session.commit()
        since_utc = since.replace(tzinfo=dt.UTC) if since.tzinfo is None else since
        with tenant_scope(TenantContext(tenant_id=found.id, tenant_slug=found.slug)):
            count = event_services.replay(database.session, since_utc, list(event_types) or None)
            database.session.commit()
    click.echo(f"queued {count} events of {slug} for redelivery")


@main.group()
def token() -> None:
    """Mint per-user API tokens."""


@token.command("create", short_help="Mint an API token for a member.")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--user", "email", required=True, help="Email of a member of that tenant.")
@click.option("--name", default="cli", show_default=True, help="What will use the token.")
@click.option("--scopes", default="",
              help='Limit the token to these scopes, e.g. "crm:read" (default: all of the '
                   "user's permissions).")
@with_settings
def token_create(settings: Settings, slug: str, email: str, name: str, scopes: str) -> None:
    """Create an API token acting as USER in TENANT; prints only the token."""
    from app.api import tokens
    from tenants import services
    from tenants.context import tenant_scope

    from .db import db as database

    with _app_context(settings):
        ctx = _tenant_ctx(slug)
        found = services.find_user_by_email(database.session, email)
        membership = (services.membership_of(database.session, ctx.tenant_id, found.id)
                      if found else None)
        if membership is None or not membership.is_active:
            _fail(f"{email} is not an active member of {slug}")
        database.session.commit()
        with tenant_scope(ctx):
            try:
                _, value = tokens.create_token(database.session, found.id, name, scopes)
            except tokens.TokenError as exc:
                _fail(str(exc))
            database.session.commit()
    click.echo(value)


@main.group("api-client")
def api_client() -> None:
    """Create OAuth API clients of a tenant."""


@api_client.command("create", short_help="Create an OAuth API client; prints JSON.")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--scopes", required=True,
              help='Space-separated scopes (permission names), e.g. "crm:read crm:write".')
@click.option("--name", default="cli", show_default=True, help="What will use the client.")
@with_settings
def api_client_create(settings: Settings, slug: str, scopes: str, name: str) -> None:
    """Create a client of TENANT and print its id and secret (shown only now) as JSON.

    The operator acts as the platform: any scope may be granted (the ceiling is the
    owner role, which holds every permission).
    """
    from app.oauth import services as oauth
    from tenants.context import tenant_scope
    from tenants.permissions import permissions_for

    from .db import db as database

    with _app_context(settings):
        ctx = _tenant_ctx(slug)
        with tenant_scope(ctx):
            try:
                client, secret = oauth.create_client(
                    database.session, name=name, scopes=scopes, created_by=None,
                    ceiling=permissions_for(["owner"]))
            except oauth.OAuthClientError as exc:
                _fail(str(exc))
            out = {"client_id": client.client_id, "client_secret": secret,
                   "name": client.name, "scopes": list(client.scopes), "tenant": slug,
                   "token_endpoint": f"{settings.base_url}/oauth/token"}
            database.session.commit()
    click.echo(json.dumps(out))


@main.group()
def audit() -> None:
    """Verify the tamper-evident audit trail."""


def _tenant_ctx(slug: str) -> Any:
    from tenants import services
    from tenants.context import TenantContext

    from .db import db as database

    found = services.find_tenant_by_slug(database.session, slug)
    if found is None:
        _fail(f"no tenant with slug {slug!r} (see: erp tenant list)")
    database.session.commit()
    return TenantContext(tenant_id=found.id, tenant_slug=found.slug)


@audit.command("verify", short_help="Verify a tenant's audit hash chain.")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--seal", "seal_first", is_flag=True, help="Seal pending rows before verifying.")
@with_settings
def audit_verify(settings: Settings, slug: str, seal_first: bool) -> None:
    """Recompute a tenant's audit hash chain; exit 1 if it was tampered with."""
    from app.audit import services as audit_services
    from tenants.context import tenant_scope

    from .db import db as database

    with _app_context(settings), tenant_scope(_tenant_ctx(slug)):
        if seal_first:
            while audit_services.seal(database.session):
                database.session.commit()
            database.session.commit()
        result = audit_services.verify(database.session)
        database.session.rollback()
    if not result.ok:
        click.secho(f"TAMPERED: seal {result.broken_at} (log row {result.broken_log_id}) does "
                    f"not match; {result.sealed} seals before it verify", fg="red")
        sys.exit(1)
    click.echo(f"audit chain of {slug} verifies: {result.sealed} sealed entries, "
               f"{result.unsealed} not sealed yet")


# --- running ------------------------------------------------------------------------------


def _demo_login(settings: Settings) -> tuple[str, str, bool]:
    """Create the demo tenant when there is no tenant at all; return its login.

    The generated demo password is kept in ERP_DATA_DIR/demo-login.json (mode 600)
    so ``erp up`` can print it at every start of a local install.
    """
    from sqlalchemy import select

    from tenants import services
    from tenants.models import Tenant

    from .db import db as database

    path = Path(settings.data_dir) / "demo-login.json"
    created = False
    with _app_context(settings):
        any_tenant = database.session.scalar(select(Tenant.id).limit(1))
        if any_tenant is None:
            password = secrets.token_urlsafe(12)
            services.create_tenant(
                database.session, slug=DEMO_SLUG, name="Demo Company", base_currency="EUR",
                admin_email=DEMO_EMAIL, admin_password=password, admin_name="Demo Admin",
            )
            database.session.commit()
            path.write_text(json.dumps({"email": DEMO_EMAIL, "password": password}))
            path.chmod(0o600)
            created = True
    if path.exists():
        saved = json.loads(path.read_text())
        return saved["email"], saved["password"], created
    return "", "", created


def _exit_on_sigterm() -> None:
    """Turn SIGTERM (systemd, docker stop) into a normal exit, so finally blocks and
    atexit handlers run: workers finish, the embedded PostgreSQL is stopped."""
    import signal

    def _exit(signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _exit)


def _serve(settings: Settings, threads: int) -> None:
    from waitress import serve

    from . import create_app

    _exit_on_sigterm()
    app = create_app(settings)
    serve(app, host=settings.listen_host, port=settings.listen_port, threads=threads,
          ident="erp")


@main.command(short_help="Run it all locally: database to web portal.")
@click.option("--threads", default=8, show_default=True, help="Web worker threads.")
@with_settings
def up(settings: Settings, threads: int) -> None:
    """Run everything locally: database (embedded unless DATABASE_URL is set),
    migrations, a demo tenant if there is none, a worker and the web portal."""
    from .database import upgrade
    from .logs import init_logging

    init_logging(settings.log_level, settings.log_format)
    upgrade(settings)
    email, password, created = _demo_login(settings)
    click.secho("\nERP is up", fg="green", bold=True)
    click.echo(f"  portal:   {settings.base_url}/login")
    if email:
        click.echo(f"  login:    {email}")
        click.echo(f"  password: {password}")
        if created:
            click.echo("  (demo tenant 'demo' created on this first start)")
    if settings.embedded:
        click.echo(f"  database: embedded PostgreSQL in {settings.data_dir / 'pgdata'}")
    click.echo("  worker:   consumers and outbox relay running beside the web server")
    click.echo("  stop with Ctrl-C\n")
    from workers.runtime import start

    runtime = start(settings, threads=2)
    try:
        _serve(settings, threads)
    finally:
        runtime.stop()


@main.command(short_help="Serve the web portal and API only.")
@click.option("--threads", default=8, show_default=True, help="Web worker threads.")
@with_settings
def serve(settings: Settings, threads: int) -> None:
    """Serve the web portal and API (no migrations; see `erp up`)."""
    _serve(settings, threads)


@main.command("check-settings", short_help="Validate and print the settings.")
def check_settings() -> None:
    """Validate the environment and print the effective settings (secrets hidden)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        for problem in exc.problems:
            click.secho(f"configuration error: {problem}", fg="red", err=True)
        sys.exit(2)
    for name, value in (
        ("ERP_DATA_DIR", settings.data_dir),
        ("DATABASE_URL", _hide(settings.database_url) or "(embedded PostgreSQL)"),
        ("DATABASE_OWNER_URL", _hide(settings.database_owner_url) or "(embedded)"),
        ("BROKER_URL", settings.broker_url or "(PostgreSQL)"),
        ("BASE_URL", settings.base_url),
        ("LOG_LEVEL", settings.log_level),
        ("LOG_FORMAT", settings.log_format),
    ):
        click.echo(f"{name:<20} {value}")


def _hide(url: str | None) -> str | None:
    if not url:
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
