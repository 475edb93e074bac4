"""Tests of adcourse.data.mnist: torchvision's MNIST / Fashion-MNIST / CIFAR-10 in the one-class protocol.

No download: each test writes a tiny data set in torchvision's raw format into tmp_path
(idx files for the MNISTs, pickled batches for CIFAR-10) and reads it back through the
loaders, i.e. through torchvision's own parsers.
"""

import pickle
import struct
from urllib.error import URLError

import numpy as np
import pytest

from adcourse import data
from adcourse.data import (
    DigitsSplit,
    load_cifar10_oneclass,
    load_fashion_mnist_oneclass,
    load_mnist_oneclass,
    load_torchvision_oneclass,
)


def _write_idx(path, array):
    """An uint8 array in the idx format of LeCun's MNIST files (big-endian header)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def _mnist_like(root, folder, n_train=40, n_test=30, seed=0):
    """Random 28x28 images and labels 0..9, written as torchvision's ``<folder>/raw`` files."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        _write_idx(raw / f"{split}-images-idx3-ubyte", images)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
        out[split] = (images, labels)
    return out


def _cifar_like(root, n_per_batch=12, n_test=20, seed=0):
    """Random 32x32 colour images in torchvision's ``cifar-10-batches-py`` pickles."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for k in range(1, 6):
        x = rng.integers(0, 256, size=(n_per_batch, 3 * 32 * 32), dtype=np.uint8)
        y = list(rng.integers(0, 10, size=n_per_batch))
        with open(folder / f"data_batch_{k}", "wb") as f:
            pickle.dump({"data": x, "labels": y}, f)
        train_x.append(x)
        train_y += y
    x = rng.integers(0, 256, size=(n_test, 3 * 32 * 32), dtype=np.uint8)
    y = list(np.arange(n_test) % 10)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": x, "labels": y}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(data.CIFAR10_CLASSES)}, f)
    return {"train": (np.concatenate(train_x), np.array(train_y)), "test": (x, np.array(y))}


@pytest.mark.parametrize("loader, folder", [(load_mnist_oneclass, "MNIST"),
                                            (load_fashion_mnist_oneclass, "FashionMNIST")])
def test_mnist_oneclass_protocol(tmp_path, loader, folder):
    truth = _mnist_like(tmp_path, folder)
    split = loader(3, root=tmp_path)
    assert isinstance(split, DigitsSplit)
    train_images, train_labels = truth["train"]
    test_images, test_labels = truth["t10k"]
    # training set: exactly the class-3 images of the training split, in order, /255
    np.testing.assert_array_equal(split.images_train, train_images[train_labels == 3] / 255.0)
    # test set: the whole test split, anomaly = any other class
    np.testing.assert_array_equal(split.images_test, test_images / 255.0)
    np.testing.assert_array_equal(split.y_test, (test_labels != 3).astype(int))
    assert split.images_train.shape[1:] == (28, 28)
    assert split.X_train.shape == (len(split.images_train), 784)
    np.testing.assert_array_equal(split.X_test, split.images_test.reshape(len(test_images), -1))
    assert split.images_train.min() >= 0 and split.images_train.max() <= 1


def test_cifar10_oneclass_protocol(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    truth = _cifar_like(tmp_path)
    # the fixture's files are not the real ones, so their md5 differ from torchvision's list:
    # accept any existing file (torchvision's own reading code still parses them)
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: __import__("os").path.isfile(path))
    split = load_cifar10_oneclass(7, root=tmp_path)
    x, y = truth["train"]
    expected = x[y == 7].reshape(-1, 3, 32, 32) / 255.0  # torchvision's CHW rows
    np.testing.assert_array_equal(split.images_train, expected)
    assert split.images_test.shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(split.images_test, truth["test"][0].reshape(-1, 3, 32, 32) / 255.0)
    np.testing.assert_array_equal(split.y_test, (truth["test"][1] != 7).astype(int))
    assert split.X_train.shape == (len(expected), 3072)


def test_subsets_are_seeded_and_keep_order(tmp_path):
    truth = _mnist_like(tmp_path, "MNIST", n_train=200, n_test=100)
    a = load_mnist_oneclass(1, root=tmp_path, max_train=5, max_test=17, random_state=4)
    b = load_mnist_oneclass(1, root=tmp_path, max_train=5, max_test=17, random_state=4)
    c = load_mnist_oneclass(1, root=tmp_path, max_train=5, max_test=17, random_state=5)
    assert a.images_train.shape == (5, 28, 28) and a.images_test.shape == (17, 28, 28)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.X_test, c.X_test)
    # each kept test image is one of the test split, in the split's order
    test_images, test_labels = truth["t10k"]
    flat = test_images.reshape(len(test_images), -1) / 255.0
    rows = [int(np.flatnonzero((flat == row).all(axis=1))[0]) for row in a.X_test]
    assert rows == sorted(rows)
    np.testing.assert_array_equal(a.y_test, (test_labels[rows] != 1).astype(int))
    # more than there are: everything
    every = load_mnist_oneclass(1, root=tmp_path, max_train=10_000)
    assert len(every.images_train) == int((truth["train"][1] == 1).sum())


def test_missing_files_offline_message(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_mnist_oneclass(0, root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in msg
    assert "download=True" in msg and "load_digits_oneclass" in msg


def test_download_failure_gives_the_offline_message(tmp_path, monkeypatch):
    import torchvision

    calls = []

    def offline(self):
        calls.append(type(self).__name__)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(FileNotFoundError, match="offline") as err:
        load_fashion_mnist_oneclass(2, root=tmp_path, download=True)
    assert calls == ["FashionMNIST"]
    assert "name resolution" in str(err.value) and "load_digits_oneclass" in str(err.value)


def test_files_on_disk_are_never_downloaded(tmp_path, monkeypatch):
    import torchvision

    _mnist_like(tmp_path, "MNIST")

    def no_network(self):
        raise AssertionError("download() called although the files are there")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    assert len(load_mnist_oneclass(0, root=tmp_path, download=True).images_test) == 30


def test_default_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ADCOURSE_DATA", str(tmp_path))
    assert data.mnist.default_data_root() == tmp_path
    _mnist_like(tmp_path, "MNIST")
    assert load_mnist_oneclass(5).images_train.shape[1:] == (28, 28)


@pytest.mark.parametrize("kwargs, name", [
    ({"dataset": "svhn"}, "dataset"),
    ({"dataset": "mnist", "normal_class": 10}, "normal_class"),
    ({"dataset": "mnist", "normal_class": 1.5}, "normal_class"),
    ({"dataset": "mnist", "max_train": 0}, "max_train"),
    ({"dataset": "mnist", "max_test": -3}, "max_test"),
])
def test_bad_arguments(tmp_path, kwargs, name):
    _mnist_like(tmp_path, "MNIST")
    with pytest.raises(ValueError, match=name):
        load_torchvision_oneclass(root=tmp_path, **kwargs)
