from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sonotell.errors import InputError
from sonotell.io.audio import load_audio, save_audio
from sonotell.io.video import probe_video, read_frames
from tests.conftest import write_video


def test_mp4_roundtrip_counts_frames_and_fps(tmp_path, moving_frames):
    path = write_video(tmp_path / "a.mp4", moving_frames, fps=25)
    info = probe_video(path)
    assert (info.n_frames, info.width, info.height, info.fps) == (20, 80, 64, 25.0)
    frames = read_frames(path, size=(32, 40))
    assert frames.shape == (20, 32, 40) and frames.dtype == np.uint8
    # the codec is lossy; the static header must survive within a few grey levels
    assert abs(int(read_frames(path)[5, 2, 40]) - 200) < 8


def test_video_audio_track_is_read(tmp_path, moving_frames, tone):
    wav, sr = tone
    path = write_video(tmp_path / "b.mp4", moving_frames, audio=np.tile(wav, 1)[: int(0.8 * sr)], sample_rate_hz=sr)
    assert probe_video(path).has_audio
    audio, rate = load_audio(path, sample_rate_hz=8000)
    assert rate == 8000 and abs(len(audio) / 8000 - 0.8) < 0.1


def test_bad_inputs_name_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.mp4: video file is empty"):
        probe_video(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError, match="junk.mp4: corrupt or unreadable video"):
        probe_video(junk)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    with pytest.raises(InputError, match="silent.wav: audio is silent"):
        load_audio(silent)
    with pytest.raises(InputError, match="missing.wav: audio file not found"):
        load_audio(tmp_path / "missing.wav")


def test_audio_resample_and_atomic_save(tmp_path, tone):
    wav, sr = tone
    out = save_audio(tmp_path / "t.wav", wav, sr)
    back, rate = load_audio(out, sample_rate_hz=8000)
    assert rate == 8000 and len(back) == 8000
    assert not list(Path(tmp_path).glob(".*tmp*"))  # no temporary left behind
