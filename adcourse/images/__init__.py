"""Part 2 of the lecture (chapters 3-4): anomaly detection in images, patch by patch.

* :mod:`~adcourse.images.patches` -- patches, the patch-wise detector and score maps (chapter 3);
* :mod:`~adcourse.images.subspace` -- PCA reconstruction error, PCA energies, kernel PCA (chapter 4);
* :mod:`~adcourse.images.sparse` -- sparse coding by ADMM, dictionary learning, the
  (reconstruction error, sparsity) detector (chapter 4);
* :mod:`~adcourse.images.features` -- feature monitoring: local statistics and expert features (chapter 4).

Every detector follows :class:`adcourse.base.BaseImageDetector`: ``fit(images)`` on
normal images, ``anomaly_map(images)`` at input resolution, image score = max of the map.
"""

from adcourse.images.features import ExpertFeatureDetector, LocalFeatureDetector
from adcourse.images.patches import PatchDetector, extract_patches, patch_scores_to_map
from adcourse.images.sparse import SparseCodingDetector
from adcourse.images.subspace import KernelPCADetector, PCADetector, PCAFeatureDetector

__all__ = [
    "PatchDetector",
    "extract_patches",
    "patch_scores_to_map",
    "PCADetector",
    "PCAFeatureDetector",
    "KernelPCADetector",
    "SparseCodingDetector",
    "LocalFeatureDetector",
    "ExpertFeatureDetector",
]
