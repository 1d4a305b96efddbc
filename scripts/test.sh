#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: set-up, lint, type check, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-services
export PATH="$PATH:/usr/sbin"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
