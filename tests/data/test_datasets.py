import json
import pickle

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from PIL import Image

from sonotell.data.datasets import ClipDataset, segment_words
from sonotell.errors import InputError
from tests.conftest import write_video


@pytest.fixture
def bench_dir(tmp_path, moving_frames, tone):
    """A two-scan benchmark folder in the shared format (bench.json, manifest.csv, truth/, masks/)."""
    from sonotell.data.format import write_bench_json

    root = tmp_path / "bench"
    wav, sr = tone
    rows = []
    for scan_id, subject, label in (("a", "p1", "liver"), ("b", "p2", "kidney")):
        write_video(root / "videos" / f"{scan_id}.mp4", moving_frames, fps=10)
        (root / "audio").mkdir(parents=True, exist_ok=True)
        sf.write(root / "audio" / f"{scan_id}.wav", np.tile(wav, 2), sr)
        rows.append(
            {
                "scan_id": scan_id,
                "subject_id": subject,
                "video_path": f"videos/{scan_id}.mp4",
                "audio_path": f"audio/{scan_id}.wav",
                "audio_offset_s": 0.0,
                "fps": 10.0,
                "n_frames": 20,
                "width": 80,
                "height": 64,
                "audio_sample_rate_hz": sr,
                "audio_duration_s": 2.0,
                "roi": "0,8,80,64",
                "label": label,
                "labels": f"{label};spleen",
                "voice": "v1",
                "voice_split": "train",
            }
        )
        truth = {
            "scan_id": scan_id,
            "subject_id": subject,
            "label": label,
            "labels": [label, "spleen"],
            "events": [
                {"label": "liver", "term": "liver", "start_s": 0.4, "end_s": 0.6, "speaker": "doc", "negated": False},
                {"label": "kidney", "term": "kidney", "start_s": 1.0, "end_s": 1.2, "speaker": "doc", "negated": True},
                {"label": "kidney", "term": "kidney", "start_s": 1.5, "end_s": 1.7, "speaker": "doc", "negated": False},
            ],
            "segments": [
                {"speaker": "doc", "start_s": 0.3, "end_s": 0.7, "text": "here is the liver"},
                {"speaker": "pt", "start_s": 1.4, "end_s": 1.8, "text": "okay"},
            ],
            "masks": {"5": f"masks/{scan_id}_5.png"},
        }
        (root / "truth").mkdir(parents=True, exist_ok=True)
        (root / "truth" / f"{scan_id}.json").write_text(json.dumps(truth))
        mask = np.zeros((64, 80), np.uint8)
        mask[20:40, 10:30] = 1
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(mask).save(root / "masks" / f"{scan_id}_5.png")
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    write_bench_json(
        root,
        name="tiny",
        classes=["liver", "kidney"],
        label_names=["liver", "kidney", "spleen"],
        mask_classes=["background", "liver"],
        config={},
        seed=0,
    )
    return root


def test_items_follow_the_shared_interface(bench_dir, tmp_path):
    ds = ClipDataset(
        bench_dir,
        None,
        n_frames=3,
        frame_stride=2,
        size=(28, 40),
        audio_window_s=0.5,
        sample_rate_hz=8000,
        cache_dir=tmp_path / "cache",
        clip_hop_s=0.5,
    )
    assert len(ds) == 8 and [t for s, t in ds.items[:4]] == [0.25, 0.75, 1.25, 1.75]
    item = ds[1]
    assert (
        item["frames"].shape == (3, 28, 40)
        and item["frames"].dtype == torch.float32
        and 0 <= item["frames"].min()
        and item["frames"].max() <= 1
    )
    assert item["audio"].shape == (4000,) and item["audio"].dtype == torch.float32
    assert (item["label"], item["labels"].tolist(), item["subject_id"], item["scan_id"], item["time_s"]) == (
        0,
        [1.0, 0.0, 1.0],
        "p1",
        "a",
        0.75,
    )
    # "here is the liver" spans 0.3-0.7 s, a word each 0.1 s: the window [0.5, 1.0] holds the last two
    assert item["text"] == "the liver"
    assert ds[4]["label"] == 1 and ds.subject_ids == ["p1"] * 4 + ["p2"] * 4
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["frames"].shape == (4, 3, 28, 40) and batch["label"].tolist() == [0, 0, 0, 0]
    clone = pickle.loads(pickle.dumps(ds))  # what DataLoader workers receive
    torch.testing.assert_close(clone[5]["frames"], ds[5]["frames"])


def test_labels_from_spoken_events_skip_negations(bench_dir, tmp_path):
    ds = ClipDataset(
        bench_dir,
        ["a"],
        n_frames=1,
        size=(28, 40),
        cache_dir=tmp_path / "cache",
        clip_hop_s=0.5,
        label_source="events",
        event_window_s=0.3,
    )
    got = [(ds[i]["label"], ds[i]["labels"].tolist()) for i in range(len(ds))]
    # t=0.25: liver 0.15 s away; t=0.75: liver 0.15 s; t=1.25: the negated kidney is ignored,
    # the real one 0.25 s away; t=1.75: kidney 0.05 s away
    assert got == [(0, [1.0, 0.0, 0.0]), (0, [1.0, 0.0, 0.0]), (1, [0.0, 1.0, 0.0]), (1, [0.0, 1.0, 0.0])]
    far = ClipDataset(
        bench_dir,
        ["a"],
        n_frames=1,
        size=(28, 40),
        cache_dir=tmp_path / "cache",
        times={"a": [1.0]},
        label_source="events",
        event_window_s=0.1,
    )
    assert far[0]["label"] == -1 and far[0]["labels"].sum() == 0
    at_events = ClipDataset(bench_dir, ["a"], n_frames=1, size=(28, 40), cache_dir=tmp_path / "cache", times="events")
    assert [t for _, t in at_events.items] == pytest.approx([0.5, 1.6])


def test_masks_are_cropped_and_resized_like_the_frames(bench_dir, tmp_path):
    ds = ClipDataset(
        bench_dir, ["b"], n_frames=1, size=(28, 40), cache_dir=tmp_path / "cache", times="masks", with_masks=True
    )
    assert [t for _, t in ds.items] == [0.55]
    mask = ds[0]["mask"]
    assert mask.dtype == torch.int64 and mask.shape == (28, 40)
    # rows 20:40 of the 64-row frame -> rows 12:32 after the ROI (y0=8) -> rows 6:16 at half size
    assert int(mask.sum()) == 100 and bool(mask[6:16, 5:15].all())
    no_mask = ClipDataset(
        bench_dir, ["b"], n_frames=1, size=(28, 40), cache_dir=tmp_path / "cache", times={"b": [1.5]}, with_masks=True
    )
    assert bool((no_mask[0]["mask"] == -1).all())


def test_bad_arguments(bench_dir, tmp_path):
    with pytest.raises(InputError, match="unknown scan id"):
        ClipDataset(bench_dir, ["zz"], cache_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="label_source"):
        ClipDataset(bench_dir, ["a"], cache_dir=tmp_path / "c", label_source="voice")


def test_segment_words_share_the_segment_evenly():
    words = segment_words(
        [
            {"speaker": "x", "start_s": 2.0, "end_s": 3.0, "text": "one two three four"},
            {"speaker": "y", "start_s": 4.0, "end_s": 4.5, "text": ""},
        ]
    )
    assert [(w.text, w.start_s, w.end_s, w.speaker) for w in words] == [
        ("one", 2.0, 2.25, "x"),
        ("two", 2.25, 2.5, "x"),
        ("three", 2.5, 2.75, "x"),
        ("four", 2.75, 3.0, "x"),
    ]
