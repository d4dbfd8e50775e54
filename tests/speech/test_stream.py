import numpy as np
import pytest
import soundfile as sf

from sonotell.errors import InputError
from sonotell.speech.stream import StreamStats, iter_audio_chunks


def test_chunks_cover_the_file_at_the_target_rate(tmp_path):
    x = np.random.default_rng(0).normal(0, 0.1, (44100 * 3 + 123, 2)).astype(np.float32)
    sf.write(str(tmp_path / "a.wav"), x, 44100)
    stats = StreamStats()
    chunks = list(iter_audio_chunks(tmp_path / "a.wav", 16000, chunk_s=1.0, stats=stats))
    assert [len(c) for c in chunks[:-1]] == [16000, 16000]
    assert sum(map(len, chunks)) == pytest.approx((44100 * 3 + 123) * 16000 / 44100, abs=2)
    assert stats.channels == 2 and stats.native_rate_hz == 44100 and "mixed down" in stats.notes[0]


def test_telephone_rate_and_clipping_are_noted(tmp_path):
    x = np.clip(np.sin(np.arange(8000) / 3) * 2, -1, 1).astype(np.float32)
    sf.write(str(tmp_path / "t.wav"), x, 8000)
    stats = StreamStats()
    out = np.concatenate(list(iter_audio_chunks(tmp_path / "t.wav", 16000, 10.0, stats)))
    assert len(out) == pytest.approx(16000, abs=2)
    assert "telephone" in stats.notes[0] and stats.clipped_fraction > 0.3


def test_a_long_file_streams_in_bounded_chunks(tmp_path):
    path = tmp_path / "long.flac"
    with sf.SoundFile(str(path), "w", 8000, 1, format="FLAC") as f:  # 10 minutes written block by block
        block = (0.1 * np.sin(np.arange(8000 * 60) / 5)).astype(np.float32)
        for _ in range(10):
            f.write(block)
    sizes = [len(c) for c in iter_audio_chunks(path, 16000, chunk_s=120.0)]
    assert max(sizes) == 16000 * 120 and sum(sizes) == pytest.approx(600 * 16000, abs=4)


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        list(iter_audio_chunks(tmp_path / "x.wav"))
    sf.write(str(tmp_path / "odd.wav"), np.zeros(100, np.float32), 12345)
    with pytest.raises(InputError, match="unsupported sample rate 12345"):
        list(iter_audio_chunks(tmp_path / "odd.wav"))
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match="empty"):
        list(iter_audio_chunks(tmp_path / "empty.wav"))
    (tmp_path / "v.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="v.mp4"):
        list(iter_audio_chunks(tmp_path / "v.mp4"))
