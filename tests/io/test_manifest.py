from pathlib import Path

import pandas as pd
import pytest

from sonotell.errors import InputError
from sonotell.io.manifest import parse_roi, read_manifest, write_manifest
from sonotell.types import Scan


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_roundtrip_keeps_fields_relative_paths_and_extra_columns(tmp_path):
    v = _touch(tmp_path / "videos" / "a.mp4")
    w = _touch(tmp_path / "videos" / "a.wav")
    scans = [
        Scan(
            "a",
            "p1",
            v,
            w,
            audio_offset_s=0.5,
            fps=25.0,
            n_frames=100,
            width=80,
            height=64,
            audio_sample_rate_hz=16000,
            audio_duration_s=3.5,
            roi=(1, 2, 70, 60),
        ),
        Scan("b", "p2", _touch(tmp_path / "b.avi")),
    ]
    out = write_manifest(tmp_path / "manifest.csv", scans, extra=pd.DataFrame({"label": ["liver", ""]}))
    raw = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert raw.loc[0, "video_path"] == "videos/a.mp4" and raw.loc[0, "roi"] == "1,2,70,60"
    m = read_manifest(out)
    assert m.scans[0] == Scan("a", "p1", v.resolve(), w.resolve(), 0.5, 25.0, 100, 80, 64, 16000, 3.5, (1, 2, 70, 60))
    assert m.scans[1].audio_path is None and m.scans[1].roi is None and m.scans[1].fps is None
    assert list(m.table["label"]) == ["liver", ""]
    assert m.scan("b").subject_id == "p2"


def test_missing_columns_duplicates_and_missing_files(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("scan_id,video_path\na,a.mp4\n")
    with pytest.raises(InputError, match=r"m.csv: manifest is missing column\(s\) subject_id"):
        read_manifest(p)
    p.write_text("scan_id,subject_id,video_path\na,p,a.mp4\na,p,b.mp4\n")
    with pytest.raises(InputError, match="m.csv: duplicate scan_id"):
        read_manifest(p)
    p.write_text("scan_id,subject_id,video_path\na,p,nothere.mp4\n")
    with pytest.raises(InputError, match="nothere.mp4: video listed in .*m.csv .scan 'a'. not found"):
        read_manifest(p)
    assert read_manifest(p, check_files=False).scans[0].video_path == tmp_path / "nothere.mp4"
    p.write_text("scan_id,subject_id,video_path,fps\na,p,a.mp4,fast\n")
    with pytest.raises(InputError, match="m.csv row 2: column fps: 'fast' is not a number"):
        read_manifest(p, check_files=False)
    with pytest.raises(InputError, match="duplicate scan_id"):
        write_manifest(tmp_path / "w.csv", [Scan("x", "p", Path("a")), Scan("x", "p", Path("b"))])
    assert not (tmp_path / "w.csv").exists()


def test_parse_roi():
    assert parse_roi("1,2,30,40") == (1, 2, 30, 40)
    assert parse_roi("") is None and parse_roi(float("nan")) is None
    with pytest.raises(InputError, match="needs 0 <= x0 < x1"):
        parse_roi("5 5 2 9", "m.csv")
