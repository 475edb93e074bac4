"""Tabular one-class data bundled with scikit-learn."""

from __future__ import annotations

import numpy as np

from adcourse.data._common import _check_real, _rng

__all__ = ["load_breast_cancer_oneclass"]


def load_breast_cancer_oneclass(test_size=0.5, random_state=0):
    """scikit-learn's breast-cancer data as a one-class problem (bundled, offline).

    Benign tumours (357) are normal, malignant ones (212) anomalous. The 30
    features are standardised with the mean and standard deviation of the
    normal training part. Returns ``(X_train, X_test, y_test)``: ``X_train``
    holds benign samples only, ``X_test`` the other benign ones and every
    malignant one, ``y_test = 1`` for malignant.
    """
    from sklearn.datasets import load_breast_cancer

    test_size = _check_real("test_size", test_size, 0.0, 1.0, low_open=True, high_open=True)
    rng = _rng(random_state)
    X, target = load_breast_cancer(return_X_y=True)
    anomalous = target == 0  # in scikit-learn, 0 = malignant
    normal_idx = rng.permutation(np.flatnonzero(~anomalous))
    n_test = int(round(test_size * normal_idx.size))
    train_idx, test_normal = normal_idx[n_test:], normal_idx[:n_test]
    mean, std = X[train_idx].mean(0), X[train_idx].std(0)
    X = (X - mean) / std
    test_idx = np.r_[test_normal, np.flatnonzero(anomalous)]
    return X[train_idx], X[test_idx], anomalous[test_idx].astype(np.int64)

