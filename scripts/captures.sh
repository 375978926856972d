#!/usr/bin/env bash
# Screenshots of the portal for the README and docs/: the browser tests of the newcomer's
# tour (tests/test_portal_tour.py, and any browser test calling tests/captures.py's
# capture()) run with OPENDATA_CAPTURES=docs/captures, and each saves the page it checks
# there (1200×800, PNG with a 256-colour palette). Extra arguments go to pytest, e.g.
# `bash scripts/captures.sh tests/test_portal_browser.py` to add another module's captures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export OPENDATA_CAPTURES=${OPENDATA_CAPTURES:-docs/captures}
mkdir -p "$OPENDATA_CAPTURES"
.venv/bin/python -m pytest -n 0 tests/test_portal_tour.py "$@"
ls -l "$OPENDATA_CAPTURES"
