import math

import pytest
import torch

from sonotell.losses.correspondence import CorrespondenceLoss
from sonotell.losses.pairs import BatchTooSmallError, PairPlan, negative_mask, sample_negatives


def naive_bce(logits, targets, weights=None):
    weights = weights or [1.0] * len(logits)
    total = 0.0
    for z, y, w in zip(logits, targets, weights):
        p = 1 / (1 + math.exp(-z))
        total += w * -(y * math.log(p) + (1 - y) * math.log(1 - p))
    return total / sum(weights)


def test_matches_naive_loop_with_and_without_weights():
    logits, targets = [2.0, -1.0, 0.5, -3.0], [1.0, 0.0, 0.0, 1.0]
    loss = CorrespondenceLoss()
    assert float(loss(torch.tensor(logits), torch.tensor(targets))) == pytest.approx(
        naive_bce(logits, targets), rel=1e-6
    )
    w = [1.0, 2.0, 0.0, 1.0]
    assert float(loss(torch.tensor(logits), torch.tensor(targets), torch.tensor(w))) == pytest.approx(
        naive_bce(logits, targets, w), rel=1e-6
    )


def test_batch_of_one_and_shape_mismatch():
    with pytest.raises(BatchTooSmallError):
        CorrespondenceLoss()(torch.tensor([1.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="targets"):
        CorrespondenceLoss()(torch.tensor([1.0, 2.0]), torch.tensor([1.0]))


def test_negatives_are_other_scan_or_shifted_pairs():
    m = negative_mask(["a", "a", "a", "b"], [0.0, 1.0, 10.0, 0.0], min_shift_s=2.0)
    expected = torch.tensor(
        [
            [False, False, True, True],
            [False, False, True, True],
            [True, True, False, True],
            [True, True, True, False],
        ]
    )
    assert torch.equal(m, expected)
    neg = sample_negatives(m, torch.Generator().manual_seed(0))
    assert all(bool(m[i, j]) for i, j in enumerate(neg.tolist()))
    assert sample_negatives(torch.zeros(2, 2, dtype=torch.bool)).tolist() == [-1, -1]


@pytest.mark.parametrize("policy", ["skip", "negative"])
def test_pair_plan_no_speech_policies(policy):
    has = torch.tensor([True, False, True])
    plan = PairPlan(["a", "b", "c"], [0.0, 0.0, 0.0], has, no_speech=policy)
    vi, oi, tg = plan.correspondence_pairs()
    pos = {(int(v), int(o)) for v, o, t in zip(vi, oi, tg) if t == 1}
    assert pos == {(0, 0), (2, 2)}
    pairs = list(zip(vi.tolist(), oi.tolist(), tg.tolist()))
    if policy == "skip":  # the silent clip 1 takes no part at all
        assert all(1 not in (v, o) for v, o, _ in pairs)
    else:  # its own pair is a negative
        assert (1, 1, 0.0) in pairs
    assert plan.anchors.tolist() == [True, False, True]


def test_same_scan_negatives_are_preferred_when_the_batch_has_them():
    import torch

    from sonotell.losses.pairs import PairPlan

    scans, times = ["a", "a", "b", "c"], [0.0, 5.0, 0.0, 0.0]
    speech = torch.ones(4, dtype=torch.bool)
    for seed in range(5):
        torch.manual_seed(seed)
        vi, oi, tg = PairPlan(scans, times, speech, same_scan_negatives=True).correspondence_pairs()
        neg = dict(zip(vi[tg == 0].tolist(), oi[tg == 0].tolist()))
        # a's two clips are 5 s apart (>= min_shift 2 s): each is the other's negative;
        # b and c have no same-scan clip and fall back to any valid negative
        assert neg[0] == 1 and neg[1] == 0 and neg[2] != 2 and neg[3] != 3
    torch.manual_seed(0)
    picked = set()
    for _ in range(30):
        vi, oi, tg = PairPlan(scans, times, speech).correspondence_pairs()
        picked.add(dict(zip(vi[tg == 0].tolist(), oi[tg == 0].tolist()))[0])
    assert picked == {1, 2, 3}  # without the preference any valid negative is drawn
