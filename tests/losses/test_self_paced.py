import pytest
import torch

from sonotell.losses.self_paced import SelfPacedWeighting


def test_pace_admits_high_affinity_pairs_first_then_all():
    aff = torch.tensor([0.9, -0.2, 0.4, 0.7, 0.1, 0.3])
    spl = SelfPacedWeighting(start_fraction=1 / 3, epochs_to_all=2)
    assert spl.weights(aff).tolist() == [1, 0, 0, 1, 0, 0]  # top 2 of 6
    spl.set_epoch(1)  # fraction 2/3 -> top 4
    assert spl.weights(aff).tolist() == [1, 0, 1, 1, 0, 1]
    spl.set_epoch(2)
    assert spl.weights(aff).tolist() == [1] * 6


def test_weighted_loss_matches_hand_computation():
    spl = SelfPacedWeighting(start_fraction=0.5, epochs_to_all=4)
    loss = spl(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.1, 0.8, 0.5, 0.2]))
    assert float(loss) == pytest.approx((2.0 + 3.0) / 2)


def test_soft_mode_is_monotone_in_affinity_and_validation():
    spl = SelfPacedWeighting(start_fraction=0.5, epochs_to_all=4, mode="soft")
    w = spl.weights(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    assert torch.all(w[1:] >= w[:-1]) and 0 < float(w[0]) < 1
    with pytest.raises(ValueError):
        SelfPacedWeighting(start_fraction=0.0)
    with pytest.raises(ValueError):
        SelfPacedWeighting(mode="linear")
