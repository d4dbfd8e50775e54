import numpy as np
import pytest
from sklearn import metrics as skm

from sonotell.eval.metrics import accuracy, classification_summary, confusion_matrix, per_class, precision_recall_f1


def test_worked_example_by_hand():
    # true 0,0,1,1,2,2 ; pred 0,1,1,1,2,0
    t = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 2, 0]
    assert accuracy(t, p) == pytest.approx(4 / 6)
    pc = per_class(t, p)
    # class 0: tp=1, predicted 2, true 2 -> P=.5 R=.5 ; class 1: tp=2, pred 3, true 2 -> P=2/3 R=1 ; class 2: P=1 R=.5
    np.testing.assert_allclose(pc["precision"], [0.5, 2 / 3, 1.0])
    np.testing.assert_allclose(pc["recall"], [0.5, 1.0, 0.5])
    f1 = [0.5, 0.8, 2 / 3]
    np.testing.assert_allclose(pc["f1"], f1)
    macro = precision_recall_f1(t, p)
    assert macro["f1"] == pytest.approx(np.mean(f1))
    cm = confusion_matrix(t, p)
    np.testing.assert_allclose(cm, [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])


def test_against_sklearn_random():
    rng = np.random.default_rng(0)
    for _ in range(20):
        t = rng.integers(0, 4, 50)
        p = np.where(rng.random(50) < 0.6, t, rng.integers(0, 4, 50))
        labels = np.unique(np.concatenate([t, p]))
        m = precision_recall_f1(t, p)
        assert m["precision"] == pytest.approx(
            skm.precision_score(t, p, average="macro", labels=labels, zero_division=0)
        )
        assert m["recall"] == pytest.approx(skm.recall_score(t, p, average="macro", labels=labels, zero_division=0))
        assert m["f1"] == pytest.approx(skm.f1_score(t, p, average="macro", labels=labels, zero_division=0))
        expected = np.nan_to_num(skm.confusion_matrix(t, p, labels=range(4), normalize="true"))
        np.testing.assert_allclose(confusion_matrix(t, p, n_classes=4), expected)
        assert accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p))


def test_fixed_class_list_counts_unseen_class_as_zero():
    t, p = [0, 0, 1], [0, 0, 1]
    assert precision_recall_f1(t, p)["f1"] == 1.0
    assert precision_recall_f1(t, p, n_classes=3)["f1"] == pytest.approx(2 / 3)
    cm = confusion_matrix(t, p, n_classes=3)
    np.testing.assert_allclose(cm[2], 0)


def test_subset_accuracy_multilabel_matches_sklearn():
    t = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    p = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    assert accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p)) == pytest.approx(2 / 3)


def test_summary_and_bad_input():
    s = classification_summary([0, 1, 1], [0, 1, 0], ["a", "b", "c"])
    assert s["per_class"]["b"]["recall"] == 0.5 and s["per_class"]["c"]["support"] == 0
    assert len(s["confusion_true_normalised"]) == 3
    with pytest.raises(ValueError, match="shape"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
