#!/usr/bin/env bash
# One short device check (<= 8 minutes): every recipe's paper config for a few hundred steps with
# each image/video encoder (from scratch, ImageNet EfficientNet-Lite0), then encoder frames/s at 224x224.
# Prints throughput and peak memory; writes $OUT/gpu_check.json (or bench_out/). Extra arguments go to
# gpu_check.py, e.g. `bash benchmarks/gpu_check.sh --tiny --steps 2` (CPU smoke run, as the test does).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT_DIR=${OUT:-bench_out}
mkdir -p "$OUT_DIR"
PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} timeout "${GPU_CHECK_LIMIT_S:-470}" "$PY" benchmarks/gpu_check.py \
  --steps "${GPU_CHECK_STEPS:-200}" --out "$OUT_DIR/gpu_check.json" "$@"
