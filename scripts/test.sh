#!/usr/bin/env bash
# The whole test suite (real Airflow, SQLite, PostgreSQL, HTTP servers, Chromium), then the
# linters (code, imports).
#
# The tests run on OPENDATA_TEST_WORKERS pytest-xdist workers (default 3 on this 2-core
# machine: many tests wait on subprocesses and servers), each module whole on one worker,
# in collection order (tests/conftest.py: ModuleScheduling), and the slowest are listed
# (`--durations`). Tests marked `serial` (they need the machine to themselves) run alone
# first, when there are any. With arguments (paths, -k, -m…): one parallel pass of what
# they select, e.g. `bash scripts/test.sh tests/test_read.py -m "not slow"`. A run where
# pytest collects no test at all fails (exit code 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
workers=${OPENDATA_TEST_WORKERS:-3}
pytest=(.venv/bin/python -m pytest)
parallel=(-n "$workers" --dist loadfile --no-loadscope-reorder --durations=20)
if [ $# -gt 0 ]; then
  "${pytest[@]}" "${parallel[@]}" "$@"
else
  serial=0
  if grep -rqs "mark.serial" tests/; then
    "${pytest[@]}" -m serial --durations=5 || serial=$?
  fi
  "${pytest[@]}" "${parallel[@]}" -m "not serial"
  if [ "$serial" -ne 0 ] && [ "$serial" -ne 5 ]; then  # 5: the word matched, no test did
    exit "$serial"
  fi
fi
.venv/bin/ruff check .
.venv/bin/lint-imports
