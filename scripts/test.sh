#!/usr/bin/env bash
# Installs sonotell, runs the lint gate (ruff: pyflakes, bugbear, import order; see pyproject.toml),
# then the test suite (2 workers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The review app's browser tests drive Debian's own Chromium through its chromedriver (no browser download).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
      || echo "warning: chromium not installed; the review browser tests will be skipped" >&2
  else
    echo "warning: chromium + chromium-driver missing (apt-get install chromium chromium-driver); browser tests skipped" >&2
  fi
fi
# Label Studio's own config parser/validator for the round-trip test. --no-deps: the SDK's full dependency set pins an
# older numpy (through opencv), and its label_interface module needs only these.
.venv/bin/pip install -q "jsonschema>=4.23"
.venv/bin/pip install -q --no-deps label-studio-sdk==2.1.2 xmljson==0.2.1 jsf==0.11.2 Faker==40.63.0 smart_open==9.0.2 \
  wrapt==2.5.2 rstr==3.2.2 lxml==6.1.3 PyJWT==2.13.0 appdirs==1.4.4
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check -q src tests benchmarks
# loadgroup: the Ray tests (xdist_group "ray") share one worker, so one Ray instance starts.
.venv/bin/python -m pytest -n 2 --dist loadgroup -q "$@"
