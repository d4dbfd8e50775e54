#!/usr/bin/env bash
# Installs sonotell, runs the lint gate (ruff: pyflakes, bugbear, import order; see pyproject.toml),
# then the test suite (2 workers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest -n 2 -q "$@"
