"""Settings: every variable validated, every problem reported at once."""

from __future__ import annotations

import stat

import pytest

from app.settings import SettingsError, load_settings, sqlalchemy_url


def test_defaults(tmp_path):
    s = load_settings({"ERP_DATA_DIR": str(tmp_path)})
    assert s.embedded and s.database_url is None
    assert s.base_url == "http://127.0.0.1:5000"
    assert (s.listen_host, s.listen_port, s.https) == ("127.0.0.1", 5000, False)
    assert (s.log_level, s.log_format) == ("INFO", "text")
    assert s.broker_url is None and s.redis_url is None


def test_secret_key_generated_once_and_kept_private(tmp_path):
    first = load_settings({"ERP_DATA_DIR": str(tmp_path)}).secret_key
    second = load_settings({"ERP_DATA_DIR": str(tmp_path)}).secret_key
    assert first == second and len(first) >= 32
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_explicit_values(tmp_path):
    s = load_settings({
        "ERP_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://app:pw@db:5432/erp",
        "DATABASE_OWNER_URL": "postgresql://owner@db/erp",
        "BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SECRET_KEY": "k" * 40,
        "BASE_URL": "https://erp.example.com/",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "JSON",
    })
    assert not s.embedded
    assert sqlalchemy_url(s.database_url) == "postgresql+psycopg://app:pw@db:5432/erp"
    assert (s.listen_port, s.https, s.base_url) == (443, True, "https://erp.example.com")
    assert (s.log_level, s.log_format) == ("DEBUG", "json")


def test_every_problem_is_reported_in_one_go(tmp_path):
    with pytest.raises(SettingsError) as info:
        load_settings({
            "ERP_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "mysql://root@db/erp",
            "BROKER_URL": "kafka://x",
            "SECRET_KEY": "short",
            "BASE_URL": "ftp://x",
            "LOG_LEVEL": "loud",
            "LOG_FORMAT": "xml",
            "REDIS_URL": "http://cache",
        })
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "DATABASE_URL", "BROKER_URL", "REDIS_URL", "BASE_URL", "LOG_LEVEL", "LOG_FORMAT",
        "SECRET_KEY",
    ]
    assert "must be a PostgreSQL URL" in problems[0]
    assert "at least 32 characters" in problems[-1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "postgresql://host/db"}, "must name the database user"),
        ({"DATABASE_URL": "postgresql://u@host/"}, "must name the database"),
        ({"DATABASE_OWNER_URL": "postgresql://o@h/db"}, "DATABASE_URL is not"),
        ({"BASE_URL": "http://host:notaport"}, "invalid port"),
        ({"ERP_PROXY_HOPS": "many"}, "number of proxies"),
    ],
)
def test_specific_messages(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings({"ERP_DATA_DIR": str(tmp_path), **env})
