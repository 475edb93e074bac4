r"""Checks of the course exercises: run in the exercise notebooks' ``check`` cells, and by the grader.

One module per exercise, named after its chapter, and a base shared by all:

* :mod:`adcourse.course.checks._base` -- the task format (:class:`~._base.Task`: the
  functions a task checks, its questions, its judge, what the student's code may use),
  :class:`CheckFailed` and the helpers that format inputs and compare numbers and arrays;
* :mod:`adcourse.course.checks._kernel` and :mod:`adcourse.course.checks._wire` -- grading
  time in the kernel: the answers computed and written as data;
* :mod:`adcourse.course.checks.performance_measures` -- exercise 1 (chapter 1);
* :mod:`adcourse.course.checks.random_vectors` -- exercise 2 (chapter 2);
* :mod:`adcourse.course.checks.image_patches` -- exercise 3 (chapter 3);
* :mod:`adcourse.course.checks.subspaces_sparse_coding` -- exercise 4 (chapter 4);
* :mod:`adcourse.course.checks.cnn_features` -- exercise 5 (chapter 5);
* :mod:`adcourse.course.checks.autoencoders` -- exercise 6 (chapter 6);
* :mod:`adcourse.course.checks.self_supervision` -- exercise 7 (chapter 7);
* :mod:`adcourse.course.checks.deep_svdd` -- exercise 8 (chapter 8);
* :mod:`adcourse.course.checks.gans` -- exercise 9 (chapter 9).

A check cell calls the task's check without arguments; it finds the student's
functions by name in the notebook::

    from adcourse.course.checks import check_roc
    check_roc()            # checks roc_points and auc_trapezoid

Each check asks the student's functions questions on fresh data (made by the
check from its seed, never the notebook's data) and compares the answers with
the reference implementation in :mod:`adcourse`. A wrong answer raises
:class:`CheckFailed` whose message gives the input, the expected and the
received values and, when the answer matches a typical mistake, its likely
cause. Errors raised by the student's own code (``NotImplementedError`` of an
unsolved stub, ...) are not caught. At grading time the same questions are asked
with a seed the grader draws, the kernel only reports the answers, and the
verdict is taken in the grader (:mod:`adcourse.course.judge`).

:data:`TASKS` maps each exercise (the solution notebook's name) to its tasks by
task id; the grader and the tests use it. Importing this package stays light:
no torch, no scikit-learn (the references are imported by the judges).
"""

from __future__ import annotations

from adcourse.course.checks import (
    autoencoders,
    cnn_features,
    deep_svdd,
    gans,
    image_patches,
    performance_measures,
    random_vectors,
    self_supervision,
    subspaces_sparse_coding,
)
from adcourse.course.checks._base import CheckFailed, NotDefined
from adcourse.course.checks.autoencoders import (
    check_dagmm_energy,
    check_gmm_scores,
    check_reconstruction_threshold,
    check_ssim_map,
)
from adcourse.course.checks.cnn_features import (
    check_collect_activations,
    check_location_statistics,
    check_mahalanobis_map,
    check_student_teacher_score,
    check_three_sigma_threshold,
)
from adcourse.course.checks.deep_svdd import (
    check_initial_center,
    check_one_class_loss,
    check_outside_fractions,
    check_soft_boundary_loss,
    check_soft_boundary_radius,
)
from adcourse.course.checks.gans import (
    check_anogan_functional,
    check_bigan_score,
    check_combined_map,
    check_gan_losses,
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
from adcourse.course.checks.self_supervision import (
    check_build_tr_new,
    check_dirichlet_log_pdf,
    check_inpaint,
    check_simple_score,
    check_tile_masks,
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
    "NotDefined",
    "task_of",
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
    # exercise 6: autoencoders
    "check_ssim_map",
    "check_reconstruction_threshold",
    "check_gmm_scores",
    "check_dagmm_energy",
    # exercise 7: self-supervision
    "check_build_tr_new",
    "check_simple_score",
    "check_dirichlet_log_pdf",
    "check_tile_masks",
    "check_inpaint",
    # exercise 8: Deep SVDD
    "check_initial_center",
    "check_one_class_loss",
    "check_soft_boundary_loss",
    "check_soft_boundary_radius",
    "check_outside_fractions",
    # exercise 9: GANs
    "check_gan_losses",
    "check_anogan_functional",
    "check_bigan_score",
    "check_combined_map",
    "TASKS",
]

#: Checks by exercise and task id (the ids of the ``check`` cells' metadata).
TASKS = {
    "01-performance-measures": performance_measures.TASKS,
    "02-random-vectors": random_vectors.TASKS,
    "03-image-patches": image_patches.TASKS,
    "04-subspaces-sparse-coding": subspaces_sparse_coding.TASKS,
    "05-cnn-features": cnn_features.TASKS,
    "06-autoencoders": autoencoders.TASKS,
    "07-self-supervision": self_supervision.TASKS,
    "08-deep-svdd": deep_svdd.TASKS,
    "09-gans": gans.TASKS,
}


def task_of(exercise, task):
    """The :class:`~adcourse.course.checks._base.Task` ``task`` (``"task-2"``) of ``exercise``."""
    try:
        return TASKS[exercise][task]
    except KeyError:
        raise KeyError(f"no task {task!r} in exercise {exercise!r}") from None
