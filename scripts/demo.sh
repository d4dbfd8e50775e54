#!/usr/bin/env bash
# Installs sonotell, then runs the end-to-end demo on data it makes itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/sonotell demo --out demo_out "$@"
