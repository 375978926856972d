#!/usr/bin/env bash
# Main job on the embedded default: publish the sample communes' datasets through their
# Airflow DAGs (SQLite metadata database), then serve the catalog on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/opendata demo "$@"
