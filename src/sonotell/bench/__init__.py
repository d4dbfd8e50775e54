"""Narrated benchmark builder: real (or simulated) ultrasound + synthesised narration + ground truth.

Example:
    >>> from sonotell.bench import build_benchmark, load_benchmark
    >>> bench = load_benchmark(build_benchmark("synthetic", "bench_out/synthetic"))  # doctest: +SKIP
"""

from sonotell.bench.build import build_benchmark, ensure_benchmark, list_benchmarks
from sonotell.data.format import Benchmark, load_benchmark, resolve_benchmark

__all__ = ["Benchmark", "build_benchmark", "ensure_benchmark", "list_benchmarks", "load_benchmark", "resolve_benchmark"]
