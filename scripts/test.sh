#!/usr/bin/env bash
# The whole test suite (real Airflow, SQLite, PostgreSQL, HTTP servers, Chromium), then the
# linters (code, imports).
#
# Without arguments: first the tests marked `serial` (they need the machine to themselves),
# alone; then every other test on OPENDATA_TEST_WORKERS pytest-xdist workers (default 3 on
# this 2-core machine: many tests wait on subprocesses and servers). `--dist loadfile`
# keeps each module on one worker: its module fixtures are built once. Each pass
# prints its slowest tests (`--durations`). With arguments (paths, -k, -m…): one parallel
# pass of what they select, e.g. `bash scripts/test.sh tests/test_read.py -m "not slow"`.
# A run where pytest collects no test at all fails (exit code 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
workers=${OPENDATA_TEST_WORKERS:-3}
pytest=(.venv/bin/python -m pytest)
parallel=(-n "$workers" --dist loadfile --durations=20)
if [ $# -gt 0 ]; then
  "${pytest[@]}" "${parallel[@]}" "$@"
else
  # no test marked serial is exit code 5 here, and fine; the parallel pass must run tests
  serial=0
  "${pytest[@]}" -m serial --durations=5 || serial=$?
  "${pytest[@]}" "${parallel[@]}" -m "not serial"
  if [ "$serial" -ne 0 ] && [ "$serial" -ne 5 ]; then
    exit "$serial"
  fi
fi
.venv/bin/ruff check .
.venv/bin/lint-imports
