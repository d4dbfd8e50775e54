"""Audio-guided localisation: audio windows on the right clock, maps per frame, overlay video, CLI."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from sonotell.errors import ConfigError
from sonotell.eval.localisation import pointing_game
from sonotell.io.video import probe_video
from sonotell.methods import localise as Lz
from sonotell.models.registry import register_model
from sonotell.train import save_model_checkpoint
from tests.conftest import write_video

TOY = "toy_localiser_test"
NO_MAP = "toy_no_map_test"


class ToyLocaliser(nn.Module):
    """Response = local brightness x speech RMS: bright where the frame is, loud when spoken."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))
        self.seen = []

    def localisation_map(self, frames, audio):
        self.seen.append((tuple(frames.shape), tuple(audio.shape)))
        energy = audio.pow(2).mean(dim=1).sqrt()
        vis = F.avg_pool2d(frames.mean(dim=1, keepdim=True), 8)[:, 0]
        return self.gain * vis * energy[:, None, None]


@register_model(TOY)
def _toy(**_):
    return ToyLocaliser()


@register_model(NO_MAP)
def _no_map(**_):
    return nn.Linear(2, 2)


def _scan(tmp_path, fps=10, n=20):
    frames = np.full((n, 64, 64), 20, np.uint8)
    for i in range(n):
        x = 4 + 2 * i
        frames[i, 10:22, x : x + 12] = 230  # a bright blob moving right
    video = write_video(tmp_path / "scan.mp4", frames, fps=fps)
    sr = 16000
    wav = np.zeros(2 * sr, np.float32)
    wav[sr:] = 0.3 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr)  # speech only in the 2nd second
    sf.write(tmp_path / "scan.wav", wav, sr)
    return video, tmp_path / "scan.wav", frames


def test_audio_window_pads_and_aligns():
    wav = np.arange(10, dtype=np.float32)
    assert Lz.audio_window(wav, 10, 0.1, 0.2, 0.2).tolist() == [0, 0, 1, 2]
    assert Lz.audio_window(wav, 10, 0.9, 0.1, 0.2).tolist() == [8, 9, 0]


def test_maps_follow_the_speech_and_the_blob(tmp_path):
    video, wav, frames = _scan(tmp_path)
    model = ToyLocaliser()
    res = Lz.localise_video(video, wav, model, size=(64, 64), window_s=(0.2, 0.2), batch_size=8)
    assert res.maps.shape == (20, 8, 8) and res.frames.shape == (20, 64, 64) and res.fps == 10
    peak = res.maps.reshape(20, -1).max(axis=1)
    assert np.all(peak[:8] < 1e-6)  # frames 0-0.7 s: their +-0.2 s windows are silent
    assert np.all(peak[13:] > 0.01)  # 1.3 s on: speech
    for i in range(13, 20):
        mask = np.zeros((64, 64), bool)
        x = 4 + 2 * i
        mask[10:22, x : x + 12] = True
        assert pointing_game(res.maps[i], mask, tolerance_px=0)
    assert model.seen[0] == ((8, 1, 64, 64), (8, 6400))


def test_clips_and_subsampling(tmp_path):
    video, wav, _ = _scan(tmp_path)
    model = ToyLocaliser()
    res = Lz.localise_video(video, wav, model, size=(32, 32), n_frames=3, every=5)
    assert res.frame_indices == [0, 5, 10, 15] and res.fps == 2
    assert model.seen[0][0] == (4, 3, 32, 32)


def test_overlay_video_and_cli(tmp_path):
    video, wav, _ = _scan(tmp_path)
    res = Lz.localise_video(video, wav, ToyLocaliser(), size=(64, 64))
    out = Lz.render_overlay(res, tmp_path / "o.mp4")
    info = probe_video(out)
    assert (info.n_frames, info.width, info.height) == (20, 64, 64)
    ckpt = save_model_checkpoint(tmp_path / "toy.pt", ToyLocaliser(), TOY, {"model": {"name": TOY}})
    from sonotell.cli import app

    r = CliRunner().invoke(
        app,
        [
            "localise",
            str(video),
            "--audio",
            str(wav),
            "--out",
            str(tmp_path / "cli.mp4"),
            "--checkpoint",
            str(ckpt),
            "--size",
            "32",
        ],
    )
    assert r.exit_code == 0, r.output
    assert probe_video(tmp_path / "cli.mp4").n_frames == 20


def test_checkpoint_without_localisation_map_is_refused(tmp_path):
    ckpt = save_model_checkpoint(tmp_path / "nomap.pt", nn.Linear(2, 2), NO_MAP, {"model": {"name": NO_MAP}})
    with pytest.raises(ConfigError, match="no localisation map"):
        Lz.load_localiser(ckpt)


class _FakeBench:
    """The parts of ``Benchmark`` the scorer reads: one scan, two spoken organs, masks."""

    def __init__(self, tmp_path):
        from sonotell.types import Scan

        frames = np.full((20, 64, 64), 20, np.uint8)
        frames[:, 8:24, 8:24] = 230  # the "liver": bright
        frames[:, 40:56, 40:56] = 60  # the "kidney": dim
        video = write_video(tmp_path / "b.mp4", frames, fps=10)
        sr = 16000
        wav = (0.3 * np.sin(2 * np.pi * 300 * np.arange(2 * sr) / sr)).astype(np.float32)
        sf.write(tmp_path / "b.wav", wav, sr)
        self.scans = [Scan("s0", "p0", video, tmp_path / "b.wav", 0.0, 10.0, 20, 64, 64)]
        self.mask_classes = ["background", "liver", "kidney"]
        self._mask = np.zeros((64, 64), np.uint8)
        self._mask[8:24, 8:24] = 1
        self._mask[40:56, 40:56] = 2

    def scan(self, scan_id):
        return self.scans[0]

    def truth(self, scan_id):
        return {
            "masks": {str(i): f"masks/{i}.png" for i in range(0, 20, 2)},
            "events": [
                {"label": "liver", "term": "liver", "start_s": 1.0, "end_s": 1.4, "negated": False},
                {"label": "kidney", "term": "kidney", "start_s": 0.2, "end_s": 0.5, "negated": False},
                {"label": "kidney", "term": "kidney", "start_s": 1.5, "end_s": 1.7, "negated": True},
                {"label": "aorta", "term": "aorta", "start_s": 0.6, "end_s": 0.8, "negated": False},
            ],
        }

    def mask(self, scan_id, frame_index):
        return self._mask if frame_index % 2 == 0 else None


def test_spoken_targets_and_scores_on_a_worked_example(tmp_path):
    bench = _FakeBench(tmp_path)
    targets = Lz.spoken_targets(bench, "s0", fps=10.0)
    # masks on even frames (10 fps): liver said 1.0-1.4 s (mid 1.2) -> frame 12; kidney said
    # 0.2-0.5 s (mid .35) -> frame 4 (.05 s away; frame 2 is .15 s away); the negated kidney and
    # the aorta (no mask class) are skipped
    assert [(t["label"], t["frame_index"], t["class_index"]) for t in targets] == [("liver", 12, 1), ("kidney", 4, 2)]
    res = Lz.score_localisation(bench, ToyLocaliser(), size=(64, 64), tolerance_px=0)
    # the toy response is brightness: it points at the liver whatever was said
    assert res["n_frames"] == 2 and res["pointing_game"] == 0.5
    assert res["per_class"]["liver"]["pointing_game"] == 1.0 and res["per_class"]["kidney"]["pointing_game"] == 0.0
    assert 0.0 <= res["iou"] <= 1.0 and 0.0 <= res["random_map_pointing_game"] <= 1.0


def test_paste_map_puts_the_crop_map_back_in_its_box():
    heat = np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)
    full = Lz.paste_map(heat, (4, 2, 8, 6), (8, 10))
    assert full.shape == (8, 10)
    assert np.all(full[:2] == 0.0) and np.all(full[:, :4] == 0.0) and np.all(full[6:] == 0.0)
    # 2 -> 4 bilinear (half-pixel centres): the top-right cell's pixel takes the full 1.0
    assert np.unravel_index(int(np.argmax(full)), full.shape) == (2, 7) and full[2, 7] == 1.0


def test_scoring_crops_to_the_roi_and_checks_the_other_speech(tmp_path):
    from dataclasses import replace

    bench = _FakeBench(tmp_path)
    # the ROI keeps only the dim "kidney" quadrant: the toy's brightest cell is then the kidney,
    # pasted back at the kidney's place in the full frame
    bench.scans = [replace(bench.scans[0], roi=(32, 32, 64, 64))]
    model = ToyLocaliser()
    res = Lz.score_localisation(bench, model, size=(32, 32), tolerance_px=0)
    assert model.seen[0][0] == (2, 1, 32, 32)
    assert res["per_class"]["kidney"]["pointing_game"] == 1.0 and res["per_class"]["liver"]["pointing_game"] == 0.0
    full = Lz.score_localisation(bench, ToyLocaliser(), size=(64, 64), tolerance_px=0, roi=None)
    assert full["per_class"]["liver"]["pointing_game"] == 1.0 and full["per_class"]["kidney"]["pointing_game"] == 0.0
    # the toy ignores what is said: with the other organ's speech it points at the same place
    assert res["n_control"] == 2 and res["other_speech_pointing_game"] == res["pointing_game_control_frames"] == 0.5


class KeywordToy(nn.Module):
    """A keyword localiser: term 0 ("liver") answers brightness, term 1 ("kidney") dimness."""

    audio_source = "keywords"
    term_labels = ["liver", "kidney"]

    def said_terms(self, speech):
        if isinstance(speech, (list, tuple)):
            return torch.tensor([[float("liver" in s), float("kidney" in s)] for s in speech])
        return torch.as_tensor(speech, dtype=torch.float32)

    def localisation_map(self, frames, speech):
        w = self.said_terms(speech)
        vis = F.avg_pool2d(frames.mean(dim=1, keepdim=True), 8)[:, 0]
        liver, kidney = vis, -(vis - 60 / 255).abs()
        return w[:, 0, None, None] * liver + w[:, 1, None, None] * kidney


def test_clips_around_centres_the_clip_and_clamps_at_the_ends():
    frames = np.arange(5)[:, None, None] * np.ones((1, 2, 2), int)
    clips = Lz.clips_around(frames, [0, 2, 4], n_frames=3, frame_stride=2)
    assert clips.shape == (3, 3, 2, 2)
    assert clips[:, :, 0, 0].tolist() == [[0, 0, 2], [0, 2, 4], [2, 4, 4]]
    assert Lz.clips_around(frames, [3], n_frames=1)[:, :, 0, 0].tolist() == [[3]]


def test_keyword_scoring_reads_the_spotted_terms_and_checks_the_other_speech(tmp_path):
    from sonotell.types import Word

    bench = _FakeBench(tmp_path)
    model = KeywordToy()
    with pytest.raises(ConfigError, match="spotted terms"):
        Lz.score_localisation(bench, model, size=(64, 64), roi=None)
    # spotted: liver at 1.1-1.3 s (mid 1.2, in the liver target's window); the kidney (said
    # 0.2-0.5 s) was missed by the speech pipeline
    spotted = {"s0": [Word("liver", 1.1, 1.3)]}
    res = Lz.score_localisation(bench, model, size=(64, 64), tolerance_px=0, roi=None, transcripts=spotted)
    assert res["n_frames"] == 2 and res["spotted_fraction"] == 0.5
    assert res["per_class"]["liver"]["pointing_game"] == 1.0
    assert res["per_class"]["kidney"]["pointing_game"] == 0.0  # nothing spotted: a flat map
    # the annotated term (diagnostic): both organs found
    assert res["oracle_term_pointing_game"] == 1.0 and res["n_oracle"] == 2
    # with the other target's speech the liver frame gets an empty window, the kidney frame "liver"
    assert res["other_speech_pointing_game"] == 0.0
    spotted["s0"].append(Word("kidney", 0.3, 0.4))
    res = Lz.score_localisation(bench, model, size=(64, 64), tolerance_px=0, roi=None, transcripts=spotted)
    assert res["pointing_game"] == 1.0 and res["other_speech_pointing_game"] == 0.0
    assert Lz.summarise_localisation(res["rows"])["pointing_game"] == 1.0


def test_localise_video_feeds_a_keyword_model_the_spotted_terms(tmp_path):
    from sonotell.types import Word

    video, wav, _ = _scan(tmp_path)
    model = KeywordToy()
    seen = []
    original = model.localisation_map
    model.localisation_map = lambda frames, speech: seen.append(list(speech)) or original(frames, speech)
    res = Lz.localise_video(video, wav, model, size=(64, 64), every=5, terms=[Word("liver", 1.0, 1.2)])
    # frames 0, 5, 10, 15 at 10 fps: only frame 10 (1.0 s) has the liver's midpoint (1.1 s) within +-0.3 s
    assert seen == [["", "", "liver", ""]]
    assert np.all(res.maps[0] == 0) and res.maps[2].max() > 0
    with pytest.raises(ConfigError, match="inline lexicon"):
        Lz.localise_video(video, wav, KeywordToy(), size=(64, 64), every=5)
