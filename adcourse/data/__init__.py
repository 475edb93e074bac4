"""Data for the course: generators, shipped samples and loaders of real data sets.

Everything a chapter needs is made on the fly or shipped with the package (or with
scikit-learn / scikit-image), so the book, the exercises and the tests run offline.
Real data sets have real loaders for users who have the files.

* :mod:`~adcourse.data.nanofibers` -- synthetic SEM images of nanofibres with exact
  defect masks (the lecture's running example) and the committed PNG sample;
* :mod:`~adcourse.data.toys` -- toy vectors ``phi0`` / ``phi1`` in 1-D and 2-D (chapter 2);
* :mod:`~adcourse.data.textures` -- scikit-image's real textures with synthetic defects;
* :mod:`~adcourse.data.digits` -- scikit-learn's handwritten digits, one-class protocol;
* :mod:`~adcourse.data.tabular` -- scikit-learn's breast-cancer data, one-class protocol;
* :mod:`~adcourse.data.mvtec` -- MVTec AD folders (downloaded by hand);
* :mod:`~adcourse.data.mnist` -- MNIST / Fashion-MNIST / CIFAR-10 via torchvision, one-class
  protocol (downloaded on first use when online);
* :mod:`~adcourse.data.nanotwice` -- the real NanoTWICE SEM images of the lecture, from a
  folder the user names (never shipped), their split, and the statistics the nanofibre
  generator is calibrated on.

All generators take ``random_state`` (an int, a :class:`numpy.random.Generator` or
None) and are deterministic for a fixed int.

Names are imported from their module on first use (PEP 562), so that
``from adcourse.data import make_toy_1d`` does not pay for scipy.ndimage, which
the image generators need.
"""

import importlib

#: public name -> the submodule of adcourse.data that defines it
_EXPORTS = {
    "ImageSet": "_common",
    "DigitsSplit": "digits",
    "load_digits_oneclass": "digits",
    "CIFAR10_CLASSES": "mnist",
    "FASHION_MNIST_CLASSES": "mnist",
    "load_cifar10_oneclass": "mnist",
    "load_fashion_mnist_oneclass": "mnist",
    "load_mnist_oneclass": "mnist",
    "load_torchvision_oneclass": "mnist",
    "MVTEC_URL": "mvtec",
    "load_mvtec": "mvtec",
    "mvtec_defect_types": "mvtec",
    "DEFECT_TYPES": "nanofibers",
    "SAMPLES_DIR": "nanofibers",
    "load_samples": "nanofibers",
    "make_nanofibers": "nanofibers",
    "save_samples": "nanofibers",
    "COURSE_SCALE": "nanotwice",
    "NANOTWICE_ENV": "nanotwice",
    "NANOTWICE_STATISTICS": "nanotwice",
    "NanoTwiceSplit": "nanotwice",
    "load_nanotwice": "nanotwice",
    "measure_nanotwice_statistics": "nanotwice",
    "nanotwice_names": "nanotwice",
    "nanotwice_root": "nanotwice",
    "nanotwice_split": "nanotwice",
    "sem_statistics": "nanotwice",
    "load_breast_cancer_oneclass": "tabular",
    "TEXTURE_DEFECTS": "textures",
    "TEXTURES": "textures",
    "make_textures": "textures",
    "SHAPES_2D": "toys",
    "make_shapes_2d": "toys",
    "make_toy_1d": "toys",
    "make_toy_2d": "toys",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'adcourse.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"adcourse.data.{module}"), name)
    globals()[name] = value  # next time, a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
