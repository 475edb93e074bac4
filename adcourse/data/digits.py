"""scikit-learn's 8x8 handwritten digits in the one-class protocol (real handwriting, offline)."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from adcourse.data._common import _check_int, _check_real, _rng

__all__ = ["DigitsSplit", "load_digits_oneclass"]


@dataclass(frozen=True, eq=False)
class DigitsSplit:
    """One-class split of the digits data set (see :func:`load_digits_oneclass`).

    Attributes
    ----------
    X_train : ndarray of shape (n_train, H * W)
        Flattened training images of the normal digit only, values in [0, 1]
        (H = W = 8 unless resized).
    X_test : ndarray of shape (n_test, H * W)
        Flattened test images of every digit.
    y_test : ndarray of shape (n_test,)
        1 = anomaly (not the normal digit), 0 = normal.
    images_train : ndarray of shape (n_train, H, W)
        ``X_train`` as images.
    images_test : ndarray of shape (n_test, H, W)
        ``X_test`` as images.
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    images_train: np.ndarray
    images_test: np.ndarray


def load_digits_oneclass(normal_digit=0, test_size=0.5, random_state=0, size=None):
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
    size : int, (H, W) or None, default=None
        Resize the 8x8 images to this size (bilinear interpolation, for networks
        that need larger inputs, e.g. ``size=28`` as MNIST); ``None`` keeps 8x8.
        The split does not depend on it.

    Returns
    -------
    DigitsSplit
        ``X_train`` (n_train, H*W) and ``X_test`` (n_test, H*W) with pixel values in
        [0, 1], ``y_test`` (1 = anomaly, i.e. not ``normal_digit``), and the same
        images as ``images_train`` (n_train, H, W) and ``images_test`` (n_test, H, W).

    See Also
    --------
    adcourse.compare.one_class : the protocol over all ten digits and several seeds.

    Examples
    --------
    >>> split = load_digits_oneclass(normal_digit=3, random_state=0)
    >>> split.X_train.shape[1], split.images_test.shape[1:]
    (64, (8, 8))
    >>> float(split.X_train.max()) <= 1.0
    True
    >>> load_digits_oneclass(normal_digit=3, random_state=0, size=28).images_train.shape[1:]
    (28, 28)
    """
    from sklearn.datasets import load_digits

    normal_digit = _check_int("normal_digit", normal_digit, 0, 9)
    test_size = _check_real("test_size", test_size, 0.0, 1.0, low_open=True, high_open=True)
    rng = _rng(random_state)
    shape = _check_size(size)
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
    images_train, images_test = X[train_idx].reshape(-1, 8, 8), X[test_idx].reshape(-1, 8, 8)
    if shape != (8, 8):
        images_train, images_test = _resize(images_train, shape), _resize(images_test, shape)
    y_test = (target[test_idx] != normal_digit).astype(np.int64)
    return DigitsSplit(
        X_train=images_train.reshape(len(images_train), -1),
        X_test=images_test.reshape(len(images_test), -1),
        y_test=y_test,
        images_train=images_train,
        images_test=images_test,
    )


def _check_size(size):
    if size is None:
        return (8, 8)
    pair = (size, size) if isinstance(size, Integral) else size
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 2 for v in pair):
        raise ValueError(f"size must be None, an integer >= 2 or a pair (H, W) of them, got {size!r}")
    return tuple(int(v) for v in pair)


def _resize(images, shape):
    """Bilinear resizing of (n, 8, 8) images to (n, H, W), values kept in [0, 1]."""
    from skimage.transform import resize

    out = resize(images, (len(images),) + shape, order=1, mode="edge", anti_aliasing=False)
    return np.clip(out, 0.0, 1.0)

