"""``combine_benchmarks``: one benchmark folder over several built ones (e.g. pocus + covid_blues lung clips).

The combined folder holds its own ``manifest.csv``, ``bench.json`` and copies of the truth
files; media stay where they are (paths relative to the combined folder). Scan and subject
ids must be unique across the sources, so patient-level splits of the union stay
patient-level across every source (pocus patients are ``src<S>-pt<P>``, covid_blues ones
``blues-pt<P>``). A source's licence still applies to the combined folder.

Example:
    >>> combine_benchmarks(["bench_out/pocus", "bench_out/covid_blues"], "bench_out/lung")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from sonotell.data.format import load_benchmark, write_bench_json, write_manifest
from sonotell.errors import InputError
from sonotell.files import write_json


def _union(lists) -> list[str]:
    return list(dict.fromkeys(x for lst in lists for x in lst))


def combine_benchmarks(sources: list[str | Path], out_dir: str | Path, name: str = "combined") -> Path:
    """Write a benchmark folder listing every scan of ``sources``; returns the folder."""
    if len(sources) < 2:
        raise InputError(out_dir, "combining needs at least two benchmark folders")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    benches = [load_benchmark(s) for s in sources]
    owner_scan, owner_subject = {}, {}
    masks = {tuple(b.mask_classes) for b in benches if b.mask_classes}
    if len(masks) > 1:
        raise InputError(out, f"sources have different mask classes: {sorted(masks)}")
    rows = []
    for b in benches:
        for row in b.table.to_dict("records"):
            sid, subj = str(row["scan_id"]), str(row["subject_id"])
            if sid in owner_scan:
                raise InputError(b.root / "manifest.csv", f"scan id {sid!r} is also in {owner_scan[sid]}")
            other = owner_subject.setdefault(subj, b.root)
            if other != b.root:
                raise InputError(
                    b.root / "manifest.csv",
                    f"subject id {subj!r} is also in {other}: patient-level splits would be ambiguous",
                )
            owner_scan[sid] = b.root
            for key in ("video_path", "audio_path"):
                if str(row[key]):
                    row[key] = os.path.relpath((b.root / str(row[key])).resolve(), out.resolve())
            rows.append(row)
            truth = b.truth(sid)
            truth["masks"] = {
                k: os.path.relpath((b.root / v).resolve(), out.resolve()) for k, v in truth["masks"].items()
            }
            truth["source_benchmark"] = b.name
            write_json(out / "truth" / f"{sid}.json", truth)
    write_manifest(out / "manifest.csv", rows)
    config = {"sources": [{"name": b.name, "root": str(b.root), "n_scans": len(b.scans)} for b in benches]}
    write_bench_json(
        out,
        name=name,
        classes=_union(b.classes for b in benches),
        label_names=_union(b.label_names for b in benches),
        mask_classes=list(next(iter(masks))) if masks else [],
        config=config,
        seed=benches[0].seed or 0,
        task_classes=_union(b.task_classes for b in benches),
    )
    load_benchmark(out)  # validate what we wrote
    return out
