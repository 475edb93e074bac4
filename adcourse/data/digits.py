"""scikit-learn's 8x8 handwritten digits in the one-class protocol (real handwriting, offline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adcourse.data._common import _check_int, _check_real, _rng

__all__ = ["DigitsSplit", "load_digits_oneclass"]


@dataclass(frozen=True, eq=False)
class DigitsSplit:
    """One-class split of the digits data set (see :func:`load_digits_oneclass`).

    Attributes
    ----------
    X_train : ndarray of shape (n_train, 64)
        Flattened training images of the normal digit only, values in [0, 1].
    X_test : ndarray of shape (n_test, 64)
        Flattened test images of every digit.
    y_test : ndarray of shape (n_test,)
        1 = anomaly (not the normal digit), 0 = normal.
    images_train : ndarray of shape (n_train, 8, 8)
        ``X_train`` as images.
    images_test : ndarray of shape (n_test, 8, 8)
        ``X_test`` as images.
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    images_train: np.ndarray
    images_test: np.ndarray


def load_digits_oneclass(normal_digit=0, test_size=0.5, random_state=0):
    """The 8x8 digits of scikit-learn in the one-class (semi-supervised) protocol.

    One digit is the normal class (``phi0``), every other digit is an anomaly. As
    in Deep SVDD (Ruff et al., 2018), the training set holds normal images only.
    Each class is split into a train and a test part (``test_size`` of it in the
    test part); train = the normal digit's train part; test = the test parts of
    all ten digits. The data ship with scikit-learn: no download.

    Parameters
    ----------
    normal_digit : int in 0..9, default=0
        The digit that is normal.
    test_size : float in (0, 1), default=0.5
        Fraction of each class that goes to the test set.
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the split.

    Returns
    -------
    DigitsSplit
        ``X_train`` (n_train, 64) and ``X_test`` (n_test, 64) with pixel values in
        [0, 1], ``y_test`` (1 = anomaly, i.e. not ``normal_digit``), and the same
        images as ``images_train`` (n_train, 8, 8) and ``images_test`` (n_test, 8, 8).

    Examples
    --------
    >>> split = load_digits_oneclass(normal_digit=3, random_state=0)
    >>> split.X_train.shape[1], split.images_test.shape[1:]
    (64, (8, 8))
    >>> float(split.X_train.max()) <= 1.0
    True
    """
    from sklearn.datasets import load_digits

    normal_digit = _check_int("normal_digit", normal_digit, 0, 9)
    test_size = _check_real("test_size", test_size, 0.0, 1.0, low_open=True, high_open=True)
    rng = _rng(random_state)
    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    target = digits.target
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(target == digit))
        n_test = min(max(int(np.floor(test_size * len(idx) + 0.5)), 1), len(idx) - 1)
        test_idx.append(idx[:n_test])
        if digit == normal_digit:
            train_idx = idx[n_test:]
    test_idx = rng.permutation(np.concatenate(test_idx))
    train_idx = np.sort(train_idx)
    X_train, X_test = X[train_idx], X[test_idx]
    y_test = (target[test_idx] != normal_digit).astype(np.int64)
    return DigitsSplit(
        X_train=X_train,
        X_test=X_test,
        y_test=y_test,
        images_train=X_train.reshape(-1, 8, 8),
        images_test=X_test.reshape(-1, 8, 8),
    )

