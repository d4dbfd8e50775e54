"""sonotell.labels: the v2 frame CSV (several labels per frame), the scan JSON, v1 folders, one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonotell import labels as L
from sonotell.errors import InputError

NAMES = ["B-lines", "effusion", "pleural irregularity"]


def states():
    s = np.array([[1, 1, -1], [1, 0, -1], [-1, 0, 1]], np.int8)
    conf = np.array([[0.9, 0.5, 0], [1, 0.75, 0], [0, 0.25, 1]], np.float32)
    return L.FrameStates(np.arange(3), np.array([0.0, 0.1, 0.2]), s, np.full(3, "speech"), conf, NAMES)


def test_v2_round_trip_keeps_co_present_labels(tmp_path):
    path = L.write_frames(tmp_path, "s1", states())
    table = pd.read_csv(path, keep_default_na=False)
    assert list(table.columns[:6]) == ["scan_id", "frame_index", "time_s", *NAMES]
    assert list(table["B-lines"]) == ["present", "present", "unknown"]
    assert list(table["effusion"]) == ["present", "absent", "absent"]
    assert "confidence:effusion" in table.columns and list(table["source"]) == ["speech"] * 3
    back = L.read_frames(tmp_path, "s1", NAMES)
    assert (back.state == states().state).all() and np.allclose(back.confidence, states().confidence)
    assert back.present_labels(0) == ["B-lines", "effusion"] and back.absent_labels(1) == ["effusion"]
    assert back.single_labels() == ["unlabelled", "B-lines", "pleural irregularity"]
    wider = L.read_frames(tmp_path, "s1", ["A-lines", *NAMES])  # a lexicon label without a column: unknown
    assert (wider.state[:, 0] == L.UNKNOWN).all() and (wider.state[:, 1:] == states().state).all()
    assert L.frames_format(path) == 2 and L.folder_format(tmp_path) == 2


def test_scan_files_and_done_marker(tmp_path):
    L.write_scan(tmp_path, "s1", states(), {"scan_id": "s1", "fingerprint": "f1", "events": []})
    doc = L.read_scan_doc(tmp_path, "s1")
    assert doc["labels_format"] == 2 and doc["label_names"] == NAMES and doc["frame_labels_csv"] == "s1.labels.csv"
    assert L.is_done(tmp_path, "s1", "f1") and not L.is_done(tmp_path, "s1", "f2")
    assert L.scan_ids(tmp_path) == ["s1"]
    L.write_summary(tmp_path, [{"scan_id": "s1"}], ["scan_id", "status"], {"lexicon": "lung"})
    assert L.read_summary(tmp_path) == {"lexicon": "lung", "labels_format": 2}
    assert list(L.outputs_digest(tmp_path)) == ["s1"]


def test_v1_folder_reads_as_v2_with_one_warning(tmp_path, caplog):
    pd.DataFrame(
        {
            "scan_id": "s1",
            "frame_index": [0, 1, 2],
            "time_s": [0, 0.1, 0.2],
            "label": ["B-lines", "unlabelled", "effusion"],
            "confidence": [0.8, 0.0, 1.0],
            "absent": ["effusion", "", "B-lines;pleural irregularity"],
        }
    ).to_csv(tmp_path / "s1.labels.csv", index=False)
    L._WARNED_V1.discard(str(tmp_path.resolve()))
    with caplog.at_level("WARNING"):
        st_ = L.read_frames(tmp_path, "s1", NAMES)
        L.read_frames(tmp_path, "s1", NAMES)
    assert sum("format 1" in r.message for r in caplog.records) == 1
    assert "sonotell labels upgrade" in caplog.records[0].message
    assert st_.state.tolist() == [[1, 0, -1], [-1, -1, -1], [0, 1, 0]]
    assert st_.confidence[0, 0] == pytest.approx(0.8) and L.folder_format(tmp_path) == 1


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.rename(columns={"effusion": "efusion"}), "column 'efusion' is not in the lexicon's label set"),
        (lambda t: t.assign(frame_index=["0", "", "2"]), "row 3, column 'frame_index': '' is not a number"),
        (lambda t: t.assign(frame_index=["0", "nan", "2"]), "row 3, column 'frame_index': 'nan' is not a number"),
        (lambda t: t.assign(frame_index=["0", "1.5", "2"]), "row 3: frame_index '1.5' is not a whole number"),
        (lambda t: t.assign(effusion=["present", "maybe", "absent"]), "'maybe' is not present, absent or unknown"),
        (lambda t: t.assign(source=["speech", "guess", "speech"]), "source 'guess' is not one of"),
        (lambda t: t.drop(columns=["time_s"]), "missing column(s) time_s"),
    ],
)
def test_bad_frame_csv_is_one_line_error_naming_the_file(tmp_path, edit, message):
    path = L.write_frames(tmp_path, "s1", states())
    edit(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)
    with pytest.raises(InputError) as e:
        L.read_frames(tmp_path, "s1", NAMES)
    assert str(e.value).startswith(str(path)) and message in str(e.value) and "\n" not in str(e.value)


def test_truncated_or_wrong_json_is_one_line_error(tmp_path):
    L.write_scan(tmp_path, "s1", states(), {"events": [{"label": "effusion", "start_s": 1.0, "end_s": 1.2}]})
    text = (tmp_path / "s1.json").read_text()
    (tmp_path / "s1.json").write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match=r"s1.json: not valid JSON \(JSONDecodeError\): truncated"):
        L.read_scan_doc(tmp_path, "s1")
    (tmp_path / "s1.json").write_text(json.dumps({"events": [{"label": "effusion", "start_s": "x", "end_s": 1}]}))
    with pytest.raises(InputError, match="event 0: start_s is missing or not a number"):
        L.read_scan_doc(tmp_path, "s1")
    (tmp_path / "s1.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object, found list"):
        L.read_scan_doc(tmp_path, "s1")


def test_labels_that_cannot_be_columns_are_refused(tmp_path):
    one = np.ones((1, 1), np.int8)
    bad = L.FrameStates(np.arange(1), np.zeros(1), one, np.full(1, "speech"), label_names=["label"])
    with pytest.raises(ValueError, match="cannot be CSV columns"):
        L.write_frames(tmp_path, "s1", bad)
    assert not list(tmp_path.iterdir())


_cell = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.lists(st.sampled_from([*L.BASE_COLUMNS, *NAMES, "source", "label", "absent", "x", "confidence:B-lines"])),
    rows=st.lists(st.lists(_cell, min_size=0, max_size=8), max_size=4),
    raw=st.binary(max_size=60),
)
def test_fuzzed_csv_and_json_give_one_line_errors_and_write_nothing(tmp_path, header, rows, raw):
    folder = tmp_path / "fz"
    folder.mkdir(exist_ok=True)
    for p in folder.iterdir():
        p.unlink()
    lines = [",".join(header)] + [",".join(c.replace("\n", " ").replace("\r", " ") for c in r) for r in rows]
    (folder / "s.labels.csv").write_text("\n".join(lines), encoding="utf-8")
    (folder / "s.json").write_bytes(raw)
    before = sorted(p.name for p in folder.iterdir())
    for read in (lambda: L.read_frames(folder, "s", NAMES), lambda: L.read_scan_doc(folder, "s")):
        try:
            out = read()
        except InputError as e:
            assert "\n" not in str(e) and str(e).startswith(str(folder))
        else:
            assert out is not None
    assert sorted(p.name for p in folder.iterdir()) == before
