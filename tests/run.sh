#!/usr/bin/env bash
# The README's test command: installs everything the suite needs, then runs it.
# Works on a fresh machine with Python 3.11+; CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

# The browser tests (tests/e2e) drive Debian's chromium through Playwright; Playwright's
# own browser download is not used. CI runs as root without a terminal.
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (apt-get)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

echo "== ruff"
.venv/bin/ruff check .

echo "== pytest"
# -n 2: two test processes on the two cores, each with its own database.
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
