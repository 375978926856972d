#!/usr/bin/env bash
# Main job on the embedded default, as production runs: Airflow's scheduler, dag-processor
# and UI (http://127.0.0.1:8080/, SQLite metadata database) publish the sample communes'
# datasets, then every deposit; the catalog on http://127.0.0.1:8000/. It prints the logins,
# API tokens and a ready upload command; Ctrl+C stops everything. Options: opendata demo -h.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/opendata demo "$@"
