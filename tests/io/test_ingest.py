import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sonotell.errors import ConfigError, InputError
from sonotell.io.ingest import discover, ingest, read_sidecar
from sonotell.io.manifest import read_manifest
from tests.conftest import write_video


@pytest.fixture
def scan_dir(tmp_path, moving_frames, tone):
    """Three good scans and seven bad files, each bad in one documented way (20 frames at 10 fps = 2 s)."""
    wav, sr = tone
    speech = np.tile(wav, 2)
    d = tmp_path / "scans"
    write_video(d / "good1.mp4", moving_frames, fps=10)
    sf.write(d / "good1.wav", speech, sr)
    write_video(d / "good2.mp4", moving_frames, fps=10, audio=speech, sample_rate_hz=sr)  # its own track
    write_video(d / "sub" / "good3.avi", moving_frames, fps=10)
    sf.write(d / "sub" / "good3.flac", speech, sr)
    (d / "empty.mp4").write_bytes(b"")
    (d / "junk.mov").write_bytes(b"\x00junk" * 500)
    whole = (d / "good1.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(whole[: len(whole) // 2])  # a copy cut short
    sf.write(d / "truncated.wav", speech, sr)
    write_video(d / "silent.mp4", moving_frames, fps=10)
    sf.write(d / "silent.wav", np.zeros(2 * sr, np.float32), sr)
    write_video(d / "noaudio.mp4", moving_frames, fps=10)
    write_video(d / "short.mp4", moving_frames, fps=10)
    sf.write(d / "short.wav", speech[: int(0.3 * sr)], sr)
    write_video(d / "rate.mp4", moving_frames, fps=10)
    sf.write(d / "rate.wav", np.resize(speech, 2 * 12345), 12345)
    (d / "notes.txt").write_text("not a video")
    pd.DataFrame({"file": ["good1.mp4", "good2"], "subject_id": ["p1", "p2"], "audio_offset_s": ["0.2", ""]}).to_csv(
        d / "metadata.csv", index=False
    )
    return d


EXPECTED_PROBLEMS = {
    "empty.mp4": "video file is empty",
    "junk.mov": "corrupt or unreadable video",
    "truncated.mp4": "corrupt or unreadable video",
    "silent.wav": "audio is silent",
    "noaudio.mp4": "no speech: no .wav/.flac/.ogg file beside it and no audio track",
    "short.wav": "audio much shorter than the video: it ends at 0.3 s, the video lasts 2.0 s",
    "rate.wav": "unsupported sample rate 12345 Hz",
}


def _by_file(problems):
    return {str(p.path).rsplit("/", 1)[-1]: p.problem for p in problems}


def test_discover_pairs_speech_beside_videos(scan_dir):
    pairs = {v.name: (a.name if a else None) for v, a in discover(scan_dir)}
    assert pairs["good1.mp4"] == "good1.wav" and pairs["good2.mp4"] is None and pairs["good3.avi"] == "good3.flac"
    assert "notes.txt" not in pairs and len(pairs) == 10


def test_ingest_keeps_good_scans_and_reports_every_bad_file(scan_dir, tmp_path):
    result = ingest(scan_dir, tmp_path / "manifest.csv", workers=1)
    assert [s.scan_id for s in result.scans] == ["good1", "good2", "good3"]
    problems = _by_file(result.problems)
    assert set(problems) == set(EXPECTED_PROBLEMS)
    for name, text in EXPECTED_PROBLEMS.items():
        assert problems[name].startswith(text), (name, problems[name])
    assert all("\n" not in str(p) for p in result.problems)
    s1, s2, s3 = read_manifest(tmp_path / "manifest.csv").scans
    assert (s1.subject_id, s1.audio_offset_s, s1.fps, s1.n_frames, s1.width, s1.height) == ("p1", 0.2, 10.0, 20, 80, 64)
    assert s1.audio_sample_rate_hz == 16000 and s1.audio_duration_s == pytest.approx(2.0)
    assert s1.roi is not None and s1.roi[1] >= 6 and s1.roi[3] == 64  # the static header bar is cropped away
    assert s2.audio_path is None and s2.subject_id == "p2" and s2.audio_duration_s == pytest.approx(2.0, abs=0.1)
    assert s3.subject_id == "good3"  # no metadata: the scan is its own subject


def test_rerun_skips_unchanged_files_and_reprobes_changed_ones(scan_dir, tmp_path, tone):
    out = tmp_path / "m.csv"
    ingest(scan_dir, out, workers=1)
    again = ingest(scan_dir, out, workers=1)
    assert again.reused == 10 and len(again.scans) == 3 and len(again.problems) == 7
    wav, sr = tone
    sf.write(scan_dir / "short.wav", np.tile(wav, 2), sr)  # fixed
    fixed = ingest(scan_dir, out, workers=1)
    assert fixed.reused == 9 and "short" in [s.scan_id for s in fixed.scans] and len(fixed.problems) == 6
    state = json.loads(out.with_name("m.csv.state.json").read_text())
    assert len(state["files"]) == 10


def test_sidecar_json_roi_and_duplicate_ids(scan_dir, tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(
        json.dumps(
            {
                "good1.mp4": {"scan_id": "same", "subject_id": "a", "roi": "0,10,80,64"},
                "sub/good3.avi": {"scan_id": "same", "subject_id": "b"},
            }
        )
    )
    assert read_sidecar(meta)["good1.mp4"]["roi"] == [0, 10, 80, 64]
    result = ingest(scan_dir, tmp_path / "m.csv", metadata=meta, workers=1)
    by_id = {s.scan_id: s for s in result.scans}
    assert by_id["same"].roi == (0, 10, 80, 64) and by_id["same"].subject_id == "a"
    assert any("duplicate scan id 'same'" in str(p) and "good3.avi" in str(p) for p in result.problems)


def test_ray_engine_missing_is_a_clear_error(scan_dir, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the optional extra were not installed
    with pytest.raises(ConfigError, match=r"needs Ray, an optional extra: pip install 'sonotell\[ray\]'"):
        ingest(scan_dir, tmp_path / "m.csv", engine="ray")
    with pytest.raises(InputError, match="not a folder"):
        ingest(tmp_path / "nope", tmp_path / "m.csv")


def test_cli_ingest_with_process_pool_and_cache(scan_dir, tmp_path):
    from sonotell.cli import app
    from sonotell.io.cache import FrameCache

    res = CliRunner().invoke(
        app,
        [
            "ingest",
            str(scan_dir),
            "--out",
            str(tmp_path / "m.csv"),
            "-j",
            "2",
            "--cache",
            str(tmp_path / "cache"),
            "--size",
            "32x32",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.count("bad file:") == 7 and "junk.mov: corrupt or unreadable video" in res.output
    cache = FrameCache.open(tmp_path / "cache" / "good2_32x32")
    assert cache.n_frames == 20 and cache.size == (32, 32) and len(cache.audio()) == pytest.approx(32000, abs=1600)
    empty = tmp_path / "emptydir"
    empty.mkdir()
    assert CliRunner().invoke(app, ["ingest", str(empty), "--out", str(tmp_path / "e.csv")]).exit_code == 1


def write_dicom_cine(path, frames, fps):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "US", "anon"
    ds.Rows, ds.Columns, ds.NumberOfFrames = frames.shape[1], frames.shape[2], len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime = 1000.0 / fps
    ds.PixelData = frames.astype(np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_cine_with_speech_beside_it(tmp_path, moving_frames, tone):
    wav, sr = tone
    d = tmp_path / "dcm"
    d.mkdir()
    write_dicom_cine(d / "cine.dcm", moving_frames, fps=10)
    sf.write(d / "cine.wav", np.tile(wav, 2), sr)
    (scan,) = ingest(d, tmp_path / "m.csv", workers=1).scans
    # lossless pixels: the static header (rows 0-5) and the black rows 6-7 are cut exactly
    assert (scan.fps, scan.n_frames, scan.width, scan.height, scan.roi) == (10.0, 20, 80, 64, (0, 8, 80, 64))


@pytest.mark.slow
@pytest.mark.xdist_group("ray")
def test_ray_engine_gives_the_same_manifest_and_caches(scan_dir, tmp_path, ray_cluster):
    from sonotell.io.ingest import build_caches

    local = ingest(scan_dir, tmp_path / "local.csv", workers=1)
    distributed = ingest(scan_dir, tmp_path / "ray.csv", engine="ray", workers=2)
    assert distributed.scans == local.scans
    assert sorted(map(str, distributed.problems)) == sorted(map(str, local.problems))
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert build_caches(local.scans, tmp_path / "cache_local", size=(32, 32), workers=1) == []
    assert build_caches(local.scans, tmp_path / "cache_ray", size=(32, 32), engine="ray") == []
    cache_local = tmp_path / "cache_local"
    files = sorted(p.relative_to(cache_local) for p in cache_local.rglob("*") if p.is_file())
    files = [f for f in files if not f.name.endswith(".lock")]
    assert len([f for f in files if f.name == "frames.u8"]) == len(local.scans)
    for f in files:
        assert (tmp_path / "cache_ray" / f).read_bytes() == (tmp_path / "cache_local" / f).read_bytes(), f


def test_build_caches_reports_a_scan_it_cannot_decode(scan_dir, tmp_path):
    from sonotell.io.ingest import build_caches
    from sonotell.types import Scan

    good = ingest(scan_dir, tmp_path / "m.csv", workers=1).scans[0]
    missing = Scan("gone", "p9", tmp_path / "gone.mp4", fps=10.0, n_frames=20)
    problems = build_caches([good, missing], tmp_path / "cache", size=(32, 32), workers=1)
    assert len(problems) == 1 and "gone.mp4" in str(problems[0])
    assert (tmp_path / "cache" / f"{good.scan_id}_32x32" / "frames.u8").exists()


def test_probe_scan_duration_checks_use_the_offset(tmp_path, moving_frames, tone):
    from sonotell.io.ingest import IngestOptions, probe_scan

    wav, sr = tone
    video = write_video(tmp_path / "v.mp4", moving_frames, fps=10)  # 2.0 s
    sf.write(tmp_path / "long.wav", np.tile(wav, 5), sr)  # 5.0 s
    with pytest.raises(
        InputError, match=r"long.wav: audio much longer than the video: it spans 0.0-5.0 s, the video lasts 2.0 s"
    ):
        probe_scan(video, tmp_path / "long.wav", "v", "p")
    sf.write(tmp_path / "ok.wav", np.tile(wav, 2), sr)  # 2.0 s
    assert (
        probe_scan(video, tmp_path / "ok.wav", "v", "p", audio_offset_s=0.9).audio_offset_s == 0.9
    )  # ends at 2.9 s: within 1 s
    with pytest.raises(InputError, match="audio much longer"):
        probe_scan(video, tmp_path / "ok.wav", "v", "p", audio_offset_s=1.5)
    strict = IngestOptions(max_duration_mismatch=0.1, min_mismatch_s=0.1)
    with pytest.raises(InputError, match="audio much shorter"):
        probe_scan(video, tmp_path / "ok.wav", "v", "p", audio_offset_s=-0.5, options=strict)


def test_metadata_for_missing_videos_is_reported(scan_dir, tmp_path, caplog):
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"file": ["good1.mp4", "gone.mp4"], "subject_id": ["a", "b"]}).to_csv(meta, index=False)
    with caplog.at_level("WARNING", logger="sonotell.io.ingest"):
        result = ingest(scan_dir, tmp_path / "m.csv", metadata=meta, workers=1)
    assert "metadata entries match no video" in caplog.text and "gone.mp4" in caplog.text
    assert {s.scan_id: s.subject_id for s in result.scans}["good1"] == "a"
