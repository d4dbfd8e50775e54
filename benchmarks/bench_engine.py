"""Benchmark: the same 12-scan labelling on the local engine and on Ray, in one run.

The scans are the default ``synthetic`` benchmark (12 narrated scans of 10 s; built here
into ``--bench`` when missing, not timed). Timed, each from a fresh output folder:

- local: ``label_scans`` on a process pool of ``--workers`` processes;
- Ray: starting a local Ray instance with ``--workers`` CPUs (timed on its own), then the
  same ``label_scans`` on it.

Asserted: both runs give the same outputs (``speech.batch.outputs_digest``: frame CSVs byte
for byte, JSON except the measured wall/CPU times). The scaling estimate for N workers comes
from the measured per-scan wall times: the longest-first schedule of those times on N workers
plus the measured per-run overhead of the engine (Ray: its start and task dispatch).

    python benchmarks/bench_engine.py --workers 2

Prints a table and writes JSON (default bench_out/bench_engine.json).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import time
from pathlib import Path


def makespan(times: list[float], n_workers: int) -> float:
    """Wall time of running ``times`` on ``n_workers`` (longest first, each to the least loaded worker)."""
    loads = [0.0] * n_workers
    for t in sorted(times, reverse=True):
        heapq.heapreplace(loads, loads[0] + t)
    return max(loads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--bench", type=Path, default=Path("bench_out/synthetic"), help="benchmark folder (built when missing)"
    )
    ap.add_argument("--work", type=Path, default=Path("bench_out/bench_engine_work"), help="label output folders")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--config", default="speech", help="speech pipeline config")
    ap.add_argument("--lexicon", default="abdominal")
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_engine.json"))
    args = ap.parse_args()

    import shutil

    from sonotell.bench import build_benchmark, load_benchmark
    from sonotell.config import load_config
    from sonotell.engine import EngineSpec, open_engine
    from sonotell.files import write_json
    from sonotell.speech.batch import label_scans, outputs_digest

    if not (args.bench / "bench.json").exists():
        build_benchmark("synthetic", args.bench, seed=0)
    scans = load_benchmark(args.bench).scans
    cfg = load_config("pipelines", args.config)
    runs = {}
    for name in ("local", "ray"):
        out = args.work / name
        shutil.rmtree(out, ignore_errors=True)
        spec = EngineSpec(name, workers=args.workers)
        t0 = time.perf_counter()
        with open_engine(spec):
            t_started = time.perf_counter()
            label_scans(scans, out, config=cfg, lexicon=args.lexicon, engine=spec, resume=False)
            t_done = time.perf_counter()
        summary = json.loads((out / "summary.json").read_text())
        per_scan = [json.loads((out / f"{s.scan_id}.json").read_text())["info"] for s in scans]
        runs[name] = {
            "start_s": round(t_started - t0, 2),
            "label_wall_s": round(t_done - t_started, 2),
            "total_wall_s": round(t_done - t0, 2),
            "n_done": summary["n_done"],
            "n_failed": summary["n_failed"],
            "per_scan_wall_s": [round(i["elapsed_s"], 3) for i in per_scan],
            "per_scan_cpu_s": [round(i["cpu_s"], 3) for i in per_scan],
            "audio_s": round(sum(i["duration_s"] for i in per_scan), 1),
        }
    digests = {k: outputs_digest(args.work / k) for k in ("local", "ray")}
    same = digests["local"] == digests["ray"]
    differ = sorted(s for s in digests["local"] if digests["local"][s] != digests["ray"].get(s))
    assert same, f"local and Ray outputs differ: {', '.join(differ) or 'other scans'}"
    assert runs["local"]["n_done"] == len(scans) == runs["ray"]["n_done"]

    local, ray = runs["local"], runs["ray"]
    overhead = ray["label_wall_s"] / local["label_wall_s"] - 1
    # per-run engine overhead beyond the scans' own work, measured: wall minus the ideal schedule
    times = local["per_scan_wall_s"]
    dispatch = {k: max(0.0, runs[k]["label_wall_s"] - makespan(runs[k]["per_scan_wall_s"], args.workers)) for k in runs}
    scaling = {
        str(n): {
            "local_s": round(makespan(times, n) + dispatch["local"], 1) if n <= (os.cpu_count() or 1) else None,
            "ray_s": round(ray["start_s"] + makespan(ray["per_scan_wall_s"], n) + dispatch["ray"], 1),
            "ideal_s": round(sum(times) / n, 1),
        }
        for n in (1, 2, 4, 8, 16, 32)
    }
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "scans": len(scans),
        "config": args.config,
        "workers": args.workers,
        "runs": runs,
        "ray_overhead_label": round(overhead, 4),
        "ray_overhead_with_start": round(ray["total_wall_s"] / local["total_wall_s"] - 1, 4),
        "outputs_identical": same,
        "scaling_estimate": scaling,
        "scaling_note": "per scan: longest-first schedule of the measured per-scan wall times on N workers, "
        "plus each engine's measured overhead (Ray: start + dispatch); "
        "the local engine is bounded by this machine's cores",
    }
    write_json(args.out, report)
    rows = [
        ("local", local["start_s"], local["label_wall_s"], local["total_wall_s"]),
        ("ray", ray["start_s"], ray["label_wall_s"], ray["total_wall_s"]),
    ]
    print(f"{'engine':8} {'start s':>8} {'label s':>8} {'total s':>8}")
    for r in rows:
        print(f"{r[0]:8} {r[1]:8.1f} {r[2]:8.1f} {r[3]:8.1f}")
    print(
        f"Ray overhead on labelling: {100 * overhead:+.1f}%  "
        f"(with its start: {100 * report['ray_overhead_with_start']:+.1f}%)"
    )
    print(f"outputs identical: {same}")
    print("estimate for N workers (s): " + ", ".join(f"{n}: {v['ray_s']}" for n, v in scaling.items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
