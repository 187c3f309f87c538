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

echo "== ruff"
.venv/bin/ruff check .

echo "== pytest"
# -n 2: two test processes on the two cores, each with its own database.
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
