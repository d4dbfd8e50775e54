import math

import pytest
import torch

from sonotell.losses.term_mil import TermMILLoss, sample_unsaid_terms

torch.set_num_threads(1)


def test_negatives_are_never_said_terms():
    g = torch.Generator().manual_seed(0)
    for seed in range(30):
        said = torch.rand(6, 5, generator=torch.Generator().manual_seed(seed)) < 0.4
        rows, pos, neg = sample_unsaid_terms(said, 3, g)
        # one entry per said (row, term) whose row has an unsaid term
        expected = [(b, k) for b in range(6) for k in range(5) if said[b, k] and not said[b].all()]
        assert list(zip(rows.tolist(), pos.tolist())) == expected
        for r, ns in zip(rows.tolist(), neg.tolist()):
            assert all(not said[r, n] for n in ns)


def test_rows_with_nothing_or_everything_said_give_no_pairs():
    said = torch.tensor([[False, False, False], [True, True, True]])
    rows, pos, neg = sample_unsaid_terms(said, 2)
    assert rows.numel() == pos.numel() == neg.shape[0] == 0
    out = TermMILLoss()(torch.zeros(2, 3, requires_grad=True), said)
    assert float(out["loss"]) == 0.0 and float(out["n_pairs"]) == 0.0
    out["loss"].backward()  # still part of the graph


def test_worked_example():
    scores = torch.tensor([[2.0, -1.0, 0.0]])
    said = torch.tensor([[True, False, False]])
    out = TermMILLoss(negatives=1)(scores, said, torch.Generator().manual_seed(0))
    # InfoNCE over terms: -log softmax([2, -1, 0])[0]
    assert float(out["con"]) == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + math.exp(-1) + 1)), abs=1e-6)
    # correspondence: BCE(2 -> 1) and BCE(the drawn negative -> 0); either -1 or 0 was drawn
    sp = lambda x: math.log1p(math.exp(x))
    assert float(out["cor"]) in (
        pytest.approx((sp(-2) + sp(-1)) / 2, abs=1e-6),
        pytest.approx((sp(-2) + sp(0)) / 2, abs=1e-6),
    )


def test_matches_a_naive_loop():
    torch.manual_seed(1)
    scores = torch.randn(5, 4)
    said = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)
    loss = TermMILLoss(negatives=2, temperature=0.5, weights={"cor": 0.3, "con": 2.0})
    out = loss(scores, said, torch.Generator().manual_seed(7))
    _, _, neg = sample_unsaid_terms(said, 2, torch.Generator().manual_seed(7))  # the same draws
    bce, con, n, j = [], [], 0, 0
    for b in range(5):
        if said[b].all():
            continue
        for k in range(4):
            if not said[b, k]:
                continue
            bce.append(-math.log(1 / (1 + math.exp(-float(scores[b, k])))))
            for m in neg[j].tolist():
                bce.append(-math.log(1 - 1 / (1 + math.exp(-float(scores[b, m])))))
            allowed = [k] + [m for m in range(4) if not said[b, m]]
            denom = sum(math.exp(float(scores[b, m]) / 0.5) for m in allowed)
            con.append(-(float(scores[b, k]) / 0.5 - math.log(denom)))
            j += 1
            n += 1
    assert float(out["n_pairs"]) == n == 5
    assert float(out["cor"]) == pytest.approx(sum(bce) / len(bce), abs=1e-5)
    assert float(out["con"]) == pytest.approx(sum(con) / len(con), abs=1e-5)
    assert float(out["loss"]) == pytest.approx(0.3 * sum(bce) / len(bce) + 2.0 * sum(con) / len(con), abs=1e-5)


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="differ"):
        TermMILLoss()(torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.bool))


def test_allowed_restricts_negatives_in_both_terms():
    said = torch.tensor([[True, False, False, False], [False, True, False, False]])
    allowed = torch.tensor([[True, False, False, True], [False, False, False, False]])  # e.g. never said in the scan
    rows, pos, neg = sample_unsaid_terms(said, 5, torch.Generator().manual_seed(0), allowed)
    assert rows.tolist() == [0] and pos.tolist() == [0] and neg.tolist() == [[3] * 5]  # row 1: no allowed negative
    scores = torch.tensor([[1.0, 5.0, 5.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    out = TermMILLoss(negatives=1)(scores, said, allowed=allowed)
    # InfoNCE over {said 0, allowed 3} only: the unsaid-but-disallowed 1, 2 (score 5) play no part
    assert float(out["con"]) == pytest.approx(-math.log(math.exp(1) / (math.exp(1) + math.exp(-1))), abs=1e-6)
    sp = lambda x: math.log1p(math.exp(x))
    assert float(out["cor"]) == pytest.approx((sp(-1.0) + sp(-1.0)) / 2, abs=1e-6)
