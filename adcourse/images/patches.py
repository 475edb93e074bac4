r"""Patch-wise analysis of images: extract patches, score them, rebuild a map.

The lecture's first move out of the "random variable world": to *locate*
anomalies, analyse an image :math:`s` patch by patch. The patch around (here:
starting at) pixel :math:`c` is

.. math:: \mathbf{s}_c = \{s(c + u),\ u \in \mathcal{U}\},

with :math:`\mathcal{U}` a small square (or rectangle) of offsets. Every patch
becomes a vector of :math:`d = h w` (or :math:`C h w`) numbers, so any detector
on vectors (chapter 2) can score it; the per-patch scores are then turned back
into a per-pixel score map.

* :func:`extract_patches` -- all patches of a batch as a **zero-copy view**;
* :func:`patches_as_vectors` -- a (copied) ``(N, d)`` matrix for vector detectors;
* :func:`patch_scores_to_map` -- per-patch scores back to a per-pixel map
  (``"average"`` of the patches covering a pixel, or ``"centre"`` assignment);
* :func:`patches_to_image` -- patches (e.g. reconstructions) back to an image by
  averaging overlapping pixels;
* :class:`PatchDetector` -- makes any vector detector an image detector.

Grid convention
---------------
With patch size :math:`h \times w` and stride :math:`(t_y, t_x)`, patch
:math:`(i, j)` covers rows :math:`i t_y, \dots, i t_y + h - 1` and columns
:math:`j t_x, \dots, j t_x + w - 1`; the grid has
:math:`n_H = \lfloor (H - h)/t_y \rfloor + 1` rows (same for columns). Only whole
patches are taken (no padding): when the stride does not divide :math:`H - h`,
the last :math:`(H - h) \bmod t_y` rows of the image are **not covered** by any
patch. :func:`patch_scores_to_map` gives such pixels the value of the nearest
covered pixel, so maps always have the input resolution; use ``stride=1`` (or a
stride dividing :math:`H-h`) when every pixel must be seen.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from adcourse.base import BaseImageDetector
from adcourse.vectors.density import GaussianDetector

__all__ = [
    "extract_patches",
    "patch_grid_shape",
    "patches_as_vectors",
    "patch_scores_to_map",
    "patches_to_image",
    "PatchDetector",
]

#: floats per chunk of patch vectors when scoring (about 16 MB): bounds the memory
_CHUNK_FLOATS = 2**21


def _pair(value, name, minimum=1):
    """``value`` as a pair of ints >= minimum (an int means a square)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def patch_grid_shape(image_shape, size, stride=1):
    """Shape ``(n_H, n_W)`` of the grid of whole patches of an image.

    Parameters
    ----------
    image_shape : tuple
        ``(..., H, W)``: only the last two entries are used.
    size, stride : int or (int, int)

    Raises
    ------
    ValueError
        If the image is smaller than a patch.
    """
    (h, w), (sy, sx) = _pair(size, "size"), _pair(stride, "stride")
    H, W = (int(v) for v in tuple(image_shape)[-2:])
    if H < h or W < w:
        raise ValueError(
            f"images of {H}x{W} pixels are smaller than the patch size {h}x{w}; "
            "use smaller patches or larger images"
        )
    return (H - h) // sy + 1, (W - w) // sx + 1


def extract_patches(images, size, stride=1):
    """All whole patches of a batch of images, as a zero-copy view.

    Parameters
    ----------
    images : ndarray (n, H, W) or (n, C, H, W)
        A batch of grayscale or colour images (any dtype; not copied).
    size : int or (h, w)
        Patch size.
    stride : int or (t_y, t_x), default 1
        Step between the top-left corners of consecutive patches. When it does
        not divide ``H - h`` the last rows (columns) of the image are not
        covered (see the module docstring).

    Returns
    -------
    ndarray (n, n_H, n_W, h, w) or (n, n_H, n_W, C, h, w)
        ``patches[k, i, j]`` is the patch of image ``k`` whose top-left pixel is
        ``(i * t_y, j * t_x)``. It is a **read-only view** of ``images``
        (:func:`numpy.lib.stride_tricks.sliding_window_view`): no memory is
        copied, whatever the number of patches. Use :func:`patches_as_vectors`
        for a ``(N, d)`` matrix.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.arange(2 * 5 * 6, dtype=float).reshape(2, 5, 6)
    >>> p = extract_patches(images, 3, stride=2)
    >>> p.shape, np.shares_memory(p, images)
    ((2, 2, 2, 3, 3), True)
    """
    if not isinstance(images, np.ndarray):
        images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(
            f"images must be (n, H, W) grayscale or (n, C, H, W), got shape {images.shape}; "
            "for a single image use images[None]"
        )
    (h, w), (sy, sx) = _pair(size, "size"), _pair(stride, "stride")
    n_h, n_w = patch_grid_shape(images.shape, (h, w), (sy, sx))
    view = sliding_window_view(images, (h, w), axis=(-2, -1))[..., ::sy, ::sx, :, :]
    if images.ndim == 4:  # (n, C, nH, nW, h, w) -> (n, nH, nW, C, h, w), still a view
        view = np.moveaxis(view, 1, 3)
    assert view.shape[1:3] == (n_h, n_w)
    return view


def patches_as_vectors(patches):
    """Flatten a patch array to one row per patch, ``(N, d)``, as a **copy**.

    Parameters
    ----------
    patches : ndarray (n, n_H, n_W, h, w) or (n, n_H, n_W, C, h, w)
        As returned by :func:`extract_patches`.

    Returns
    -------
    ndarray (n * n_H * n_W, h * w) or (n * n_H * n_W, C * h * w)
        Rows in the order (image, grid row, grid column), each patch read row
        by row (channel first for colour). The result is a new contiguous
        array: with stride 1 it holds about ``h * w`` times the memory of the
        images, so score large images in chunks (as :class:`PatchDetector` does).
    """
    patches = np.asarray(patches)
    if patches.ndim not in (5, 6):
        raise ValueError(
            "patches must be (n, n_H, n_W, h, w) or (n, n_H, n_W, C, h, w) as returned by "
            f"extract_patches, got shape {patches.shape}"
        )
    n_rows = int(np.prod(patches.shape[:3]))
    out = patches.reshape(n_rows, -1)
    if np.may_share_memory(out, patches):  # reshape returned a view: make it a copy
        out = out.copy()
    return out


def _nearest_index(length, positions):
    """For each pixel 0..length-1, the index in ``positions`` (sorted) of the nearest one.

    Ties go to the smaller index.
    """
    positions = np.asarray(positions)
    right = np.clip(np.searchsorted(positions, np.arange(length)), 0, len(positions) - 1)
    left = np.clip(right - 1, 0, len(positions) - 1)
    pixels = np.arange(length)
    use_left = np.abs(pixels - positions[left]) <= np.abs(positions[right] - pixels)
    return np.where(use_left, left, right)


def _box_sum_1d(values, axis, n_out, length, step):
    """Sum, for every output pixel, of the grid values whose patch covers it (one axis).

    ``values`` has the grid on ``axis`` (size n_grid); grid entry ``i`` covers pixels
    ``i*step .. i*step+length-1``. Uses a cumulative sum over the scattered grid.
    """
    shape = list(values.shape)
    shape[axis] = n_out + length
    scattered = np.zeros(shape, dtype=np.float64)
    index = [slice(None)] * values.ndim
    # grid entry i sits at pixel i*step, shifted by `length` so that the cumsum can look back
    index[axis] = slice(length, length + step * values.shape[axis], step)
    scattered[tuple(index)] = values
    csum = np.cumsum(scattered, axis=axis)
    hi = [slice(None)] * values.ndim
    lo = [slice(None)] * values.ndim
    hi[axis] = slice(length, length + n_out)
    lo[axis] = slice(0, n_out)
    # pixel y is covered by the entries placed at y-length+1..y, i.e. csum[y+length] - csum[y]
    return csum[tuple(hi)] - csum[tuple(lo)]


def _check_scores_grid(scores, image_shape, size, stride):
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2:
        scores = scores[None]
    grid = patch_grid_shape(image_shape, size, stride)
    if scores.ndim != 3 or scores.shape[1:] != grid:
        raise ValueError(
            f"scores must be (n, {grid[0]}, {grid[1]}) for images of "
            f"{tuple(image_shape)[-2:]} with size={size!r}, stride={stride!r}; got {scores.shape}"
        )
    return scores


def patch_scores_to_map(scores, image_shape, size, stride=1, mode="average"):
    r"""Per-patch scores back to a per-pixel score map at image resolution.

    Parameters
    ----------
    scores : ndarray (n, n_H, n_W) (or (n_H, n_W) for one image)
        One score per patch, on the grid of :func:`extract_patches`.
    image_shape : tuple
        ``(..., H, W)`` of the images the patches came from.
    size, stride : int or (int, int)
        Those used to extract the patches.
    mode : {"average", "centre"}, default "average"
        * ``"average"``: each pixel gets the mean score of all the patches
          that contain it,
          :math:`m(c) = \frac{1}{|\{k : c \in \mathbf{s}_k\}|}\sum_{k : c \in \mathbf{s}_k} \text{score}_k`
          (an anomaly lights up every patch that touches it, so the map is
          smooth and spreads each detection over a patch width). Computed
          with cumulative sums, one pass per axis, no loop over pixels.
        * ``"centre"``: each patch's score is assigned to its centre pixel
          (row :math:`i t_y + \lfloor (h-1)/2 \rfloor`, the upper-left one of
          the four central pixels for even sizes) and every other pixel takes
          the value of the nearest centre (nearest-neighbour upsampling; with
          stride 1 this is edge replication at the borders).

        In ``"average"`` mode, pixels covered by no patch (the last rows or
        columns when the stride does not divide :math:`H - h`, or gaps when the
        stride exceeds the patch size) take the value of the nearest covered
        pixel.

    Returns
    -------
    ndarray (n, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> m = patch_scores_to_map(np.ones((1, 3, 3)), (5, 5), size=3)
    >>> m.shape, float(m.min()), float(m.max())
    ((1, 5, 5), 1.0, 1.0)
    """
    if mode not in ("average", "centre"):
        raise ValueError(f"mode must be 'average' or 'centre', got {mode!r}")
    scores = _check_scores_grid(scores, image_shape, size, stride)
    (h, w), (sy, sx) = _pair(size, "size"), _pair(stride, "stride")
    H, W = (int(v) for v in tuple(image_shape)[-2:])
    n_h, n_w = scores.shape[1:]
    if mode == "centre":
        rows = _nearest_index(H, np.arange(n_h) * sy + (h - 1) // 2)
        cols = _nearest_index(W, np.arange(n_w) * sx + (w - 1) // 2)
        return scores[:, rows[:, None], cols[None, :]]
    # sums and counts of the covering patches, one axis at a time (separable)
    total = _box_sum_1d(_box_sum_1d(scores, 1, H, h, sy), 2, W, w, sx)
    count = np.outer(
        _box_sum_1d(np.ones(n_h), 0, H, h, sy), _box_sum_1d(np.ones(n_w), 0, W, w, sx)
    )
    count = np.rint(count)  # counts are integers; drop cumsum rounding
    covered_rows = np.flatnonzero(count.any(axis=1))
    covered_cols = np.flatnonzero(count.any(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    if len(covered_rows) == H and len(covered_cols) == W:
        return mean
    # covered pixels form a product set rows x cols: the nearest one is found per axis
    rows = covered_rows[_nearest_index(H, covered_rows)]
    cols = covered_cols[_nearest_index(W, covered_cols)]
    return mean[:, rows[:, None], cols[None, :]]


def patches_to_image(patches, image_shape, stride=1):
    """Rebuild images from (e.g. reconstructed) patches, averaging overlapping pixels.

    The inverse of :func:`extract_patches`: ``patches_to_image(extract_patches(x, s, t),
    x.shape, t)`` gives back ``x`` exactly on the covered pixels. Pixels covered by
    no patch take the value of the nearest covered pixel (as in
    :func:`patch_scores_to_map`).

    Parameters
    ----------
    patches : ndarray (n, n_H, n_W, h, w) or (n, n_H, n_W, C, h, w)
    image_shape : tuple
        ``(..., H, W)`` of the images.
    stride : int or (int, int), default 1

    Returns
    -------
    ndarray (n, H, W) or (n, C, H, W)
    """
    patches = np.asarray(patches, dtype=np.float64)
    if patches.ndim not in (5, 6):
        raise ValueError(
            "patches must be (n, n_H, n_W, h, w) or (n, n_H, n_W, C, h, w), "
            f"got shape {patches.shape}"
        )
    h, w = patches.shape[-2:]
    sy, sx = _pair(stride, "stride")
    H, W = (int(v) for v in tuple(image_shape)[-2:])
    n, n_h, n_w = patches.shape[:3]
    if patch_grid_shape((H, W), (h, w), (sy, sx)) != (n_h, n_w):
        raise ValueError(
            f"a {n_h}x{n_w} grid of {h}x{w} patches with stride {stride!r} does not fit "
            f"images of {H}x{W}"
        )
    # channels first: (n, [C,] nH, nW, h, w)
    moved = np.moveaxis(patches, 3, 1) if patches.ndim == 6 else patches
    lead = moved.shape[:-4]
    total = np.zeros(lead + (H, W))
    count = np.zeros((H, W))
    # one vectorised strided add per offset inside the patch (h*w of them), none per pixel
    for u in range(h):
        for v in range(w):
            rows = slice(u, u + sy * (n_h - 1) + 1, sy)
            cols = slice(v, v + sx * (n_w - 1) + 1, sx)
            total[..., rows, cols] += moved[..., :, :, u, v]
            count[rows, cols] += 1
    covered_rows = np.flatnonzero(count.any(axis=1))
    covered_cols = np.flatnonzero(count.any(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        image = total / count
    if len(covered_rows) < H or len(covered_cols) < W:
        rows = covered_rows[_nearest_index(H, covered_rows)]
        cols = covered_cols[_nearest_index(W, covered_cols)]
        image = image[..., rows[:, None], cols[None, :]]
    return image


def _sample_grid(grid_shape, max_samples, rng):
    """Indices (arrays per axis) of ``max_samples`` random cells of a grid, or all of them."""
    total = int(np.prod(grid_shape))
    if max_samples is None or total <= max_samples:
        flat = np.arange(total)
    else:
        flat = np.sort(rng.choice(total, size=max_samples, replace=False))
    return np.unravel_index(flat, grid_shape)


def _check_max_samples(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    return int(value)


class PatchDetector(BaseImageDetector):
    r"""Any detector on vectors, applied patch by patch: an image detector.

    The lecture's density-based approach on image patches, for any background
    model of chapter 2:

    * **training** -- split the normal images in patches :math:`\mathbf{s}`,
      flatten them to vectors and fit the vector detector on them (a random
      subset of at most ``max_train_patches``);
    * **testing** -- score every patch of a test image and turn the patch
      scores into a pixel map with :func:`patch_scores_to_map`.

    With ``GaussianDetector`` this is the lecture's
    :math:`\hat\phi_0 = \mathcal{N}(\mu, \Sigma)` on raw patches (which works
    poorly on images, as chapter 3 shows); with
    :class:`adcourse.images.subspace.PCADetector` it is PCA reconstruction-error
    monitoring.

    Parameters
    ----------
    detector : BaseDetector or None, default None
        A vector detector (``fit``, ``anomaly_score``); it is cloned, never
        modified. None means ``GaussianDetector()``, the lecture's Gaussian on
        raw patches.
    patch_size : int or (h, w), default 5
    stride : int or (t_y, t_x), default 1
        Stride of the patches scored at test time (training patches are
        always taken with stride 1, then subsampled).
    mode : {"average", "centre"}, default "average"
        How patch scores become pixel scores (:func:`patch_scores_to_map`).
    max_train_patches : int or None, default 20000
        Normal patches (drawn at random) used to fit the detector; None = all.
    two_sided : bool, default False
        Monitor the detector's statistic :math:`t(\mathbf{s})` instead of
        thresholding it (the lecture's feature monitoring, with :math:`t` as
        the feature): the detector is fitted on the patches of half the
        training images, :math:`S`; on the patches of the other half,
        :math:`V` (:math:`V\cap S=\emptyset`), a Gaussian is fitted to
        :math:`\log t`, and the patch score becomes
        :math:`|\log t(\mathbf{s}) - m_V| / \sigma_V`. A patch whose statistic is
        unusually **low** is then anomalous too: a smooth defect on a detailed
        texture has a *smaller* Mahalanobis distance or reconstruction error
        than every normal patch (on the real SEM images, chapter 3).
    random_state : int, default 0
        Seed of that subsampling (and of the split into :math:`S` and :math:`V`).

    Attributes
    ----------
    detector_ : BaseDetector
        The fitted clone of ``detector``.
    n_train_patches_ : int
    log_score_mean_, log_score_std_ : float
        :math:`m_V, \sigma_V` (``two_sided=True`` only).
    image_shape_ : tuple

    Notes
    -----
    One model serves every patch, so test images may have any height and
    width at least ``patch_size`` (train on crops, score whole images).

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> from adcourse.vectors.density import GaussianDetector
    >>> train = make_nanofibers(n_images=2, size=32, anomaly_rate=0.0, random_state=0)
    >>> det = PatchDetector(GaussianDetector(), patch_size=3).fit(train.images)
    >>> det.anomaly_map(train.images).shape
    (2, 32, 32)
    """

    def __init__(
        self,
        detector=None,
        patch_size=5,
        stride=1,
        mode="average",
        max_train_patches=20000,
        random_state=0,
        two_sided=False,
    ):
        self.detector = detector
        self.patch_size = patch_size
        self.stride = stride
        self.mode = mode
        self.max_train_patches = max_train_patches
        self.random_state = random_state
        self.two_sided = two_sided

    def _check_params(self):
        if self.detector is not None and not (
            hasattr(self.detector, "fit") and hasattr(self.detector, "anomaly_score")
        ):
            raise TypeError(
                "detector must be a vector detector with fit and anomaly_score, "
                f"got {type(self.detector).__name__}"
            )
        _pair(self.patch_size, "patch_size")
        _pair(self.stride, "stride")
        if self.mode not in ("average", "centre"):
            raise ValueError(f"mode must be 'average' or 'centre', got {self.mode!r}")
        if not isinstance(self.two_sided, (bool, np.bool_)):
            raise TypeError(f"two_sided must be a bool, got {self.two_sided!r}")
        return _check_max_samples(self.max_train_patches, "max_train_patches")

    def _fit(self, images):
        max_patches = self._check_params()
        rng = np.random.default_rng(self.random_state)
        validation = None
        if self.two_sided:  # S and V from different images
            if len(images) < 2:
                raise ValueError("two_sided=True needs at least 2 training images (S and V are "
                                 f"different images), got {len(images)}")
            order = rng.permutation(len(images))
            validation, images = images[order[: len(images) // 2]], images[order[len(images) // 2:]]
        view = extract_patches(images, self.patch_size, 1)
        idx = _sample_grid(view.shape[:3], max_patches, rng)
        vectors = view[idx].reshape(len(idx[0]), -1)  # fancy indexing: a copy of the sample
        self.n_train_patches_ = vectors.shape[0]
        detector = GaussianDetector() if self.detector is None else clone(self.detector)
        self.detector_ = detector.fit(vectors)
        if validation is not None:
            view = extract_patches(validation, self.patch_size, 1)
            idx = _sample_grid(view.shape[:3], max_patches, rng)
            log_t = self._log(self.detector_.anomaly_score(view[idx].reshape(len(idx[0]), -1)))
            self.log_score_mean_ = float(log_t.mean())
            self.log_score_std_ = float(max(log_t.std(), 1e-12))

    @staticmethod
    def _log(t):
        return np.log(np.maximum(t, 0.0) + 1e-12)

    def patch_scores(self, images):
        """Scores of every patch, ``(n, n_H, n_W)`` on the grid of :func:`extract_patches`.

        Images are scored one at a time, in chunks of patch rows, so the memory
        stays bounded (about 16 MB of patch vectors) whatever the image size.
        """
        check_is_fitted(self, "detector_")
        images = np.asarray(images, dtype=np.float64)
        view = extract_patches(images, self.patch_size, self.stride)
        n, n_h, n_w = view.shape[:3]
        d = int(np.prod(view.shape[3:]))
        rows_per_chunk = max(1, _CHUNK_FLOATS // (n_w * d))
        out = np.empty((n, n_h, n_w))
        for k in range(n):
            for r0 in range(0, n_h, rows_per_chunk):
                r1 = min(n_h, r0 + rows_per_chunk)
                vectors = view[k, r0:r1].reshape((r1 - r0) * n_w, d)
                out[k, r0:r1] = self.detector_.anomaly_score(vectors).reshape(r1 - r0, n_w)
        if self.two_sided:
            out = np.abs(self._log(out) - self.log_score_mean_) / self.log_score_std_
        return out

    def _map(self, images):
        scores = self.patch_scores(images)
        return patch_scores_to_map(scores, images.shape, self.patch_size, self.stride, self.mode)
