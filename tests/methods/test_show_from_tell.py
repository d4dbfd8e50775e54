import pytest
import torch

from sonotell.errors import ConfigError
from sonotell.losses.pairs import BatchTooSmallError
from sonotell.methods.pretrain import load_pretrained, pretrain
from sonotell.models import create_model
from sonotell.models.show_from_tell import ShowFromTell
from sonotell.models.text import build_vocabulary
from sonotell.train import CheckpointError
from tests.methods.ssl_helpers import TEXTS, synthetic_batch

torch.set_num_threads(1)
VOCAB = build_vocabulary(TEXTS)
TEXT = {"name": "text_embedding", "config": "small", "vocabulary": VOCAB}


def make(**kw) -> ShowFromTell:
    torch.manual_seed(0)
    return create_model("show_from_tell", None, text=TEXT, embed_dim=16, **kw)


def test_loss_is_the_weighted_sum_of_the_four_terms_and_trains_every_branch():
    w = {"alpha": 0.5, "beta": 2.0, "gamma": 0.25, "delta": 3.0}
    net = make(weights=w)
    out = net.losses(synthetic_batch(6))
    expected = (
        w["alpha"] * out["cor_va"] + w["beta"] * out["con_va"] + w["gamma"] * out["cor_vt"] + w["delta"] * out["con_vt"]
    )
    torch.testing.assert_close(out["loss"], expected)
    out["loss"].backward()
    for branch in (net.video, net.audio, net.text, net.fuse_va, net.fuse_vt):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in branch.parameters())


def test_default_weights_are_equal():
    assert make().weights == {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "delta": 1.0}


def test_localisation_map_and_encoders():
    net = make().eval()
    frames, audio = torch.rand(2, 8, 64, 64), torch.randn(2, 9600)
    m = net.localisation_map(frames, audio)
    assert m.shape == (2, 4, 4)
    # the map is the correspondence classifier's score at every position of the fused map,
    # and a clip's correspondence logit is its best position's
    vmap, a = net.video.feature_map(frames), net.audio(audio)
    per_position = net.cor_va(net.fuse_va.position_features(vmap, a).permute(0, 2, 3, 1)).squeeze(-1)
    torch.testing.assert_close(m, per_position)
    torch.testing.assert_close(
        net.correspondence_logits(vmap, a, net.fuse_va, net.cor_va), per_position.amax(dim=(1, 2))
    )
    assert net.localisation_map(frames[:, 0], audio).shape == (2, 4, 4)  # a single frame
    assert net.encode_video(frames).shape == (2, net.video.out_dim)
    assert net.encode_audio(audio).shape == (2, net.audio.out_dim)
    assert net.encode_text(["the liver", "umm"]).shape == (2, net.text.out_dim)


def test_ablations():
    batch = synthetic_batch(4)
    no_audio = make(use_audio=False)
    assert "cor_va" not in no_audio.losses(batch) and "con_vt" in no_audio.losses(batch)
    with pytest.raises(ConfigError, match="without audio"):
        no_audio.localisation_map(batch["frames"], batch["audio"])
    assert "cor_vt" not in make(use_text=False).losses(batch)
    concat = make(fusion="concat")
    assert torch.isfinite(concat.losses(batch)["loss"])
    with pytest.raises(ConfigError, match="spatial"):
        concat.localisation_map(batch["frames"], batch["audio"])
    assert torch.isfinite(make(fusion="matrix").losses(batch)["loss"])
    assert make(sig={"mode": "none"}).losses(batch)["sig_kept"] == 1.0 - 1 / 4  # only the empty text is dropped
    with pytest.raises(ConfigError):
        make(use_audio=False, use_text=False)


def test_keyword_sig_drops_transcripts_without_a_lexicon_term():
    net = make(sig={"mode": "keyword", "lexicon": ["liver", "kidney"]})
    out = net.losses(synthetic_batch(6))
    assert float(out["sig_kept"]) == pytest.approx(3 / 6)  # liver, kidney, liver
    assert torch.isfinite(out["loss"])
    none = synthetic_batch(4, texts=["hold it there", "okay", "", "breathe"])
    out = net.losses(none)  # no term anywhere: the text terms have nothing to learn from
    assert out["cor_vt"].item() == 0.0 and out["con_vt"].item() == 0.0


@pytest.mark.parametrize("policy", ["skip", "negative"])
def test_clips_without_speech(policy):
    net = make(no_speech=policy)
    batch = synthetic_batch(4, texts=["the liver", "", "", "the kidney"])
    out = net.losses(batch)
    assert torch.isfinite(out["loss"])
    silent = synthetic_batch(4, texts=["", "", "", ""])
    out = net.losses(silent)
    if policy == "skip":
        assert float(out["cor_va"]) == 0.0
    else:  # every aligned pair is a negative: the correspondence term still learns
        assert float(out["cor_va"]) > 0.0


def test_batch_of_one_is_a_clear_error():
    with pytest.raises(BatchTooSmallError, match="at least 2"):
        make().losses(synthetic_batch(1))


def test_pretrain_writes_a_checkpoint_that_refuses_other_recipes(tiny_bench, tmp_path):
    ckpt = pretrain(
        "show_from_tell", tiny_bench, tmp_path / "sft", overrides=["train.epochs=1", "train.batch_size=4"], seed=0
    )
    assert ckpt.exists() and ckpt.with_suffix(".yaml").exists()
    model = load_pretrained(ckpt, expected="show_from_tell")
    assert model.text.vocabulary[:2] == ["<pad>", "<unk>"] and "liver" in model.text.vocabulary
    assert model.localisation_map(torch.rand(1, 8, 64, 64), torch.randn(1, 9600)).shape == (1, 4, 4)
    with pytest.raises(CheckpointError, match="'show_from_tell', expected 'dual'"):
        load_pretrained(ckpt, expected="dual")
    # a model of another shape is refused with both named
    other = create_model("show_from_tell", None, text=TEXT, embed_dim=8)
    from sonotell.train import load_model_checkpoint

    with pytest.raises(CheckpointError, match="does not fit"):
        load_model_checkpoint(ckpt, expected="show_from_tell", model=other)
    mtime = ckpt.stat().st_mtime
    assert (
        pretrain(
            "show_from_tell", tiny_bench, tmp_path / "sft", overrides=["train.epochs=1", "train.batch_size=4"], seed=0
        )
        == ckpt
    )
    assert ckpt.stat().st_mtime == mtime  # a finished run is not repeated


def test_text_branch_can_read_speech_pipeline_transcripts(tiny_bench, tmp_path):
    import json

    from sonotell.data.format import load_benchmark
    from sonotell.errors import InputError

    labels = tmp_path / "labels"
    labels.mkdir()
    scans = [s.scan_id for s in load_benchmark(tiny_bench).scans]
    for sid in scans:  # what `sonotell label` writes: <scan_id>.json with recognised words
        words = [
            {"text": w, "start_s": 0.3 * i, "end_s": 0.3 * i + 0.25, "confidence": 0.9}
            for i, w in enumerate(["zebra", "liver", "zebra", "kidney"] * 3)
        ]
        (labels / f"{sid}.json").write_text(json.dumps({"scan_id": sid, "words": words}))
    ckpt = pretrain(
        "show_from_tell",
        tiny_bench,
        tmp_path / "asr",
        overrides=["train.epochs=1", "train.batch_size=4", f"data.transcripts={labels}"],
        seed=0,
    )
    vocab = load_pretrained(ckpt).text.vocabulary
    assert "zebra" in vocab and "here" not in vocab  # built from the ASR words, not the narration
    (labels / f"{scans[0]}.json").unlink()
    with pytest.raises(InputError, match="no transcript"):
        pretrain("show_from_tell", tiny_bench, tmp_path / "asr2", overrides=[f"data.transcripts={labels}"], seed=0)


KEYWORDS = {"lexicon": {"liver": ["liver"], "kidney": ["kidney"], "spleen": ["spleen"]}, "dim": 8}


def make_keywords(**kw) -> ShowFromTell:
    torch.manual_seed(0)
    return create_model(
        "show_from_tell", None, embed_dim=16, use_text=False, audio_source="keywords", keywords={**KEYWORDS, **kw}
    )


def test_keyword_model_trains_said_against_unsaid_terms():
    from sonotell.models.fusion import smooth_max

    net = make_keywords(pool="lse", r=3.0)
    batch = synthetic_batch(6)  # texts: liver, -, kidney, spleen, -, liver
    out = net.losses(batch)
    assert out["said_frac"] == pytest.approx(4 / 6)
    torch.testing.assert_close(out["loss"], out["cor_va"] + out["con_va"])
    out["loss"].backward()
    for branch in (net.video, net.term_embedding, net.fuse_va, net.cor_va):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in branch.parameters())
    # frame-level term scores are the smooth max of each term's map
    frames = batch["frames"][:2]
    maps = net.term_maps(net.video.feature_map(frames))
    assert maps.shape == (2, 3, 4, 4)
    torch.testing.assert_close(net.term_scores(frames), smooth_max(maps, "lse", r=3.0))


def test_keyword_localisation_map_is_the_said_terms_map():
    net = make_keywords().eval()
    frames = torch.rand(3, 8, 64, 64)
    maps = net.term_maps(net.video.feature_map(frames))
    m = net.localisation_map(frames, ["here is the liver", "kidney and spleen", "hold still"])
    torch.testing.assert_close(m[0], maps[0, 0])
    torch.testing.assert_close(m[1], (maps[1, 1] + maps[1, 2]) / 2)
    assert torch.all(m[2] == 0)  # nothing said: nothing to point at
    # term weights directly, and the contrast read-out (per-position log-softmax over terms)
    torch.testing.assert_close(net.localisation_map(frames, torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 0]])), m)
    net.keyword_map = "contrast"
    torch.testing.assert_close(net.localisation_map(frames[:1], ["liver"])[0], torch.log_softmax(maps[0], dim=0)[0])
    assert net.term_labels == ["liver", "kidney", "spleen"]
    with pytest.raises(ValueError, match="term weights"):
        net.localisation_map(frames, torch.ones(3, 5))


def test_keyword_model_config_errors():
    with pytest.raises(ConfigError, match="audio_source"):
        make_keywords().__class__(audio_source="phonemes")
    with pytest.raises(ConfigError, match="spatial"):
        create_model(
            "show_from_tell", None, use_text=False, fusion="concat", audio_source="keywords", keywords=KEYWORDS
        )
    with pytest.raises(ConfigError, match="raw audio"):
        make().term_scores(torch.rand(1, 8, 64, 64))


def test_keyword_pretraining_reads_the_spotted_terms_only(tiny_bench, tmp_path):
    import json

    from sonotell.data.format import load_benchmark
    from sonotell.errors import InputError
    from sonotell.methods.pretrain import load_transcript_words

    bench = load_benchmark(tiny_bench)
    scans = [s.scan_id for s in bench.scans]
    labels = tmp_path / "labels"
    labels.mkdir()
    events = [
        {"label": "liver", "term": "liver", "start_s": 1.0, "end_s": 1.4, "negated": False},
        {"label": "kidney", "term": "kidney", "start_s": 2.4, "end_s": 2.6, "negated": True},
    ]
    (labels / f"{scans[0]}.json").write_text(
        json.dumps({"events": events, "words": [{"text": "zebra", "start_s": 0.1, "end_s": 0.2}]})
    )
    # the second scan has no file (the speech pipeline found no speech in it)
    words = load_transcript_words(labels, scans, units="terms", missing_ok=True)
    assert [(w.text, w.start_s) for w in words[scans[0]]] == [("liver", 1.0)] and words[scans[1]] == []
    assert [w.text for w in load_transcript_words(labels, scans[:1])[scans[0]]] == ["zebra"]
    with pytest.raises(InputError, match="no transcript"):
        load_transcript_words(labels, scans)
    overrides = ["train.epochs=1", "train.batch_size=2", "model.keywords.lexicon=abdominal", "data.size=[32,32]"]
    with pytest.raises(ConfigError, match="data.transcripts"):
        pretrain("show_from_tell", tiny_bench, tmp_path / "kw0", "keywords", overrides, seed=0)
    ckpt = pretrain(
        "show_from_tell", tiny_bench, tmp_path / "kw", "keywords", overrides + [f"data.transcripts={labels}"], seed=0
    )
    info = json.loads((ckpt.parent / "pretrain.json").read_text())
    # clips at 0.125 + 0.25 k s with +-0.3 s windows: only 1.125 and 1.375 s hold the liver's
    # midpoint (1.2 s); the negated kidney and the ASR word are not read
    assert info["train_clips"] == 2 and info["metrics"]["train/said_frac"] == 1.0
    model = load_pretrained(ckpt, expected="show_from_tell")
    assert model.audio_source == "keywords" and "liver" in model.term_labels
    assert model.localisation_map(torch.rand(2, 8, 32, 32), ["liver", ""]).shape == (2, 4, 4)


def test_scan_level_negatives_and_augmentation():
    from sonotell.models.show_from_tell import augment_clips

    net = make_keywords(negatives_from="scan", augment=True)
    batch = synthetic_batch(6)
    with pytest.raises(ConfigError, match="scan_text"):
        net.losses(batch)
    # every unsaid term was said somewhere in each clip's scan: no negative is left, no signal
    batch["scan_text"] = ["liver kidney spleen"] * 6
    assert float(net.losses(batch)["loss"]) == 0.0
    batch["scan_text"] = ["liver"] * 6
    assert float(net.losses(batch)["loss"]) > 0.0
    torch.manual_seed(0)
    x = torch.rand(3, 4, 16, 16)
    y = augment_clips(x)
    assert y.shape == x.shape and 0.0 <= float(y.min()) and float(y.max()) <= 1.0 and not torch.equal(x, y)
    assert augment_clips(x, min_scale=1.0, contrast=0.0).equal(x)  # no crop, no jitter: unchanged
