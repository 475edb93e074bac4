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
"""

from adcourse.data._common import ImageSet
from adcourse.data.digits import DigitsSplit, load_digits_oneclass
from adcourse.data.mnist import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    load_cifar10_oneclass,
    load_fashion_mnist_oneclass,
    load_mnist_oneclass,
    load_torchvision_oneclass,
)
from adcourse.data.mvtec import MVTEC_URL, load_mvtec, mvtec_defect_types
from adcourse.data.nanofibers import (
    DEFECT_TYPES,
    SAMPLES_DIR,
    load_samples,
    make_nanofibers,
    save_samples,
)
from adcourse.data.nanotwice import (
    COURSE_SCALE,
    NANOTWICE_ENV,
    NANOTWICE_STATISTICS,
    NanoTwiceSplit,
    load_nanotwice,
    measure_nanotwice_statistics,
    nanotwice_names,
    nanotwice_root,
    nanotwice_split,
    sem_statistics,
)
from adcourse.data.tabular import load_breast_cancer_oneclass
from adcourse.data.textures import TEXTURE_DEFECTS, TEXTURES, make_textures
from adcourse.data.toys import SHAPES_2D, make_shapes_2d, make_toy_1d, make_toy_2d

__all__ = [
    "ImageSet",
    "DigitsSplit",
    "DEFECT_TYPES",
    "make_nanofibers",
    "make_toy_1d",
    "make_toy_2d",
    "make_shapes_2d",
    "make_textures",
    "TEXTURES",
    "TEXTURE_DEFECTS",
    "SHAPES_2D",
    "load_breast_cancer_oneclass",
    "load_digits_oneclass",
    "save_samples",
    "load_samples",
    "SAMPLES_DIR",
    "load_mvtec",
    "mvtec_defect_types",
    "MVTEC_URL",
    "load_mnist_oneclass",
    "load_fashion_mnist_oneclass",
    "load_cifar10_oneclass",
    "load_torchvision_oneclass",
    "FASHION_MNIST_CLASSES",
    "CIFAR10_CLASSES",
    "COURSE_SCALE",
    "NANOTWICE_ENV",
    "NANOTWICE_STATISTICS",
    "NanoTwiceSplit",
    "load_nanotwice",
    "measure_nanotwice_statistics",
    "nanotwice_names",
    "nanotwice_root",
    "nanotwice_split",
    "sem_statistics",
]
