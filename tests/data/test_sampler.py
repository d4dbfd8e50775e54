import numpy as np
import pytest

from sonotell.data.sampler import ClipSampler
from sonotell.types import Word
from tests.data.cache_helpers import cache_from_arrays


@pytest.fixture
def cache(tmp_path):
    # frame i is filled with the value i; audio sample n holds n, so windows are checkable exactly
    frames = np.repeat(np.arange(50, dtype=np.uint8)[:, None, None], 12 * 16, axis=1).reshape(50, 12, 16)
    return cache_from_arrays(
        tmp_path / "c",
        frames,
        fps=10.0,
        audio=np.arange(8000 * 6, dtype=np.float32),
        audio_rate_hz=8000,
        audio_offset_s=0.5,
    )


def test_frames_around_t_with_stride_and_edge_repeat(cache):
    s = ClipSampler(cache, n_frames=4, frame_stride=3, audio_before_s=0.25, audio_after_s=0.25, sample_rate_hz=8000)
    assert list(s.frame_indices(2.05)) == [14, 17, 20, 23]  # floor(2.05 * 10) = 20; offsets -2..1
    clip = s.sample(2.05)
    assert clip.frames.shape == (4, 12, 16) and clip.frames.dtype == np.float32
    np.testing.assert_allclose(clip.frames[:, 0, 0] * 255, [14, 17, 20, 23], atol=1e-4)
    assert list(s.frame_indices(0.0)) == [0, 0, 0, 3]
    assert list(s.frame_indices(4.95)) == [43, 46, 49, 49]
    np.testing.assert_allclose(s.frames(4.95)[:, 0, 0] * 255, [43, 46, 49, 49], atol=1e-4)


def test_audio_window_respects_offset_and_zero_pads(cache):
    s = ClipSampler(cache, n_frames=1, audio_before_s=0.5, audio_after_s=0.25, sample_rate_hz=8000)
    a = s.audio(2.0)  # video [1.5, 2.25] = audio [1.0, 1.75] -> samples 8000..13999
    assert len(a) == 6000 and a[0] == 8000 and a[-1] == 13999
    early = s.audio(0.25)  # video [-0.25, 0.5] = audio [-0.75, 0.0]: all before the recording
    assert not early.any()
    edge = s.audio(0.75)  # audio [-0.25, 0.5]: 2000 zeros, then samples 0..3999
    assert not edge[:2000].any() and edge[2000] == 0 and edge[2001] == 1 and edge[-1] == 3999
    late = s.audio(6.25)  # audio [5.25, 6.0]: the track ends at 6.0 s exactly
    assert late[0] == 42000 and late[-1] == 47999
    assert not s.audio(7.0)[-1]


def test_resampling_resizing_and_transcript(cache):
    words = [Word("lots", 1.0, 1.2), Word("of", 1.2, 1.3), Word("b-lines", 1.35, 1.8), Word("later", 3.0, 3.2)]
    s = ClipSampler(
        cache, n_frames=2, size=(6, 8), audio_before_s=0.5, audio_after_s=0.5, sample_rate_hz=16000, words=words
    )
    clip = s(1.5, label="b_lines", labels=("b_lines",))
    assert clip.frames.shape == (2, 6, 8) and clip.audio.shape == (16000,) and clip.sample_rate_hz == 16000
    assert clip.text == "lots of b-lines" and clip.label == "b_lines" and clip.subject_id == "p"
    # window [1.0, 2.0] video = [0.5, 1.5] audio; its 16 kHz sample 8000 is audio time 1.0 s = 8 kHz sample 8000
    assert clip.audio[8000] == pytest.approx(8000.0, rel=1e-3)


def test_bad_arguments(cache):
    with pytest.raises(ValueError):
        ClipSampler(cache, n_frames=0)
    with pytest.raises(ValueError):
        ClipSampler(cache, audio_before_s=0, audio_after_s=0)


def test_words_in_window_uses_word_midpoints():
    from sonotell.data.sampler import words_in_window
    from sonotell.types import Word

    words = [Word("liver", 1.0, 1.4), Word("kidney", 2.0, 2.6)]
    assert words_in_window(words, 0.9, 2.2) == "liver"
    assert words_in_window(words, 0.9, 2.3) == "liver kidney"
    assert words_in_window([], 0.0, 9.0) == ""
