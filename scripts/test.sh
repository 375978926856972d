#!/usr/bin/env bash
# The whole test suite (real Airflow, SQLite, HTTP server), then the linters (code, imports).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/python -m pytest --durations=20 "$@"
.venv/bin/ruff check .
.venv/bin/lint-imports
