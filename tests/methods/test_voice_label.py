import json

import numpy as np
import pytest
import torch

from sonotell.methods.voice_label import (
    Samples,
    VoiceLabelDataset,
    bonmati_spectrogram,
    extract_samples,
    fit_to_length,
    frame_window,
    run_experiment,
)
from tests.conftest import write_video

SR = 16000


def test_fit_to_length_crops_centre_and_pads_both_sides():
    np.testing.assert_array_equal(fit_to_length(np.arange(10), 4), [3, 4, 5, 6])
    np.testing.assert_array_equal(fit_to_length(np.ones(3), 6), [0, 1, 1, 1, 0, 0])


@pytest.mark.parametrize("seconds,sr", [(0.4, 16000), (1.0, 16000), (2.5, 16000), (1.0, 44100), (0.7, 22050)])
def test_bonmati_spectrogram_is_1024_by_66_for_any_length(seconds, sr):
    wav = np.random.default_rng(0).normal(0, 0.1, int(seconds * sr)).astype(np.float32)
    spec = bonmati_spectrogram(wav, sr)
    assert spec.shape == (1024, 66) and np.isfinite(spec).all()
    assert abs(float(spec.mean())) < 1e-3 and abs(float(spec.std()) - 1) < 1e-3


def test_paper_geometry_at_44k_by_hand():
    # the paper's geometry at 44.1 kHz: 25 ms window = 1102 samples, 40 % overlap -> hop 661,
    # 1 + (44100 - 1102) // 661 = 66 frames; a 2046-point FFT -> 2046 // 2 + 1 = 1024 bins
    wav = np.random.default_rng(0).normal(0, 0.1, 44100).astype(np.float32)
    assert bonmati_spectrogram(wav, 44100).shape == (2046 // 2 + 1, 1 + (44100 - 1102) // 661) == (1024, 66)


def test_frame_window_centres_and_clamps():
    np.testing.assert_array_equal(frame_window(1.0, 25, 5, 25, 100), [23, 24, 25, 26, 27])
    np.testing.assert_array_equal(frame_window(1.0, 50, 3, 25, 100), [48, 50, 52])  # 25 fps from a 50 fps video
    np.testing.assert_array_equal(frame_window(0.0, 25, 3, 25, 2), [0, 0, 1])  # too few frames: edges repeat


def _samples():
    n = 8
    return Samples(
        frames=np.broadcast_to(
            np.arange(25, dtype=np.uint8)[None, :, None, None] * 10, (n, 25, 4, 4)
        ).copy(),  # frame k is 10 k
        spec=np.arange(n, dtype=np.float16)[:, None, None] * np.ones((1, 1024, 66), np.float16),
        label=np.array([0, 0, 0, 1, 1, 1, 2, 2]),
        subject=np.array(list("aabbccdd")),
        scan_id=np.array(list("aabbccdd")),
        time_s=np.zeros(n),
        term=np.array(["x"] * n),
        classes=["x", "y", "z"],
    )


def test_random_pairs_draw_voice_of_same_class_and_change():
    s = _samples()
    ds = VoiceLabelDataset(s, [0, 1, 2, 3, 4, 5], train=True, random_pairs=True)
    np.random.seed(0)
    voices = {int(ds[1]["spec"][0, 0]) for _ in range(30)}
    assert voices == {0, 1, 2}  # every class-0 training sample, never another class or a test sample
    fixed = VoiceLabelDataset(s, [0, 1, 2], train=False, random_pairs=True)
    assert int(fixed[1]["spec"][0, 0]) == 1  # at test time the voice is the one said with the image


def test_reduced_input_three_sorted_frames_fixed_at_test_time():
    s = _samples()
    ds = VoiceLabelDataset(s, [4], train=False, reduced_frames=3, seed=1)
    a, b = ds[0]["frames"], ds[0]["frames"]
    assert a.shape == (3, 4, 4) and torch.equal(a, b)
    order = [int(round(float(f[0, 0]) * 255)) // 10 for f in a]
    assert order == sorted(order) and len(set(order)) == 3


@pytest.fixture
def tiny_bench(tmp_path):
    """4 patients x 1 scan: class 'low' said as a 300 Hz tone, 'high' as 1500 Hz, 1 s apart."""
    import soundfile as sf

    from sonotell.data.format import write_bench_json, write_manifest

    root = tmp_path / "bench"
    rows = []
    rng = np.random.default_rng(0)
    for p in range(4):
        sid = f"p{p}"
        frames = rng.integers(0, 255, (75, 32, 32)).astype(np.uint8)
        write_video(root / "videos" / f"{sid}.mp4", frames, fps=25)
        t = np.arange(3 * SR) / SR
        wav = np.zeros_like(t)
        events = []
        for label, hz, start in [("low", 300, 0.3), ("high", 1500, 1.3), ("low", 300, 2.3)][: 2 + (p % 2)]:
            seg = (t >= start) & (t < start + 0.4)
            wav[seg] = 0.3 * np.sin(2 * np.pi * hz * t[seg])
            events.append(
                {
                    "label": label,
                    "term": label,
                    "start_s": start,
                    "end_s": start + 0.4,
                    "speaker": "A",
                    "negated": False,
                }
            )
        (root / "audio").mkdir(parents=True, exist_ok=True)
        sf.write(root / "audio" / f"{sid}.wav", wav.astype(np.float32), SR)
        (root / "truth").mkdir(exist_ok=True)
        (root / "truth" / f"{sid}.json").write_text(
            json.dumps(
                {
                    "scan_id": sid,
                    "subject_id": sid,
                    "label": "low",
                    "labels": "low",
                    "events": events,
                    "segments": [],
                    "masks": {},
                }
            )
        )
        rows.append(
            {
                "scan_id": sid,
                "subject_id": sid,
                "video_path": f"videos/{sid}.mp4",
                "audio_path": f"audio/{sid}.wav",
                "audio_offset_s": 0.0,
                "fps": 25,
                "n_frames": 75,
                "width": 32,
                "height": 32,
                "audio_sample_rate_hz": SR,
                "audio_duration_s": 3.0,
                "roi": "",
                "label": "low",
                "labels": "low",
                "voice": "tone",
                "voice_split": "train",
            }
        )
    write_manifest(root / "manifest.csv", rows)
    write_bench_json(
        root, name="tiny", classes=["low", "high"], label_names=[], mask_classes=["background"], config={}, seed=0
    )
    return root


def test_extract_samples_pairs_terms_with_frames(tiny_bench, tmp_path):
    from sonotell.data.format import load_benchmark

    s = extract_samples(
        load_benchmark(tiny_bench),
        {"size": [32, 32], "n_frames": 25, "fps": 25, "voice_window_s": 1.0},
        tmp_path / "cache",
    )
    assert len(s) == 10 and s.classes == ["low", "high"]
    assert s.frames.shape == (10, 25, 32, 32) and s.spec.shape == (10, 1024, 66)
    np.testing.assert_array_equal(s.label[:2], [0, 1])
    # the tone's energy sits in the right frequency bins: 300 Hz vs 1500 Hz at 16 kHz / 2046-pt FFT
    low, high = s.spec[0].astype(np.float32).mean(1), s.spec[1].astype(np.float32).mean(1)
    assert (
        abs(int(np.argmax(low)) - round(300 * 2046 / SR)) <= 2
        and abs(int(np.argmax(high)) - round(1500 * 2046 / SR)) <= 2
    )
    absent = extract_samples(
        load_benchmark(tiny_bench),
        {"size": [32, 32], "n_frames": 25, "fps": 25, "voice_window_s": 1.0, "classes": ["high"]},
        None,
    )
    assert absent.classes == ["high"] and set(absent.label.tolist()) == {0} and len(absent) == 4
    again = extract_samples(
        load_benchmark(tiny_bench),
        {"size": [32, 32], "n_frames": 25, "fps": 25, "voice_window_s": 1.0},
        tmp_path / "cache",
    )
    np.testing.assert_array_equal(again.frames, s.frames)  # read back from the cache


def test_run_experiment_writes_table_pooled_over_folds_and_resumes(tiny_bench, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    overrides = [
        "data.size=[32,32]",
        "train.max_epochs=2",
        "cv.k=2",
        "bootstrap.n_subsets=5",
        "bootstrap.subset_size=3",
        "gradcam.n_examples=1",
    ]
    md = run_experiment(
        tiny_bench,
        out,
        config="small",
        overrides=overrides,
        seed=0,
        variants=["image_voice", "voice", "pretrained_image"],
    )
    res = json.loads((out / "results.json").read_text())
    names = [r["variant"] for r in res["rows"]]
    assert names == ["image_voice", "voice", "pretrained_image"] and "skipped" in res["rows"][2]
    assert res["meta"]["n_samples"] == 10 and res["meta"]["n_patients"] == 4 and res["meta"]["cv"]["k"] == 2
    assert res["meta"]["majority_class_accuracy"] == pytest.approx(0.6)  # 6 'low' of 10
    for name in ("image_voice", "voice"):
        summary = res["variants"][name]["summary"]
        assert summary["n"] == 10  # one pooled prediction per sample
        tested = np.sort(
            np.concatenate(
                [json.loads((out / "folds" / name / f"fold{f}.json").read_text())["test_idx"] for f in range(2)]
            )
        )
        np.testing.assert_array_equal(tested, np.arange(10))
        assert (out / "confusion" / f"{name}.png").exists()
        row = next(r for r in res["rows"] if r["variant"] == name)
        assert 0 <= row["accuracy"] <= 1 and row["train_samples_per_s"] > 0 and row["inference_clips_per_s"] > 0
    assert (
        len(list((out / "gradcam").glob("*_matched.png"))) == 1
        and len(list((out / "gradcam").glob("*_mismatched.png"))) == 1
    )
    text = md.read_text()
    assert "| image_voice |" in text and "paper accuracy" in text and "0.760" in text
    stamp = (out / "folds" / "voice" / "fold0.json").stat().st_mtime_ns
    run_experiment(tiny_bench, out, config="small", overrides=overrides, seed=0, variants=["image_voice", "voice"])
    assert (out / "folds" / "voice" / "fold0.json").stat().st_mtime_ns == stamp  # resumed, not retrained
    from sonotell.errors import ConfigError

    with pytest.raises(ConfigError, match="another config"):
        run_experiment(
            tiny_bench, out, config="small", overrides=[*overrides, "train.max_epochs=3"], seed=0, variants=["voice"]
        )


def test_nan_loss_stops_with_clear_message(tmp_path):
    from sonotell.methods.voice_label import method_config, train_fold
    from sonotell.train import NonFiniteLossError

    s = _samples()
    s.spec = s.spec.copy()
    s.spec[:] = np.nan
    cfg = method_config("small", ["train.max_epochs=1"])
    with pytest.raises(NonFiniteLossError, match="loss is nan.*last good checkpoint"):
        train_fold(s, np.arange(6), np.arange(6, 8), cfg, {"name": "voice", "mode": "voice"}, tmp_path / "fold", seed=0)


def test_train_checkpoint_reload_and_gradcam_cli(tiny_bench, tmp_path):
    from typer.testing import CliRunner

    from sonotell.cli import app
    from sonotell.methods.voice_label import load_voice_label

    torch.set_num_threads(1)
    out = tmp_path / "train"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "voice_label",
            "-b",
            str(tiny_bench),
            "--out",
            str(out),
            "--set",
            "data.size=[32,32]",
            "--set",
            "train.max_epochs=1",
            "--seed",
            "0",
        ],
    )
    assert res.exit_code == 0, res.output
    model, meta = load_voice_label(out / "model.pt")
    assert meta["classes"] == ["low", "high"] and model.num_classes == 2 and (out / "model.yaml").exists()
    from sonotell.models import create_model

    # a trained recipe checkpoint is "any local checkpoint" for the pretrained-image variant
    reuse = create_model("voice_label", "small", num_classes=2, pretrained_image=str(out / "model.pt"))
    torch.testing.assert_close(reuse.image_branch.features[0].weight, model.image_branch.features[0].weight)
    res = CliRunner().invoke(
        app, ["gradcam", "-c", str(out / "model.pt"), "-b", str(tiny_bench), "--out", str(tmp_path / "cam"), "--n", "2"]
    )
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "cam").glob("*.png"))) == 4  # 2 samples x (matched, mismatched)
    records = json.loads((tmp_path / "cam" / "gradcam.json").read_text())
    assert (
        len(records) == 2
        and records[0]["matched"]["voice_class"] == records[0]["image_class"] != records[0]["mismatched"]["voice_class"]
    )


def test_unspoken_class_is_left_out(tiny_bench):
    from sonotell.data.format import load_benchmark

    meta = json.loads((tiny_bench / "bench.json").read_text())
    (tiny_bench / "bench.json").write_text(json.dumps({**meta, "classes": ["never", "low", "high"]}))
    s = extract_samples(
        load_benchmark(tiny_bench),
        {"size": [32, 32], "n_frames": 25, "fps": 25, "voice_window_s": 1.0, "target": "classes"},
        None,
    )
    assert s.classes == ["low", "high"] and sorted(set(s.label.tolist())) == [0, 1]


def test_keyword_encoder_and_pretrained_voice_row_repeat_exactly(tiny_bench, tmp_path):
    """Two identical runs give identical numbers (the keyword network used to be built before seeding)."""
    torch.set_num_threads(1)
    overrides = [
        "data.size=[32,32]",
        "train.max_epochs=1",
        "cv.k=2",
        "bootstrap.n_subsets=3",
        "bootstrap.subset_size=2",
        "gradcam.n_examples=0",
        "keyword_pretrain.n_voices=2",
        "keyword_pretrain.test_voices=1",
        "keyword_pretrain.max_epochs=1",
    ]
    rows = []
    for run in ("a", "b"):
        torch.manual_seed(1234 if run == "a" else 99)  # whatever the global state before, the result must not change
        run_experiment(
            tiny_bench, tmp_path / run, config="small", overrides=overrides, seed=0, variants=["pretrained_voice"]
        )
        rows.append(json.loads((tmp_path / run / "results.json").read_text())["rows"][0])
    a, b = (torch.load(tmp_path / r / "keyword_encoder.pt", weights_only=True)["state_dict"] for r in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert rows[0]["accuracy"] == rows[1]["accuracy"] and rows[0]["f1"] == rows[1]["f1"]


def test_task_classes_of_the_benchmark_apply_without_a_config_override(tiny_bench, tmp_path):
    from sonotell.data.format import load_benchmark

    meta = json.loads((tiny_bench / "bench.json").read_text())
    (tiny_bench / "bench.json").write_text(json.dumps({**meta, "task_classes": ["high"]}))
    s = extract_samples(
        load_benchmark(tiny_bench), {"size": [32, 32], "n_frames": 25, "fps": 25, "voice_window_s": 1.0}, None
    )
    assert s.classes == ["high"] and len(s) == 4
