"""Item 6: a scan id never names a file outside the output or cache folder."""

from __future__ import annotations

import numpy as np
import pytest

from sonotell.errors import InputError
from sonotell.io.audio import save_audio
from sonotell.io.cache import FrameCache
from sonotell.io.ingest import ingest
from sonotell.io.manifest import read_manifest, scan_id_problem
from sonotell.speech.batch import labels_paths
from sonotell.types import Scan
from tests.conftest import write_video

BAD_IDS = ["/tmp/x", "../../x", "a/b", "a\\b", "..", ".hidden", "a\x00b", "line\nbreak", "", "x" * 201]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_unsafe_scan_ids_are_refused(bad, tmp_path):
    assert scan_id_problem(bad) is not None
    with pytest.raises(InputError, match="refused"):
        labels_paths(tmp_path, bad)
    with pytest.raises(InputError, match="refused"):
        FrameCache.path_for(Scan(bad, "p", tmp_path / "v.mp4"), tmp_path, (8, 8))


def test_ordinary_ids_pass():
    for ok in ("s1", "patient 3_scan-2", "Lebre_0001", "a.b"):
        assert scan_id_problem(ok) is None


def test_manifest_row_with_escaping_id_is_named(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("scan_id,subject_id,video_path\nok,p,v.mp4\n../../x,p,v.mp4\n")
    with pytest.raises(InputError, match=r"m.csv row 3: scan_id '../../x' refused"):
        read_manifest(tmp_path / "m.csv")


def test_sidecar_scan_id_cannot_escape_out_or_cache(tmp_path, moving_frames, tone):
    wav, sr = tone
    scans = tmp_path / "scans"
    for name in ("a", "b"):
        write_video(scans / f"{name}.mp4", moving_frames, fps=10)
        save_audio(scans / f"{name}.wav", np.tile(wav, 2)[: 2 * sr], sr)
    escape = tmp_path / "escaped"
    (scans / "metadata.csv").write_text(f"file,scan_id,subject_id\na.mp4,{escape},p1\nb.mp4,b,p2\n")
    result = ingest(scans, tmp_path / "out" / "manifest.csv", workers=1)
    assert [s.scan_id for s in result.scans] == ["b"]
    assert any("refused" in str(p) and "a.mp4" in str(p) for p in result.problems)
    assert not list(tmp_path.glob("escaped*"))
