"""Settings: the one module that reads ``os.environ``.

Every variable has a coercer that turns the raw string into a typed value or a
message saying what is wrong. All messages are collected, so an operator who got
three things wrong hears about all three at once, as plain sentences rather than
a traceback (``SettingsError`` is caught by the CLI and printed).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


class SettingsError(Exception):
    """Raised with one line per invalid variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Typed, validated configuration. Build it with :func:`load_settings`."""

    data_dir: Path
    database_url: str | None  # app role; None means "start the embedded server"
    database_owner_url: str | None  # migrations
    database_analytics_url: str | None  # read-only analytics role
    broker_url: str | None
    redis_url: str | None
    secret_key: str
    base_url: str
    queue_prefix: str = "erp"
    # Bearer token for /metrics; unset means only loopback clients may read it.
    metrics_token: str | None = None
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted.
    proxy_hops: int = 0
    # Webhook endpoints on loopback/private networks are refused (SSRF) unless set.
    webhooks_allow_private: bool = False
    # Lifetime of OAuth access tokens issued to API clients (client credentials).
    oauth_token_minutes: int = 10
    log_level: str = "INFO"
    log_format: str = "text"
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        """True when no DATABASE_URL was given and the app runs its own PostgreSQL."""
        return self.database_url is None

    @property
    def listen_host(self) -> str:
        return urlsplit(self.base_url).hostname or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        parts = urlsplit(self.base_url)
        if parts.port:
            return parts.port
        return 443 if parts.scheme == "https" else 80

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    def with_databases(self, app: str, owner: str | None, analytics: str | None) -> Settings:
        """Copy with database URLs filled in (used once the embedded server is up)."""
        return replace(
            self,
            database_url=app,
            database_owner_url=owner,
            database_analytics_url=analytics,
        )


def sqlalchemy_url(url: str) -> str:
    """Normalise a libpq-style URL to the SQLAlchemy psycopg 3 dialect."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """Normalise any accepted database URL to what psycopg.connect() takes."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


# --- coercers: each returns a value or raises ValueError with a sentence ---------


def _database_url(name: str) -> Callable[[str], str]:
    def coerce(raw: str) -> str:
        parts = urlsplit(raw)
        if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError(
                f"{name} must be a PostgreSQL URL such as "
                f"postgresql://user:password@host:5432/dbname (got scheme {parts.scheme!r})"
            )
        if not parts.username:
            raise ValueError(f"{name} must name the database user (postgresql://USER@host/db)")
        if not parts.path.strip("/"):
            raise ValueError(f"{name} must name the database (postgresql://user@host/DBNAME)")
        return raw

    return coerce


def _broker_url(raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if raw != "postgres" and scheme not in ("amqp", "amqps", "redis", "rediss", "postgresql"):
        raise ValueError(
            "BROKER_URL must be amqp://..., redis://..., postgresql://... or 'postgres' "
            f"(got {raw!r})"
        )
    return raw


def _redis_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"REDIS_URL must be a redis:// URL (got {raw!r})")
    return raw


def _base_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"BASE_URL must look like http://host:port (got {raw!r})")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"BASE_URL has an invalid port (got {raw!r})") from None
    return raw.rstrip("/")


def _choice(name: str, options: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def coerce(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in options:
            raise ValueError(f"{name} must be one of {', '.join(options)} (got {raw!r})")
        return value

    return coerce


def _metrics_token(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("ERP_METRICS_TOKEN must be at least 16 characters")
    return raw


def _hops(raw: str) -> int:
    if not raw.isdigit() or int(raw) > 5:
        raise ValueError(f"ERP_PROXY_HOPS must be a number of proxies from 0 to 5 (got {raw!r})")
    return int(raw)


def _token_minutes(raw: str) -> int:
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 60:
        raise ValueError(f"ERP_OAUTH_TOKEN_MINUTES must be a whole number of minutes from 1 "
                         f"to 60 (got {raw!r})")
    return int(raw)


def _queue_prefix(raw: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", raw):
        raise ValueError(f"ERP_QUEUE_PREFIX must be 1-31 of a-z, 0-9, _ (got {raw!r})")
    return raw


def _secret_key(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError("SECRET_KEY must be at least 32 characters long")
    return raw


def _bool(name: str) -> Callable[[str], bool]:
    def coerce(raw: str) -> bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{name} must be true or false (got {raw!r})")

    return coerce


def _local_secret(data_dir: Path) -> str:
    """Generate SECRET_KEY once and keep it under the data folder.

    Local installs then survive restarts without logging everybody out, and nobody
    ships a default key. Production sets SECRET_KEY explicitly.
    """
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read and validate the environment; raise SettingsError listing every problem."""
    env = os.environ if environ is None else environ
    problems: list[str] = []

    def get(name: str, coerce: Callable[[str], Any], default: Any = None) -> Any:
        raw = env.get(name)
        if raw is None or raw == "":
            return default
        try:
            return coerce(raw)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            return default

    data_dir = Path(env.get("ERP_DATA_DIR") or "./var").expanduser().resolve()
    database_url = get("DATABASE_URL", _database_url("DATABASE_URL"))
    owner_url = get("DATABASE_OWNER_URL", _database_url("DATABASE_OWNER_URL"))
    analytics_url = get("DATABASE_ANALYTICS_URL", _database_url("DATABASE_ANALYTICS_URL"))
    if database_url is None and (owner_url or analytics_url):
        problems.append(
            "DATABASE_OWNER_URL/DATABASE_ANALYTICS_URL are set but DATABASE_URL is not: "
            "set DATABASE_URL too, or unset them all to use the embedded PostgreSQL"
        )
    broker_url = get("BROKER_URL", _broker_url)
    redis_url = get("REDIS_URL", _redis_url)
    base_url = get("BASE_URL", _base_url, "http://127.0.0.1:5000")
    log_level = get("LOG_LEVEL", _choice("LOG_LEVEL", LOG_LEVELS, upper=True), "INFO")
    log_format = get("LOG_FORMAT", _choice("LOG_FORMAT", LOG_FORMATS), "text")
    testing = get("ERP_TESTING", _bool("ERP_TESTING"), False)
    queue_prefix = get("ERP_QUEUE_PREFIX", _queue_prefix, "erp")
    proxy_hops = get("ERP_PROXY_HOPS", _hops, 0)
    metrics_token = get("ERP_METRICS_TOKEN", _metrics_token)
    webhooks_allow_private = get("ERP_WEBHOOKS_ALLOW_PRIVATE",
                                 _bool("ERP_WEBHOOKS_ALLOW_PRIVATE"), False)
    oauth_token_minutes = get("ERP_OAUTH_TOKEN_MINUTES", _token_minutes, 10)
    secret_key = get("SECRET_KEY", _secret_key)

    if problems:
        raise SettingsError(problems)
    if secret_key is None:
        try:
            secret_key = _local_secret(data_dir)
        except OSError as exc:
            raise SettingsError(
                [f"ERP_DATA_DIR: cannot keep a generated SECRET_KEY under {data_dir}: {exc}"]
            ) from None

    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        database_owner_url=owner_url,
        database_analytics_url=analytics_url,
        broker_url=broker_url,
        redis_url=redis_url,
        secret_key=secret_key,
        base_url=base_url,
        log_level=log_level,
        log_format=log_format,
        testing=testing,
        queue_prefix=queue_prefix,
        webhooks_allow_private=webhooks_allow_private,
        proxy_hops=proxy_hops,
        metrics_token=metrics_token,
        oauth_token_minutes=oauth_token_minutes,
    )
    return replace(settings, **overrides) if overrides else settings
