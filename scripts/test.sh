#!/usr/bin/env bash
# Installs sonotell, then runs the test suite (2 workers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python -m pytest -n 2 -q "$@"
