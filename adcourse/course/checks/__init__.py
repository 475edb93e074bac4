r"""Checks of the course exercises: run in the exercise notebooks' ``check`` cells.

One module per exercise, named after its chapter, and a base shared by all:

* :mod:`adcourse.course.checks._base` -- :class:`CheckFailed`, the task decorator (it
  prefixes failures with ``Task N (...)`` and prints ``✓ Task N passed``), and
  the helpers that format inputs, call the student's function on copies of the
  inputs and compare numbers and arrays;
* :mod:`adcourse.course.checks.performance_measures` -- exercise 1 (chapter 1);
* :mod:`adcourse.course.checks.random_vectors` -- exercise 2 (chapter 2);
* :mod:`adcourse.course.checks.image_patches` -- exercise 3 (chapter 3);
* :mod:`adcourse.course.checks.subspaces_sparse_coding` -- exercise 4 (chapter 4);
* :mod:`adcourse.course.checks.cnn_features` -- exercise 5 (chapter 5).

Each check runs the student's function on fresh data (made by the check, with
fixed seeds, never the notebook's data) and compares it with the reference
implementation in :mod:`adcourse`. A wrong answer raises :class:`CheckFailed`
whose message gives the input, the expected and the received values and, when
the answer matches a typical mistake, its likely cause. Errors raised by the
student's own code (``NotImplementedError`` of an unsolved stub, ...) are not
caught. Every check is importable from here::

    from adcourse.course.checks import check_confusion_rates, check_em_step

:data:`TASKS` maps each exercise (the solution notebook's name) to its checks by
task id; the grader and the tests use it.
"""

from __future__ import annotations

from adcourse.course.checks import (
    cnn_features,
    image_patches,
    performance_measures,
    random_vectors,
    subspaces_sparse_coding,
)
from adcourse.course.checks._base import CheckFailed
from adcourse.course.checks.cnn_features import (
    check_collect_activations,
    check_location_statistics,
    check_mahalanobis_map,
    check_student_teacher_score,
    check_three_sigma_threshold,
)
from adcourse.course.checks.image_patches import (
    check_average_map,
    check_extract_all_patches,
    check_pca_directions,
    check_two_energies,
)
from adcourse.course.checks.performance_measures import (
    check_best_roc_threshold,
    check_confusion_rates,
    check_evaluate_on_test,
    check_roc,
    check_threshold_for_fpr,
)
from adcourse.course.checks.random_vectors import (
    check_choose_nu,
    check_em_step,
    check_isolation,
    check_knn_score,
    check_mahalanobis_scores,
)
from adcourse.course.checks.subspaces_sparse_coding import (
    check_admm_step,
    check_density_threshold,
    check_reconstruction_error,
    check_soft_threshold,
    check_sparse_features,
)

__all__ = [
    "CheckFailed",
    # exercise 1: performance measures
    "check_confusion_rates",
    "check_roc",
    "check_threshold_for_fpr",
    "check_best_roc_threshold",
    "check_evaluate_on_test",
    # exercise 2: random vectors
    "check_mahalanobis_scores",
    "check_em_step",
    "check_isolation",
    "check_knn_score",
    "check_choose_nu",
    # exercise 3: image patches
    "check_extract_all_patches",
    "check_average_map",
    "check_pca_directions",
    "check_two_energies",
    # exercise 4: subspaces and sparse coding
    "check_reconstruction_error",
    "check_soft_threshold",
    "check_admm_step",
    "check_sparse_features",
    "check_density_threshold",
    # exercise 5: CNN features
    "check_collect_activations",
    "check_location_statistics",
    "check_mahalanobis_map",
    "check_student_teacher_score",
    "check_three_sigma_threshold",
    "TASKS",
]

#: Checks by exercise and task id (the ids of the ``check`` cells' metadata).
TASKS = {
    "01-performance-measures": performance_measures.TASKS,
    "02-random-vectors": random_vectors.TASKS,
    "03-image-patches": image_patches.TASKS,
    "04-subspaces-sparse-coding": subspaces_sparse_coding.TASKS,
    "05-cnn-features": cnn_features.TASKS,
}
