import numpy as np
import pytest

from sonotell.errors import SubjectLeakError
from sonotell.eval.cv import (
    assert_disjoint_groups,
    grouped_kfold,
    leave_one_group_out,
    make_folds,
    missing_classes,
    pool_fold_predictions,
)

GROUPS = ["p1", "p1", "p2", "p3", "p3", "p3", "p4", "p5", "p5", "p6"]


def test_lopo_one_fold_per_patient_and_covers_everything():
    folds = list(leave_one_group_out(GROUPS))
    assert len(folds) == 6
    tested = np.sort(np.concatenate([te for _, te in folds]))
    np.testing.assert_array_equal(tested, np.arange(len(GROUPS)))
    for tr, te in folds:
        assert len({GROUPS[i] for i in te}) == 1
        assert not {GROUPS[i] for i in tr} & {GROUPS[i] for i in te}


def test_grouped_kfold_disjoint_balanced_and_seeded():
    folds = list(grouped_kfold(GROUPS, k=3, seed=1))
    assert len(folds) == 3
    tested = np.sort(np.concatenate([te for _, te in folds]))
    np.testing.assert_array_equal(tested, np.arange(len(GROUPS)))
    for tr, te in folds:
        assert not {GROUPS[i] for i in tr} & {GROUPS[i] for i in te}
        assert len(tr) + len(te) == len(GROUPS)
    # 10 samples in 3 folds by the largest-first rule: sizes 3,2,2,1,1,1 -> loads 4/3/3
    assert sorted(len(te) for _, te in folds) == [3, 3, 4]
    again = list(grouped_kfold(GROUPS, k=3, seed=1))
    for (a, b), (c, d) in zip(folds, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_grouped_kfold_too_few_groups():
    with pytest.raises(ValueError, match="at least 7 groups"):
        list(grouped_kfold(GROUPS, k=7))
    with pytest.raises(ValueError, match="at least 2 groups"):
        list(leave_one_group_out(["a", "a"]))


def test_assert_disjoint_catches_leak():
    with pytest.raises(SubjectLeakError, match="p1"):
        assert_disjoint_groups(GROUPS, np.array([0]), np.array([1]))


def test_make_folds_and_missing_classes():
    assert len(make_folds(GROUPS, "lopo")) == 6
    assert len(make_folds(GROUPS, "kfold", k=2)) == 2
    with pytest.raises(ValueError):
        make_folds(GROUPS, "random")
    labels = [0, 0, 1, 1, 1, 1, 2, 2, 2, 0]
    assert missing_classes(labels, np.array([0, 1, 2]), 3) == [2]


def test_pool_fold_predictions_restores_sample_order():
    folds = [(np.array([2, 3]), np.array([0, 1])), (np.array([0, 1]), np.array([3, 2]))]
    pooled = pool_fold_predictions(4, folds, [np.array([5, 6]), np.array([8, 7])])
    np.testing.assert_array_equal(pooled, [5, 6, 7, 8])
    with pytest.raises(ValueError, match="exactly once"):
        pool_fold_predictions(4, folds[:1], [np.array([5, 6])])
