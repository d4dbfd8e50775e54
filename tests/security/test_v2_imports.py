"""Issue 21 item 4: a Label Studio import validates every task first, then writes all review files or none."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from sonotell.errors import InputError, OutputError
from sonotell.review.labelstudio import import_label_studio
from sonotell.review.store import load_review
from tests.review.conftest import _demo_set, labels_dir  # noqa: F401  (fixtures)


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def region(label="liver", start=11, end=16, rid="r1"):
    return {
        "id": rid,
        "type": "timelinelabels",
        "value": {"ranges": [{"start": start, "end": end}], "timelinelabels": [label]},
    }


def task(scan_id="scan_a", regions=None, **ann):
    return {"data": {"scan_id": scan_id}, "annotations": [{"id": 1, "result": regions or [region()], **ann}]}


def write(tmp_path: Path, doc, name="export.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


BAD_EXPORTS = {
    "annotations not a list": [{"data": {"scan_id": "scan_a"}, "annotations": "yes"}],
    "task not an object": ["scan_a"],
    "data not an object": [{"data": [1], "annotations": []}],
    "scan id not text": [{"data": {"scan_id": ["scan_a"]}, "annotations": []}],
    "result not a list": [task(result=None) | {"annotations": [{"result": {"a": 1}}]}],
    "value not an object": [task(regions=[{"id": "x", "type": "timelinelabels", "value": "liver"}])],
    "label not text": [task(regions=[region(label=7)])],
    "two labels": [
        task(
            regions=[{**region(), "value": {"ranges": [{"start": 1, "end": 2}], "timelinelabels": ["liver", "kidney"]}}]
        )
    ],
    "frame not an integer": [task(regions=[region(start="11")])],
    "frame a fraction": [task(regions=[region(start=1.5)])],
    "frame a boolean": [task(regions=[region(start=True)])],
    "negative time": [task(regions=[region(start=-5, end=3)])],
    "frame zero": [task(regions=[region(start=0, end=3)])],
    "end before start": [task(regions=[region(start=30, end=20)])],
    "beyond the scan": [task(regions=[region(start=11, end=400_000_001)])],  # 4e7 s at 10 fps
    "huge integer": [task(regions=[region(start=10**400, end=10**400)])],
    "cancelled flag not a boolean": [task(was_cancelled="no")],
    "unknown label": [task(regions=[region(label="unicorn")])],
    "scan annotated twice": [task(), task()],
}


@pytest.mark.parametrize("case", sorted(BAD_EXPORTS))
def test_bad_exports_are_one_line_and_write_nothing(labels_dir, tmp_path, case):  # noqa: F811
    before = snapshot(labels_dir)
    with pytest.raises(InputError) as err:
        import_label_studio(write(tmp_path, BAD_EXPORTS[case]), labels_dir)
    assert "\n" not in str(err.value) and str(err.value).startswith(str(tmp_path / "export.json"))
    assert snapshot(labels_dir) == before


@pytest.mark.parametrize(
    "text",
    [
        '[{"data": {"scan_id": "scan_a"}, "annotations": [{"result": [], "id": Infinity}]}]',
        '[{"data": {"scan_id": "scan_a", "fps": NaN}}]',
        "[" * 100_000 + "]" * 100_000,  # nested beyond the parser's recursion limit
        '[{"data": ',  # truncated
        b"\xff\xfe[]",  # not UTF-8
    ],
)
def test_unparseable_exports_are_one_line_and_write_nothing(labels_dir, tmp_path, text):  # noqa: F811
    before = snapshot(labels_dir)
    path = tmp_path / "export.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError, match="not a Label Studio JSON export") as err:
        import_label_studio(path, labels_dir)
    assert "\n" not in str(err.value)
    assert snapshot(labels_dir) == before


def test_a_task_with_only_cancelled_annotations_changes_nothing(labels_dir, tmp_path):  # noqa: F811
    export = [{"data": {"scan_id": "scan_a"}, "annotations": [{"id": 1, "was_cancelled": True, "result": []}]}]
    counts = import_label_studio(write(tmp_path, export), labels_dir)
    assert counts["scans"] == 0 and counts["skipped_tasks"] == 1 and counts["rejected"] == 0
    review = load_review(labels_dir, "scan_a")
    assert review["reviewed"] is False and review["decisions"] == {}  # no event rejected, not marked reviewed


def test_the_kept_annotation_wins_over_a_later_cancelled_one(labels_dir, tmp_path):  # noqa: F811
    kept = {"id": 1, "updated_at": "2026-01-01", "result": [region(label="pancreas")]}
    cancelled = {"id": 2, "updated_at": "2026-02-01", "was_cancelled": True, "result": []}
    export = [{"data": {"scan_id": "scan_a"}, "annotations": [kept, cancelled]}]
    counts = import_label_studio(write(tmp_path, export), labels_dir)
    assert counts["added"] == 1 and counts["rejected"] == 4  # the region is new; the 4 pipeline events are missing


def test_a_failure_on_task_2_rewrites_no_earlier_task(labels_dir, tmp_path):  # noqa: F811
    first = import_label_studio(write(tmp_path, [task("scan_a")], "first.json"), labels_dir)
    assert first["scans"] == 1
    before = snapshot(labels_dir)
    export = [task("scan_a", [region(label="kidney")]), task("scan_b"), task("scan_b", [region(start=5, end=1)])]
    with pytest.raises(InputError, match="task 2"):
        import_label_studio(write(tmp_path, export), labels_dir)
    assert snapshot(labels_dir) == before


def test_a_write_failure_renames_no_review_file(labels_dir, tmp_path, monkeypatch):  # noqa: F811
    before = snapshot(labels_dir)
    real = Path.write_text
    calls = []

    def full_disk_on_second_file(self, *args, **kwargs):
        if self.name.endswith(".tmp.json") and ".review.json." in self.name:
            calls.append(self)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk_on_second_file)
    with pytest.raises(OutputError, match="no space left"):
        import_label_studio(write(tmp_path, [task("scan_a"), task("scan_b")]), labels_dir)
    monkeypatch.undo()
    assert len(calls) == 2
    assert {k: v for k, v in snapshot(labels_dir).items() if not k.endswith(".lock")} == before  # no review, no temp


def test_an_import_over_a_corrupt_review_file_writes_nothing(labels_dir, tmp_path):  # noqa: F811
    (labels_dir / "scan_b.review.json").write_text('{"format": "sonotell.review/1", "decisions": {"e": {"status": 1}}}')
    before = snapshot(labels_dir)
    with pytest.raises(InputError, match="scan_b.review.json: decision 'e': status"):
        import_label_studio(write(tmp_path, [task("scan_a"), task("scan_b")]), labels_dir)
    assert snapshot(labels_dir) == before


def test_several_ranges_of_one_region_all_count(labels_dir, tmp_path):  # noqa: F811
    two = {
        **region(label="pancreas"),
        "value": {"ranges": [{"start": 1, "end": 5}, {"start": 41, "end": 51}], "timelinelabels": ["pancreas"]},
    }
    counts = import_label_studio(write(tmp_path, [task("scan_a", [two])]), labels_dir)
    assert counts["added"] == 2
    added = sorted(
        (d["start_s"], d["end_s"])
        for d in load_review(labels_dir, "scan_a")["decisions"].values()
        if d["status"] == "added"
    )
    assert added == [(0.0, 0.5), (4.0, 5.1)]  # a region ends where its last frame ends
