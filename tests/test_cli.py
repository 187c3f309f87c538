"""The ``erp`` command line, against the test database and, for ``erp up``, for real."""

from __future__ import annotations

import http.cookiejar
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from app.cli import main


@pytest.fixture
def env(database, tmp_path) -> dict[str, str]:
    return {
        "DATABASE_URL": database.app_url,
        "DATABASE_OWNER_URL": database.owner_url,
        "DATABASE_ANALYTICS_URL": database.analytics_url,
        "ERP_DATA_DIR": str(tmp_path),
        "SECRET_KEY": "s" * 40,
        "LOG_LEVEL": "WARNING",
    }


def run(env: dict[str, str], *args: str):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, cmd in group.commands.items():
        found.append((f"{prefix}{name}", cmd))
        if isinstance(cmd, click.Group):
            found.extend(_commands(cmd, f"{prefix}{name} "))
    return found


def test_help_lists_every_command_with_one_line():
    top = CliRunner().invoke(main, ["--help"]).output
    for path, cmd in _commands(main):
        line = cmd.get_short_help_str()
        assert line, f"erp {path} has no help line"
        assert not line.endswith("..."), f"erp {path}: help line is cut: {line}"
        if " " not in path:
            assert re.search(rf"^\s+{path}\s+\S", top, re.MULTILINE), path
        else:
            group, _, name = path.rpartition(" ")
            sub = CliRunner().invoke(main, [*group.split(), "--help"]).output
            assert re.search(rf"^\s+{name}\s+\S", sub, re.MULTILINE), path


def test_db_upgrade_is_idempotent_and_current_is_head(env):
    assert run(env, "db", "upgrade").exit_code == 0
    result = run(env, "db", "current")
    assert result.exit_code == 0 and result.output.strip().endswith("(head)")


def test_db_check_passes(env):
    result = run(env, "db", "check")
    assert result.exit_code == 0, result.output
    assert "tenancy rules hold" in result.output


def test_tenant_create_list_and_user_add(env):
    slug = f"cli-{secrets.token_hex(3)}"
    result = run(env, "tenant", "create", slug, "--name", "CLI Co", "--admin-email",
                 f"boss@{slug}.example.com", "--currency", "usd")
    assert result.exit_code == 0, result.output
    assert f"created tenant {slug} (CLI Co)" in result.output
    assert re.search(r"^password: \S{12,}  \(generated; shown once\)$", result.output, re.M)

    listing = run(env, "tenant", "list").output
    assert re.search(rf"^{slug}\s+USD\s+active\s+1 members\s+CLI Co$", listing, re.M)

    added = run(env, "user", "add", f"Sales@{slug}.example.com", "--tenant", slug,
                "--role", "sales", "--role", "viewer", "--password", "long enough pw")
    assert added.exit_code == 0, added.output
    assert f"added Sales@{slug}.example.com to {slug} as sales, viewer" in added.output
    assert "password:" not in added.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tenant", "create", "x", "--name", "X", "--admin-email", "a@b.example.com"],
         "the slug must be 3-40 characters"),
        (["tenant", "create", "okay-slug", "--name", "X", "--admin-email", "nope"],
         "is not a valid email address"),
        (["tenant", "create", "okay-slug", "--name", "X", "--admin-email", "a@b.example.com",
          "--currency", "ABC"], "not an ISO 4217 currency code"),
        (["user", "add", "a@b.example.com", "--tenant", "no-such-tenant"],
         "no tenant with slug 'no-such-tenant'"),
    ],
)
def test_cli_errors_are_one_clear_line(env, args, message):
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_settings_are_reported_without_traceback(env):
    result = CliRunner().invoke(main, ["db", "current"],
                                env={**env, "DATABASE_URL": "mysql://x@y/z", "LOG_FORMAT": "xml"})
    assert result.exit_code == 2
    assert "configuration error: DATABASE_URL:" in result.output
    assert "configuration error: LOG_FORMAT:" in result.output
    assert "Traceback" not in result.output


# --- the README's run command, for real --------------------------------------------------


def _read_until(proc: subprocess.Popen, marker: str, timeout: float) -> str:
    """Read a child's output until ``marker`` appears; fail if it exits or stalls."""
    output = ""
    deadline = time.monotonic() + timeout
    while marker not in output:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            pytest.fail(f"{proc.args[1:3]} exited early:\n{output}")
        output += line
        assert time.monotonic() < deadline, output
    return output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_erp_up_serves_the_portal_and_the_printed_login_works(tmp_path, stop_signal):
    """``erp up`` on an empty data folder: embedded PostgreSQL, migrations, demo
    tenant, web portal; the login it prints signs in; Ctrl-C or SIGTERM stops the
    embedded database cleanly."""
    port = _free_port()
    data = tmp_path / "var"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "BROKER_", "REDIS_"))}
    env.update(ERP_DATA_DIR=str(data), BASE_URL=f"http://127.0.0.1:{port}", LOG_LEVEL="WARNING")
    erp = Path(sys.executable).with_name("erp")
    proc = subprocess.Popen([str(erp), "up", "--threads", "4"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = ""
    try:
        output = _read_until(proc, "stop with Ctrl-C", 90)
        email = re.search(r"login:\s+(\S+)", output).group(1)
        password = re.search(r"password:\s+(\S+)", output).group(1)
        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        for _ in range(300):  # generous: CI machines are busy
            try:
                ready = opener.open(f"{base}/readyz", timeout=5)
                break
            except OSError:
                time.sleep(0.1)
        assert ready.status == 200
        page = opener.open(f"{base}/login", timeout=5).read().decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"email": email, "password": password,
                                       "csrf_token": token}).encode()
        landed = opener.open(f"{base}/login", data=body, timeout=5)
        assert landed.url == f"{base}/t/demo/"
        assert "<h1>Demo Company</h1>" in landed.read().decode()
        assert (data / "pgdata" / "postmaster.pid").exists()
        # a second process reuses the running embedded server, and its exit does not
        # stop the server under the first one
        listing = subprocess.run([str(erp), "tenant", "list"], env=env, text=True,
                                 capture_output=True, timeout=120)
        assert listing.returncode == 0, listing.stderr
        assert re.search(r"^demo\s+EUR\s+active\s+1 members\s+Demo Company$",
                         listing.stdout, re.M)
        assert opener.open(f"{base}/readyz", timeout=5).status == 200
    finally:
        proc.send_signal(stop_signal)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        output += rest or ""
    # the embedded server is stopped cleanly on exit
    for _ in range(300):
        if not (data / "pgdata" / "postmaster.pid").exists():
            break
        time.sleep(0.1)
    assert not (data / "pgdata" / "postmaster.pid").exists(), (
        f"embedded PostgreSQL still running; erp up said:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]


def test_events_replay_queues_the_tenants_events(env, app):
    from app.db import db
    from app.events.services import publish
    from tenants.context import tenant_scope

    from .conftest import make_tenant

    with app.app_context():
        t = make_tenant(db.session, f"replay-{secrets.token_hex(3)}")
        db.session.commit()
        with tenant_scope(t.ctx):
            publish(db.session, "test.replayed", {"n": 1})
            publish(db.session, "test.other", {"n": 2})
            db.session.commit()
        db.session.remove()
    result = run(env, "events", "replay", "--tenant", t.slug, "--since", "2000-01-01",
                 "--type", "test.replayed")
    assert result.exit_code == 0, result.output
    assert f"queued 1 events of {t.slug} for redelivery" in result.output
    missing = CliRunner().invoke(main, ["events", "replay", "--tenant", "nope-nope",
                                        "--since", "2000-01-01"], env=env)
    assert missing.exit_code == 2 and "no tenant with slug 'nope-nope'" in missing.output


def test_erp_worker_starts_and_stops_on_sigterm(env, tmp_path):
    prefix = f"t{secrets.token_hex(4)}"
    erp = Path(sys.executable).with_name("erp")
    metrics_port = _free_port()
    proc = subprocess.Popen([str(erp), "worker", "--threads", "1",
                             "--metrics-port", str(metrics_port)],
                            env={**os.environ, **env, "ERP_QUEUE_PREFIX": prefix,
                                 "LOG_LEVEL": "INFO"},
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output = _read_until(proc, "worker started", 60)
        assert f"queue {prefix}_events, relay on" in output
        for _ in range(50):
            try:
                scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                                 timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "# TYPE erp_outbox_backlog gauge" in scraped
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
