#!/usr/bin/env bash
# Installs sonotell (with Ray, for the engine tests), then runs the test suite (2 workers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# loadgroup: the Ray tests (xdist_group "ray") share one worker, so one Ray instance starts.
.venv/bin/python -m pytest -n 2 --dist loadgroup -q "$@"
