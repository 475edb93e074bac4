r"""MNIST, Fashion-MNIST and CIFAR-10 in the one-class protocol of Deep SVDD (via torchvision).

The protocol of Ruff et al. (2018), used by most deep one-class papers: one class of
the data set is **normal**, the nine others are anomalies;

* the training set is the normal class of the **training split** only (no anomaly,
  no label needed);
* the test set is the **whole test split** (about 10 % normal, 90 % anomalous),
  labelled 1 = anomaly (any other class), 0 = normal.

The images are read by torchvision from its usual folders under ``root``
(``root/MNIST/raw/``, ``root/FashionMNIST/raw/``, ``root/cifar-10-batches-py/``) and
downloaded there on first use when ``download=True`` and the machine is online. Offline,
with the files missing, the loaders raise a :class:`FileNotFoundError` that says where
to put them, and that :func:`adcourse.data.load_digits_oneclass` (scikit-learn's
handwritten digits, shipped with scikit-learn) is the offline default of the course.

The splits are :class:`adcourse.data.DigitsSplit` objects, like the digits protocol:
``X_train`` / ``X_test`` flattened, ``images_train`` / ``images_test`` as images,
values in [0, 1] (8-bit pixels divided by 255), ``y_test`` the anomaly labels.

References
----------
L. Ruff, R. Vandermeulen, N. Görnitz, L. Deecke, S. Siddiqui, A. Binder, E. Müller,
M. Kloft, "Deep one-class classification", ICML 2018.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from adcourse.data._common import _check_int, _rng
from adcourse.data.digits import DigitsSplit

__all__ = [
    "TORCHVISION_DATASETS",
    "FASHION_MNIST_CLASSES",
    "CIFAR10_CLASSES",
    "default_data_root",
    "load_torchvision_oneclass",
    "load_mnist_oneclass",
    "load_fashion_mnist_oneclass",
    "load_cifar10_oneclass",
]

#: class names of Fashion-MNIST, by label
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: class names of CIFAR-10, by label
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

#: the data sets, torchvision class name and the files torchvision reads under ``root``
TORCHVISION_DATASETS = {
    "mnist": ("MNIST", "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte"),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}"),
}


def default_data_root():
    """Folder of the torchvision data sets: ``$ADCOURSE_DATA`` if set, else ``~/.cache/adcourse``."""
    return Path(os.environ.get("ADCOURSE_DATA", Path.home() / ".cache" / "adcourse")).expanduser()


def _offline_message(name, root, files):
    return (
        f"{name} is not in {root} (torchvision expects {Path(root) / files}). "
        f"Online, pass download=True to fetch it there (torchvision downloads it once); "
        f"offline, copy the files there by hand, or use adcourse.data.load_digits_oneclass "
        f"(scikit-learn's handwritten digits, no download), the course's offline default"
    )


def _read_split(dataset, root, train, download):
    """``(images uint8 (n, H, W) or (n, 3, H, W), labels int (n,))`` of one split, via torchvision."""
    from urllib.error import URLError

    import torchvision

    cls_name, files = TORCHVISION_DATASETS[dataset]
    cls = getattr(torchvision.datasets, cls_name)
    root = Path(root)
    try:  # first from disk, so that an offline machine with the files never touches the network
        ds = cls(str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise FileNotFoundError(_offline_message(cls_name, root, files)) from None
        try:
            ds = cls(str(root), train=train, download=True)
        except (URLError, OSError, RuntimeError) as err:
            raise FileNotFoundError(
                f"could not download {cls_name} into {root} (is this machine offline?): "
                f"{str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}. "
                + _offline_message(cls_name, root, files)
            ) from err
    images = np.asarray(ds.data)
    if images.ndim == 4:  # CIFAR: (n, H, W, 3) -> (n, 3, H, W), the layout of adcourse
        images = images.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(images), np.asarray(ds.targets, dtype=np.int64)


def _subsample(n, max_n, rng, name):
    if max_n is None:
        return np.arange(n)
    max_n = _check_int(name, max_n, 1)
    return np.sort(rng.choice(n, size=max_n, replace=False)) if max_n < n else np.arange(n)


def load_torchvision_oneclass(dataset, normal_class=0, root=None, download=False,
                              max_train=None, max_test=None, random_state=0):
    r"""One class of MNIST, Fashion-MNIST or CIFAR-10 as normal, in the one-class protocol.

    Training set: the images of class ``normal_class`` in the training split.
    Test set: the whole test split, ``y_test = 1`` for every other class.

    Parameters
    ----------
    dataset : {"mnist", "fashion_mnist", "cifar10"}
        The torchvision data set.
    normal_class : int in 0..9, default 0
        The normal class (a digit for MNIST; see :data:`FASHION_MNIST_CLASSES` and
        :data:`CIFAR10_CLASSES` for the others).
    root : str or Path, optional
        Folder holding torchvision's data folders; default :func:`default_data_root`.
    download : bool, default False
        Download the data set into ``root`` when it is not there (needs internet).
    max_train, max_test : int, optional
        Keep a random subset of at most this many training / test images (drawn
        with ``random_state``; the order of the kept images is preserved), e.g. to
        run on a laptop in seconds. Default: all of them.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the subsets (the only randomness).

    Returns
    -------
    DigitsSplit
        ``images_train`` (n_train, 28, 28) for the MNISTs, (n_train, 3, 32, 32) for
        CIFAR-10, floats in [0, 1] (pixels / 255); ``X_train`` the same, flattened;
        ``images_test``, ``X_test`` likewise; ``y_test`` 1 = anomaly, 0 = normal.

    Raises
    ------
    FileNotFoundError
        The files are not under ``root`` and could not be downloaded (``download``
        False, or no internet); the message says where torchvision expects them.
    ValueError
        Unknown ``dataset``, ``normal_class`` not in 0..9, bad ``max_train`` / ``max_test``.
    """
    if dataset not in TORCHVISION_DATASETS:
        raise ValueError(f"dataset must be one of {sorted(TORCHVISION_DATASETS)}, got {dataset!r}")
    normal_class = _check_int("normal_class", normal_class, 0, 9)
    rng = _rng(random_state)
    root = default_data_root() if root is None else Path(root).expanduser()
    train_images, train_labels = _read_split(dataset, root, True, download)
    test_images, test_labels = _read_split(dataset, root, False, download)

    normal = np.flatnonzero(train_labels == normal_class)
    if normal.size == 0:
        raise ValueError(f"the training split of {dataset} in {root} has no image of class {normal_class}")
    normal = normal[_subsample(normal.size, max_train, rng, "max_train")]
    keep = _subsample(len(test_labels), max_test, rng, "max_test")
    images_train = train_images[normal].astype(np.float64) / 255.0
    images_test = test_images[keep].astype(np.float64) / 255.0
    y_test = (test_labels[keep] != normal_class).astype(np.int64)
    return DigitsSplit(
        X_train=images_train.reshape(len(images_train), -1),
        X_test=images_test.reshape(len(images_test), -1),
        y_test=y_test,
        images_train=images_train,
        images_test=images_test,
    )


def load_mnist_oneclass(normal_digit=0, root=None, download=False, max_train=None, max_test=None,
                        random_state=0):
    """MNIST (LeCun et al., 1998) in the one-class protocol: see :func:`load_torchvision_oneclass`.

    Examples
    --------
    Offline, without the files, the loader says what to do:

    >>> import tempfile
    >>> try:
    ...     load_mnist_oneclass(3, root=tempfile.mkdtemp())
    ... except FileNotFoundError as err:
    ...     print(err)  # doctest: +ELLIPSIS
    MNIST is not in ... (torchvision expects .../MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte). ...
    """
    return load_torchvision_oneclass("mnist", normal_digit, root, download, max_train, max_test,
                                     random_state)


def load_fashion_mnist_oneclass(normal_class=0, root=None, download=False, max_train=None,
                                max_test=None, random_state=0):
    """Fashion-MNIST (Xiao et al., 2017) in the one-class protocol: see :func:`load_torchvision_oneclass`."""
    return load_torchvision_oneclass("fashion_mnist", normal_class, root, download, max_train,
                                     max_test, random_state)


def load_cifar10_oneclass(normal_class=0, root=None, download=False, max_train=None,
                          max_test=None, random_state=0):
    """CIFAR-10 (Krizhevsky, 2009) in the one-class protocol, colour (n, 3, 32, 32): see
    :func:`load_torchvision_oneclass`."""
    return load_torchvision_oneclass("cifar10", normal_class, root, download, max_train, max_test,
                                     random_state)
