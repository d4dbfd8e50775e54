"""Benchmark: how long ``sonotell bench build`` takes (wall and CPU time), per benchmark.

    python benchmarks/bench_build.py --quick                 # synthetic, 2 subjects (no data needed)
    python benchmarks/bench_build.py                         # synthetic demo size (6 x 2 scans)
    python benchmarks/bench_build.py --pocus --data-root ../shared/data            # + the full pocus set
    python benchmarks/bench_build.py --pocus --limit 10 --data-root ../shared/data # + 10 pocus clips

CPU time is this process's user+system time: the build runs in one process, so on a shared
machine it is the better measure of what the build costs; wall time is shown beside it.
Prints a table and writes JSON (default bench_out/bench_build.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def run(name: str, overrides: list[str], work: Path, seed: int) -> dict:
    from sonotell.bench import build_benchmark, load_benchmark
    from sonotell.io.audio import audio_duration_s

    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    build_benchmark(name, out, overrides=overrides, seed=seed)
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    bench = load_benchmark(out)
    audio_s = sum(audio_duration_s(s.audio_path)[0] for s in bench.scans)
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    return {
        "benchmark": name,
        "scans": len(bench.scans),
        "narration_s": round(audio_s, 1),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cpu_s_per_scan": round(cpu / len(bench.scans), 3),
        "size_mb": round(size_mb, 1),
        "overrides": overrides,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="synthetic with 2 subjects only")
    ap.add_argument("--pocus", action="store_true", help="also build pocus (needs --data-root)")
    ap.add_argument("--abdominal", action="store_true", help="also build abdominal (needs --data-root)")
    ap.add_argument("--limit", type=int, default=None, help="pocus/abdominal: build only this many scans")
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="where to build (default: a temp folder, removed after)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_build.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_build_"))
    rows = [run("synthetic", ["subjects=2"] if args.quick else [], work, args.seed)]
    extra = [f"data_root={args.data_root}"] + ([f"limit={args.limit}"] if args.limit else [])
    if args.pocus:
        rows.append(run("pocus", extra, work, args.seed))
    if args.abdominal:
        rows.append(run("abdominal", extra, work, args.seed))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    cols = ["benchmark", "scans", "narration_s", "wall_s", "cpu_s", "cpu_s_per_scan", "size_mb"]
    print(" | ".join(f"{c:>14}" for c in cols))
    for r in rows:
        print(" | ".join(f"{str(r[c]):>14}" for c in cols))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "rows": rows,
        "cpu_count": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
