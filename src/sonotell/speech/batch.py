"""Many scans -> per-scan label files and a summary: resumable, one task per scan on the local or Ray engine.

Each task labels one scan and writes its ``<scan_id>.labels.csv`` then ``<scan_id>.json``
(atomically; the JSON's presence marks the scan done), so a rerun on either engine skips what
the other finished. The speech pipeline (its models) is built once per worker process.

Example:
    >>> from sonotell.engine import EngineSpec
    >>> label_scans(scans, "labels/", config=cfg, lexicon="lung", engine=EngineSpec("ray", workers=4))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sonotell import labels as labels_io
from sonotell.engine import EngineSpec, open_engine
from sonotell.errors import InputError
from sonotell.labels import labels_paths, outputs_digest
from sonotell.progress import Progress, silent
from sonotell.speech.lexicon import load_lexicon
from sonotell.speech.pipeline import SpeechPipeline, SpeechResult, recipe_fingerprint
from sonotell.types import Scan, TermEvent

__all__ = ["label_scans", "labels_paths", "outputs_digest", "write_scan_labels", "is_done"]
SUMMARY_COLUMNS = (
    *labels_io.SUMMARY_COLUMNS,
    "duration_s",
    "real_time_factor",
    "error",
)


def write_scan_labels(out_dir: Path, scan: Scan, result: SpeechResult, fingerprint: str, lexicon: str) -> Path:
    """Write the scan's frame CSV then its JSON (``sonotell.labels``); the JSON's presence marks the scan done."""
    doc = {
        "scan_id": scan.scan_id,
        "subject_id": scan.subject_id,
        "fingerprint": fingerprint,
        "lexicon": lexicon,
        **result.to_dict(),
    }
    return labels_io.write_scan(out_dir, scan.scan_id, result.frames, doc)


def is_done(out_dir: Path, scan_id: str, fingerprint: str) -> bool:
    return labels_io.is_done(out_dir, scan_id, fingerprint)


# -- worker side: module-level so both engines can ship them to other processes ---------


def _make_worker(config: dict, lexicon: str, out_dir: str) -> dict:
    """Per worker process, once: the pipeline with its models loaded."""
    import torch

    torch.set_num_threads(1)  # one scan per core: the engine's workers are the parallelism
    return {"pipeline": SpeechPipeline(config, lexicon), "lexicon": lexicon, "out_dir": Path(out_dir)}


def _label_one(scan: Scan, state: dict) -> dict:
    """One task: label a scan and write its files (or return its failure row; nothing written)."""
    pipe: SpeechPipeline = state["pipeline"]
    try:
        result = pipe.label_scan(scan)
    except InputError as e:
        return _failed_row(scan, str(e))
    write_scan_labels(state["out_dir"], scan, result, pipe.fingerprint, state["lexicon"])
    return _summary_row(scan, result)


def _failed_row(scan: Scan, error: str) -> dict:
    return {"scan_id": scan.scan_id, "subject_id": scan.subject_id, "status": "failed", "error": error}


def _summary_row(scan: Scan, result: SpeechResult) -> dict:
    return {
        "scan_id": scan.scan_id,
        "subject_id": scan.subject_id,
        "status": "done",
        **labels_io.summary_counts(result.frames),
        "n_events": len([e for e in result.events if not e.negated]),
        "n_negated": len([e for e in result.events if e.negated]),
        "duration_s": result.info.get("duration_s"),
        "real_time_factor": result.info.get("real_time_factor"),
        "error": "",
    }


def _absolute(scan: Scan) -> Scan:
    """Paths that mean the same in a worker whose working folder is another one (Ray)."""
    audio = None if scan.audio_path is None else Path(scan.audio_path).absolute()
    return replace(scan, video_path=Path(scan.video_path).absolute(), audio_path=audio)


def label_scans(
    scans: list[Scan],
    out_dir: str | Path,
    *,
    config: dict,
    lexicon: str | Path,
    workers: int = 1,
    engine: EngineSpec | None = None,
    resume: bool = True,
    progress: Progress | None = None,
) -> Path:
    """Label every scan into ``out_dir`` (see ``labels_paths``) and write ``summary.csv`` / ``summary.json``.

    Args:
        engine: where the tasks run (default: a local pool of ``workers`` processes). The
            config's ``resources`` section (``cpus_per_task``, ``memory_gb_per_task``,
            ``max_retries``) sets the per-task requests; it is not part of the recipe fingerprint.
        resume: skip scans already labelled with the same config + lexicon (by either engine).

    A scan whose input is bad, or whose worker ran out of memory, is listed in the summary with
    its one-line error; nothing of it is written. An unreachable Ray cluster fails before
    anything is written.
    """

    progress = progress or silent
    out_dir = Path(out_dir).absolute()
    lexicon = str(lexicon)
    fingerprint = recipe_fingerprint(config, load_lexicon(lexicon))
    spec = (engine or EngineSpec("local", workers=workers)).with_resources(config.get("resources"))
    with open_engine(spec) as runner:  # joins / starts the engine before anything is written
        out_dir.mkdir(parents=True, exist_ok=True)
        rows: dict[str, dict] = {}
        todo = []
        for scan in scans:
            if resume and is_done(out_dir, scan.scan_id, fingerprint):
                rows[scan.scan_id] = {
                    **_summary_row(scan, _read_result(out_dir, scan.scan_id)),
                    "status": "skipped (done)",
                }
            else:
                todo.append(_absolute(scan))
        total = len(scans)
        progress(len(rows), total, "resuming" if rows else "")
        for scan, row, error in runner.map(
            _label_one, todo, setup=_make_worker, setup_args=(config, lexicon, str(out_dir))
        ):
            rows[scan.scan_id] = row if error is None else _failed_row(scan, f"{scan.audio_source}: {error}")
            progress(len(rows), total, scan.scan_id)
    ordered = [{**dict.fromkeys(SUMMARY_COLUMNS, ""), **rows[s.scan_id]} for s in scans]
    label_counts: dict[str, int] = {}
    for r in ordered:
        for lab in filter(None, str(r.get("labels", "")).split(";")):
            label_counts[lab] = label_counts.get(lab, 0) + 1
    failed = [{"scan_id": r["scan_id"], "error": r["error"]} for r in ordered if r["status"] == "failed"]
    return labels_io.write_summary(  # same columns when every scan failed
        out_dir,
        ordered,
        SUMMARY_COLUMNS,
        {
            "fingerprint": fingerprint,
            "lexicon": lexicon,
            "config": config,
            "n_scans": len(scans),
            "n_done": sum(r["status"] != "failed" for r in ordered),
            "n_failed": len(failed),
            "failed": failed,
            "scans_with_label": label_counts,
        },
    )


def _read_result(out_dir: Path, scan_id: str) -> SpeechResult:
    doc = labels_io.read_scan_doc(out_dir, scan_id)
    return SpeechResult(
        [],
        [TermEvent(**{k: e[k] for k in TermEvent.__dataclass_fields__ if k in e}) for e in doc["events"]],
        doc.get("segments", []),
        doc.get("info", {}),
        labels_io.read_frames(out_dir, scan_id, doc.get("label_names")),
        doc.get("view_starts"),
    )
