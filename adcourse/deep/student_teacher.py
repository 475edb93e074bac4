r"""Student–teacher anomaly detection: *Uninformed Students* (Bergmann et al., CVPR 2020).

A **teacher** is a frozen network pretrained on another task; at every location
:math:`c` of its feature map it gives a descriptor :math:`y_c \in \mathbb{R}^C`
of the image patch around :math:`c`. An ensemble of :math:`M` **students**, networks
of one same architecture trained from scratch on *normal images only*, learns to
regress the teacher's descriptors: student :math:`i` predicts
:math:`\mu^i_c \approx y_c` at every location, with the loss

.. math::

    L(\theta_i) = \frac{1}{|S|\,hw} \sum_{s \in S} \sum_{c}
        \frac{1}{C} \lVert \mu^i_c(s; \theta_i) - y_c(s) \rVert_2^2 .

The students only ever saw normal patches, so on an anomalous patch they
extrapolate: they regress **poorly** and, having been initialised differently,
they **disagree**. With the ensemble mean :math:`\mu_c = \frac1M \sum_i \mu^i_c`,
the two per-location statistics are the *regression error* and the *predictive
uncertainty*

.. math::

    e_c = \lVert \mu_c - y_c \rVert_2^2, \qquad
    v_c = \frac{1}{M} \sum_{i=1}^{M} \lVert \mu^i_c \rVert_2^2 - \lVert \mu_c \rVert_2^2
        = \frac{1}{M} \sum_{i=1}^{M} \lVert \mu^i_c - \mu_c \rVert_2^2 ,

i.e. :math:`v_c` is the variance of the ensemble, summed over the :math:`C`
channels (computed with the right-hand form, which is never negative in floating
point; :func:`student_teacher_scores`). Both are large on anomalies, on
different scales: each is standardised with its mean and standard deviation over
all the locations of a **validation set** :math:`V` of normal images, disjoint
from the students' training set :math:`S`, and the anomaly score is the sum

.. math::

    \tilde s_c = \frac{e_c - \bar e_V}{\sigma_{e,V}} + \frac{v_c - \bar v_V}{\sigma_{v,V}} .

The map of :math:`\tilde s` (one value per feature location) is upsampled
bilinearly to the image size and smoothed with a Gaussian
(:func:`adcourse.decision.smooth_maps`); the image score is its maximum.

Implementation choices (:class:`StudentTeacher`):

* the teacher is :class:`adcourse.deep.backbones.FeatureExtractor` on the course
  backbone (``layer1`` + ``layer2``, stride 4) by default, or any object with
  ``embed(images) -> (n, C, h, w)``; its features are **standardised per
  channel** with the mean and standard deviation over all training locations
  (as in the paper), so that every channel weighs the same in the losses;
* the student (:class:`StudentNet`) is a small fully-convolutional CNN with one
  stride-2 stage per halving of the resolution between the image and the
  teacher's map, context stages below it (upsampled back and stacked) until its
  receptive field is the closest to the teacher's -- the paper's students have
  exactly the teacher's receptive field -- and a 1×1 convolution head to the
  teacher's :math:`C` channels; student :math:`i` is initialised and shuffled
  with seed ``random_state + i``;
* the students are trained with :func:`adcourse.deep.training.fit_model` (mean
  squared error) on random crops of the training images (patch sampling), with
  a warm-up and cosine decay of the learning rate. The paper trains its
  teacher itself, by distillation from a ResNet with metric-learning and
  compactness terms; here the teacher is a pretrained network as it is;
* the paper combines several teachers of different receptive fields
  (multi-scale) by averaging the scores; here one teacher gives one scale (use
  a multi-layer ``FeatureExtractor`` for a multi-scale descriptor).

References
----------
P. Bergmann, M. Fauser, D. Sattlegger, C. Steger, "Uninformed Students:
Student–Teacher Anomaly Detection with Discriminative Latent Embeddings",
CVPR 2020.
B. Lakshminarayanan, A. Pritzel, C. Blundell, "Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles", NeurIPS 2017 (the ensemble's
variance as an uncertainty).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted

from adcourse.base import BaseImageDetector
from adcourse.decision import upsample_maps
from adcourse.deep.training import fit_model, predict, resolve_device, seeded
from adcourse.protocol import random_crops
from adcourse.validation import check_images

__all__ = ["StudentNet", "StudentTeacher", "student_teacher_scores"]

#: smallest standard deviation used to standardise a channel or a score (avoids 0/0)
_TINY = 1e-12


# --------------------------------------------------------------------------- #
# the two statistics
# --------------------------------------------------------------------------- #
def student_teacher_scores(student_preds, teacher_feats):
    r"""Regression error :math:`e` and predictive uncertainty :math:`v` at every location.

    Parameters
    ----------
    student_preds : array (M, n, C, h, w)
        The students' predictions :math:`\mu^i` (M students, n images).
    teacher_feats : array (n, C, h, w)
        The teacher's (standardised) features :math:`y`.

    Returns
    -------
    e, v : ndarrays (n, h, w), float64
        :math:`e = \lVert \mu - y \rVert^2` with :math:`\mu` the students' mean,
        and :math:`v = \frac1M \sum_i \lVert \mu^i - \mu \rVert^2` (the ensemble
        variance summed over channels, :math:`\geq 0`; zero when :math:`M = 1`).

    Examples
    --------
    >>> import numpy as np
    >>> preds = np.zeros((2, 1, 3, 1, 1)); preds[0, 0, :, 0, 0] = 1   # students: (1,1,1) and (0,0,0)
    >>> teacher = np.zeros((1, 3, 1, 1))
    >>> e, v = student_teacher_scores(preds, teacher)
    >>> float(e[0, 0, 0]), float(v[0, 0, 0])   # mean (.5,.5,.5): e = 3 * .25, v = 3 * .25
    (0.75, 0.75)
    """
    mu_i = np.asarray(student_preds, dtype=np.float64)
    y = np.asarray(teacher_feats, dtype=np.float64)
    if mu_i.ndim != 5:
        raise ValueError(f"student_preds must be (M, n, C, h, w), got shape {mu_i.shape}")
    if y.ndim != 4:
        raise ValueError(f"teacher_feats must be (n, C, h, w), got shape {y.shape}")
    if mu_i.shape[1:] != y.shape:
        raise ValueError(
            f"student_preds (M, n, C, h, w) = {mu_i.shape} does not match teacher_feats "
            f"(n, C, h, w) = {y.shape}"
        )
    if mu_i.shape[0] == 0 or y.size == 0:
        raise ValueError(f"empty input: student_preds {mu_i.shape}, teacher_feats {y.shape}")
    if not np.all(np.isfinite(mu_i)):
        raise ValueError("student_preds contains NaN or inf")
    if not np.all(np.isfinite(y)):
        raise ValueError("teacher_feats contains NaN or inf")
    mu = mu_i.mean(axis=0)  # (n, C, h, w)
    e = ((mu - y) ** 2).sum(axis=1)
    v = ((mu_i - mu) ** 2).sum(axis=2).mean(axis=0)
    return e, v


# --------------------------------------------------------------------------- #
# the student network
# --------------------------------------------------------------------------- #
class StudentNet(nn.Module):
    r"""A small fully-convolutional student: image (n, c_in, H, W) -> features (n, c_out, ⌈H/2^k⌉, ⌈W/2^k⌉).

    * **Down path** -- ``n_down`` stages (``k = n_down``), each a stride-2 3×3
      convolution and a 3×3 convolution (LeakyReLU after both), halve the
      resolution down to the teacher's grid (with ``n_down = 0``, one stride-1
      stage). Channels start at ``width`` and double at every stage, up to
      ``4 * width``.
    * **Context path** -- ``n_context`` more stages go below the teacher's grid;
      their maps are upsampled bilinearly back to it and stacked with the
      down path's (as :meth:`adcourse.deep.backbones.FeatureExtractor.embed`
      stacks a teacher's layers). They widen the receptive field cheaply: a
      student must see the patch its teacher describes (Bergmann et al. make
      the students' receptive field equal to the teacher's), and a deep
      teacher layer sees far (39 px for the course backbone's ``layer2``).
    * **Head** -- two 1×1 convolutions map each location to the ``c_out``
      teacher channels.

    Inputs in [0, 1] are first standardised with the fixed per-channel
    ``mean`` and ``std`` (buffers, e.g. those of the training images). A 3×3
    stride-2 convolution with padding 1 gives ``ceil(H / 2)`` rows, as the
    course backbone's stages do, so the output grid matches the teacher's.

    Attributes
    ----------
    receptive_field : int
        Side, in input pixels, of the square that one output location sees:
        :math:`r = 1 + \sum_l 2\,j_l` over the 3×3 convolutions :math:`l`,
        with :math:`j_l` the stride (jump) of the input of convolution
        :math:`l`, plus the stride of the deepest context map, whose bilinear
        upsampling mixes two neighbouring cells (19 px with ``n_down = 2`` and
        no context, 51 px with one context stage).
    """

    def __init__(self, c_in, c_out, n_down, width=16, n_context=1, mean=0.5, std=0.25):
        super().__init__()
        if n_down < 0 or n_context < 0:
            raise ValueError(f"n_down and n_context must be >= 0, got {n_down} and {n_context}")
        self.stages = nn.ModuleList()
        c = c_in
        for k in range(max(n_down, 1) + n_context):
            c_next = min(width * 2**k, 4 * width)
            self.stages.append(nn.Sequential(
                nn.Conv2d(c, c_next, 3, stride=self._stride(n_down, k), padding=1),
                nn.LeakyReLU(0.1),
                nn.Conv2d(c_next, c_next, 3, padding=1),
                nn.LeakyReLU(0.1),
            ))
            c = c_next
        self.receptive_field = self.receptive_field_of(n_down, n_context)
        #: index of the stage at the teacher's resolution; the later ones are the context
        self._out = max(n_down, 1) - 1
        stacked = sum(stage[2].out_channels for stage in self.stages[self._out:])
        self.head = nn.Sequential(nn.Conv2d(stacked, c_out, 1), nn.LeakyReLU(0.1), nn.Conv2d(c_out, c_out, 1))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1))

    @staticmethod
    def _stride(n_down, k):
        return 1 if (n_down == 0 and k == 0) else 2

    @classmethod
    def receptive_field_of(cls, n_down, n_context):
        """Receptive field (input pixels) of a student with these stages, without building it."""
        rf, jump = 1, 1
        for k in range(max(n_down, 1) + n_context):
            rf += 2 * jump  # the first 3x3 convolution of the stage sees its input's jump
            jump *= cls._stride(n_down, k)
            rf += 2 * jump  # the second one, after the (possible) stride 2
        # the bilinear upsampling of the deepest context map mixes two of its neighbouring cells
        return rf + (jump if n_context else 0)

    def forward(self, x):
        x = (x - self.mean) / self.std
        maps = []
        for k, stage in enumerate(self.stages):
            x = stage(x)
            if k >= self._out:
                maps.append(x)
        size = maps[0].shape[-2:]
        maps[1:] = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps[1:]]
        return self.head(torch.cat(maps, dim=1))


def _mse(model, x, y):
    return F.mse_loss(model(x), y)


# --------------------------------------------------------------------------- #
# the detector
# --------------------------------------------------------------------------- #
class StudentTeacher(BaseImageDetector):
    r"""Uninformed Students: an ensemble of students regressing a frozen teacher's features.

    ``fit`` splits the normal images into the students' training set :math:`S`
    and a validation set :math:`V` (a fraction ``validation_fraction``, drawn
    with ``random_state``), cuts ``n_crops`` random ``crop_size`` crops out of
    :math:`S` (patch sampling), standardises the teacher's features with
    their statistics, trains ``n_students`` :class:`StudentNet` on them, and
    computes the means and standard deviations of :math:`e` and :math:`v`
    over the locations of the whole images of :math:`V`. The anomaly map is
    :math:`(e-\bar e_V)/\sigma_{e,V} + (v-\bar v_V)/\sigma_{v,V}`, upsampled to
    the image size (see the module docstring for the math).

    **Training recipe.** Each student is a fully-convolutional network whose
    receptive field matches the teacher's, as in Bergmann et al.'s students,
    which have exactly the teacher's receptive field: the teacher's is
    measured at ``fit`` (``teacher_receptive_field_``) and :class:`StudentNet`
    gets the number of context stages that brings its own closest to it. Students are trained on random
    crops, so one step sees many different neighbourhoods for little
    computation and the training cost does not grow with the number or size
    of the images; Adam with a linear warm-up and a cosine decay of the
    learning rate (:func:`adcourse.deep.training.fit_model`,
    ``schedule="cosine"``), which reaches in a few hundred steps the loss a
    constant rate reaches in about twice as many. On 128-px nanofibres the
    default 640 steps per student bring the mean squared error to the
    standardised teacher (1 for a student that predicts the mean) to about
    0.4 on validation images, where 16 constant-rate steps on whole images
    left it at 0.8; the uncertainty :math:`v` then separates films, which it
    missed, and the pixel AUROC rises (see the report in ``scripts/bench_st.py``).

    Parameters
    ----------
    teacher : None or object with ``embed(images) -> (n, C, h, w)``
        The frozen teacher. ``None``: ``FeatureExtractor("course",
        layers=("layer1", "layer2"))`` (32 + 64 channels at stride 4; its
        receptive field, ``layer2``'s 39 px widened by the bilinear upsampling
        of ``layer2`` to stride 4, measures 48 px), built at ``fit``. It is only called, never trained; its
        map must be the image size divided by a power of 2 (rounding up).
    n_students : int, default 3
        Ensemble size :math:`M` (with 1 student :math:`v = 0` and only the
        regression error counts).
    n_epochs : int, default 10
        Passes of each student over the ``n_crops`` training crops.
    batch_size : int, default 4
        Crops (or images) per training step.
    lr : float, default 5e-3
        Peak Adam learning rate (warm-up over the first 10 % of the steps, then
        cosine decay to 0).
    crop_size : int or None, default 64
        Side of the random training crops (about 1.5 times the teacher's
        receptive field is enough). None, or images no larger than it: train
        on the whole images of :math:`S`.
    n_crops : int, default 256
        Number of training crops, drawn once (images uniformly at random, then
        positions; :func:`adcourse.protocol.random_crops`):
        ``n_epochs * ceil(n_crops / batch_size)`` steps per student.
    validation_fraction : float in (0, 1), default 0.25
        Fraction of the training images kept for :math:`V` (at least 1 image,
        and at least 1 image is left for :math:`S`).
    sigma : float, default 4.0
        Standard deviation (input pixels) of the Gaussian smoothing of the
        upsampled map; 0 disables it.
    random_state : int, default 0
        Seed of the split, of the crops, and of student ``i``'s initialisation
        and batch order (``random_state + i``).
    device : "auto", "cpu", "cuda", ...
        Where the students are trained and run (:func:`adcourse.deep.training.resolve_device`).
    progress : bool, default True
        Show a progress bar while each student trains.

    Attributes
    ----------
    teacher_ : object
        The teacher used (``teacher`` or the default one).
    teacher_receptive_field_ : int
        The teacher's receptive field in input pixels, measured at ``fit``: the
        span of the teacher locations that change when one input pixel does,
        times the teacher's stride.
    teacher_mean_, teacher_std_ : ndarrays (C,)
        Per-channel statistics of the teacher's features on the training crops.
    students_ : list of StudentNet
        The trained students (eval mode); ``students_[0].receptive_field``
        is the closest to ``teacher_receptive_field_`` (in ratio) they can have.
    histories_ : list of adcourse.deep.training.History
        Learning curves of the students (training loss on the crops of
        :math:`S`, validation loss on the images of :math:`V`).
    e_mean_, e_std_, v_mean_, v_std_ : float
        Statistics of :math:`e` and :math:`v` over the locations of :math:`V`.
    val_index_ : ndarray of int
        Indices (into the ``fit`` images) of the validation images :math:`V`.
    feature_shape_ : tuple (C, h, w)
        Shape of the teacher's map of one training crop (or image).
    n_down_ : int
        Halvings of the resolution from an image to the teacher's map (the
        students' stride-2 stages).
    image_shape_ : tuple
        Shape of one training image; test images must have the same channels.

    Notes
    -----
    Teacher, students and both normalisations are the same at every
    location (the teacher's channels are standardised over all the locations
    of the crops, :math:`e` and :math:`v` over all those of :math:`V`), so
    test images may have any height and width: train on crops, score whole
    images. Away from the borders the map of an image equals that of the
    same region inside a larger one (exactly when the region's offset is a
    multiple of :math:`2^{n_{down}}` and of the teacher's deepest stride).

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> train = make_nanofibers(n_images=4, size=32, anomaly_rate=0.0, random_state=0).images
    >>> det = StudentTeacher(n_students=2, n_epochs=1, n_crops=8, progress=False, device="cpu").fit(train)
    >>> det.feature_shape_                        # 32 + 64 teacher channels on an 8 x 8 grid
    (96, 8, 8)
    >>> det.predict_features(train[:1]).shape         # (M, n, C, h, w)
    (2, 1, 96, 8, 8)
    >>> det.anomaly_map(train[:1]).shape
    (1, 32, 32)
    """

    def __init__(
        self,
        teacher=None,
        n_students=3,
        n_epochs=10,
        batch_size=4,
        lr=5e-3,
        crop_size=64,
        n_crops=256,
        validation_fraction=0.25,
        sigma=4.0,
        random_state=0,
        device="auto",
        progress=True,
    ):
        self.teacher = teacher
        self.n_students = n_students
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.crop_size = crop_size
        self.n_crops = n_crops
        self.validation_fraction = validation_fraction
        self.sigma = sigma
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        if self.teacher is not None and not callable(getattr(self.teacher, "embed", None)):
            raise TypeError(
                f"teacher must be None or have an embed(images) method, got {type(self.teacher).__name__}"
            )
        if self.crop_size is not None and (
            not isinstance(self.crop_size, numbers.Integral) or isinstance(self.crop_size, bool) or self.crop_size < 2
        ):
            raise ValueError(f"crop_size must be None or an integer >= 2, got {self.crop_size!r}")
        for name in ("n_students", "n_epochs", "batch_size", "n_crops"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.lr, numbers.Real) or not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        vf = self.validation_fraction
        if not isinstance(vf, numbers.Real) or isinstance(vf, bool) or not 0 < vf < 1:
            raise ValueError(f"validation_fraction must be a number in (0, 1), got {vf!r}")
        if not isinstance(self.sigma, numbers.Real) or not (np.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"sigma must be a number >= 0, got {self.sigma!r}")
        if not isinstance(self.random_state, numbers.Integral) or isinstance(self.random_state, bool):
            raise ValueError(f"random_state must be an integer, got {self.random_state!r}")
        resolve_device(self.device)

    def _check_test_images(self, images):
        check_is_fitted(self, "students_")
        images = check_images(images, "images")
        if images.shape[1:-2] != tuple(self.image_shape_[:-2]):
            raise ValueError(
                f"images must have the channels of the training images, shaped "
                f"(n, {tuple(self.image_shape_)}) up to height and width, got {images.shape}"
            )
        return images

    # ---------------------------------------------------------------- teacher
    def _raw_teacher(self, images):
        feats = np.asarray(self.teacher_.embed(images), dtype=np.float32)
        if feats.ndim != 4 or feats.shape[0] != len(images):
            raise ValueError(f"teacher.embed must return (n, C, h, w) with n={len(images)}, got {feats.shape}")
        if hasattr(self, "feature_shape_") and feats.shape[1] != self.feature_shape_[0]:
            raise ValueError(
                f"the teacher gave {feats.shape[1]} channels, expected {self.feature_shape_[0]} as in training"
            )
        if hasattr(self, "n_down_"):
            H, W = images.shape[-2:]
            expected = (math.ceil(H / 2**self.n_down_), math.ceil(W / 2**self.n_down_))
            if feats.shape[-2:] != expected:
                raise ValueError(
                    f"the teacher gave a {feats.shape[-2]}x{feats.shape[-1]} map for {H}x{W} images; the "
                    f"students give {expected[0]}x{expected[1]} (the image size divided by 2^{self.n_down_}, "
                    "rounded up)"
                )
        if not np.all(np.isfinite(feats)):
            raise ValueError("teacher.embed returned NaN or inf")
        return feats

    def _standardise(self, feats):
        return (feats - self.teacher_mean_[:, None, None]) / self.teacher_std_[:, None, None]

    def teacher_features(self, images):
        """The teacher's features, standardised per channel, shape (n, C, h, w), float32."""
        images = self._check_test_images(images)
        return self._standardise(self._raw_teacher(images)).astype(np.float32)

    # ---------------------------------------------------------------- students
    @staticmethod
    def _as_input(images):
        """(n, H, W) -> (n, 1, H, W); (n, c, H, W) unchanged; float32."""
        x = images[:, None] if images.ndim == 3 else images
        return np.ascontiguousarray(x, dtype=np.float32)

    def _n_down(self, image_hw, feat_hw):
        """Number of stride-2 stages taking the image grid to the teacher's grid."""
        (H, W), (h, w) = image_hw, feat_hw
        k = int(round(math.log2(max(H / h, 1.0))))
        if (math.ceil(H / 2**k), math.ceil(W / 2**k)) != (h, w):
            raise ValueError(
                f"the teacher's map ({h}x{w}) is not the image size ({H}x{W}) divided by a power "
                "of 2; a student cannot be built for this teacher"
            )
        return k

    def predict_features(self, images):
        """The students' predictions :math:`\\mu^i`, shape (M, n, C, h, w), float32."""
        images = self._check_test_images(images)
        x = self._as_input(images)
        return np.stack([predict(s, x, batch_size=16) for s in self.students_])

    def _measure_receptive_field(self, image):
        """The teacher's receptive field, in pixels, probed by changing one pixel of ``image``.

        The teacher locations whose features move when the central pixel
        changes are those whose receptive field contains it: their span (in
        rows or columns, whichever is larger) times the stride
        :math:`2^{n_{down}}` estimates the receptive field (up to the size of
        ``image``, which a student could not exceed anyway).
        """
        probe = np.stack([image, image])
        H, W = image.shape[-2:]
        centre = probe[1, ..., H // 2, W // 2]
        probe[1, ..., H // 2, W // 2] = np.where(centre < 0.5, 1.0, 0.0)
        feats = self._raw_teacher(probe).astype(np.float64)
        change = np.abs(feats[1] - feats[0]).sum(axis=0)
        rows, cols = np.nonzero(change > 1e-6 * max(np.abs(feats).max(), _TINY))
        if len(rows) == 0:
            return 1
        span = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
        return int(min(span * 2**self.n_down_, max(H, W)))

    # ------------------------------------------------------------------ fit
    def _fit(self, images):
        self._check_params()
        n = len(images)
        if n < 2:
            raise ValueError(
                f"StudentTeacher needs at least 2 training images (>= 1 to train the students "
                f"and >= 1 to validate), got {n}"
            )
        if self.teacher is None:
            from adcourse.deep.backbones import FeatureExtractor

            self.teacher_ = FeatureExtractor("course", layers=("layer1", "layer2"), device=self.device)
        else:
            self.teacher_ = self.teacher
        for name in ("feature_shape_", "teacher_mean_", "teacher_std_", "n_down_", "teacher_receptive_field_"):
            self.__dict__.pop(name, None)

        rng = np.random.default_rng(self.random_state)
        n_val = min(max(1, int(round(self.validation_fraction * n))), n - 1)
        order = rng.permutation(n)
        self.val_index_ = np.sort(order[:n_val])
        train_imgs, val_imgs = images[np.sort(order[n_val:])], images[self.val_index_]
        if self.crop_size is not None and self.crop_size < min(train_imgs.shape[-2:]):
            # patch sampling: random crops of S
            train_imgs = random_crops(train_imgs, self.n_crops, int(self.crop_size), random_state=rng)

        # teacher targets, standardised per channel with the statistics of (the crops of) S
        y_train = self._raw_teacher(train_imgs)
        self.feature_shape_ = tuple(y_train.shape[1:])
        self.teacher_mean_ = y_train.mean(axis=(0, 2, 3)).astype(np.float64)
        std = y_train.std(axis=(0, 2, 3)).astype(np.float64)
        self.teacher_std_ = np.maximum(std, 1e-3 * std.mean() + _TINY)  # dead channels: no 0/0
        y_train = self._standardise(y_train).astype(np.float32)
        y_val = self._standardise(self._raw_teacher(val_imgs)).astype(np.float32)

        x_train, x_val = self._as_input(train_imgs), self._as_input(val_imgs)
        c_in, c_out = x_train.shape[1], self.feature_shape_[0]
        self.n_down_ = n_down = self._n_down(train_imgs.shape[-2:], self.feature_shape_[1:])
        # the students see what the teacher sees: the number of context stages whose receptive
        # field is the closest to the teacher's (each stage doubles the field's growth)
        self.teacher_receptive_field_ = self._measure_receptive_field(train_imgs[0])
        n_context = min(range(6), key=lambda k: abs(
            math.log(StudentNet.receptive_field_of(n_down, k) / self.teacher_receptive_field_)))
        x_mean = x_train.mean(axis=(0, 2, 3))
        x_std = np.maximum(x_train.std(axis=(0, 2, 3)), 1e-3)
        device = resolve_device(self.device)

        self.students_, self.histories_ = [], []
        for i in range(self.n_students):
            seed = int(self.random_state) + i
            with seeded(seed):
                student = StudentNet(c_in, c_out, n_down, n_context=n_context, mean=x_mean, std=x_std)
            history = fit_model(
                student, _mse, (x_train, y_train), val_data=(x_val, y_val),
                n_epochs=self.n_epochs, batch_size=self.batch_size, lr=self.lr, schedule="cosine",
                random_state=seed, device=device, progress=self.progress,
                desc=f"student {i + 1}/{self.n_students}",
            )
            self.students_.append(student)
            self.histories_.append(history)

        # normalisation of e and v on the validation images
        e, v = student_teacher_scores(self.predict_features(val_imgs), y_val)
        self.e_mean_, self.e_std_ = float(e.mean()), float(e.std())
        self.v_mean_, self.v_std_ = float(v.mean()), float(v.std())

    # ---------------------------------------------------------------- scoring
    def _scores(self, images):
        images = self._check_test_images(images)
        return student_teacher_scores(self.predict_features(images), self.teacher_features(images))

    def regression_error(self, images):
        """Regression error :math:`e = \\lVert \\mu - y \\rVert^2` on the feature grid, (n, h, w)."""
        return self._scores(images)[0]

    def uncertainty(self, images):
        """Predictive uncertainty :math:`v` (ensemble variance) on the feature grid, (n, h, w)."""
        return self._scores(images)[1]

    def normalized_scores(self, images):
        """The standardised ``(e, v)`` on the feature grid (each (n, h, w)), with the statistics of V."""
        e, v = self._scores(images)
        return (e - self.e_mean_) / max(self.e_std_, _TINY), (v - self.v_mean_) / max(self.v_std_, _TINY)

    def _map(self, images):
        e, v = self.normalized_scores(images)
        return upsample_maps(e + v, images.shape[-2:], self.sigma)
