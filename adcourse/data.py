"""Data for the course: synthetic SEM images of nanofibres, toy vectors, digits.

Everything here is made on the fly or shipped with the package, so the book, the
exercises and the tests run offline.

* :func:`make_nanofibers` -- the lecture's running example, "Monitoring Nanofiber
  Production" (Carrera et al., 2017): synthetic scanning-electron-microscope (SEM)
  images ``s`` of a nanofibrous mat, some carrying defects, each with its exact
  anomaly mask ``Omega(c)`` (1 where pixel ``c`` falls in an anomalous region).
* :func:`make_toy_1d`, :func:`make_toy_2d` -- normal samples ``x ~ phi0`` mixed with
  anomalies ``x ~ phi1``, for the chapter on anomaly detection in random vectors.
* :func:`load_digits_oneclass` -- scikit-learn's 8x8 digits in the one-class
  protocol (train on one digit only, test on all).
* :func:`save_samples`, :func:`load_samples` -- the small PNG sample committed in
  ``data/nanofibers`` (regenerate it with ``python -m adcourse.data``).

All generators take ``random_state`` (an int, a :class:`numpy.random.Generator` or
None) and are deterministic for a fixed int.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

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
]

#: The defect types :func:`make_nanofibers` can draw.
DEFECT_TYPES = ("bead", "clump", "film")

#: Folder of the committed sample images (``data/nanofibers`` in the repository).
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "nanofibers"

# Parameters of the committed sample (``save_samples``); changing them changes the
# files in data/nanofibers, so data/README.md must be updated with them.
_SAMPLE_N_NORMAL = 3
_SAMPLE_SIZE = 128
_SAMPLE_SEED = 2017

# Threshold on a defect's visible contribution (its opacity after occlusion by
# what lies on top of it) above which a pixel belongs to the mask Omega.
_MASK_THRESHOLD = 0.3


# --------------------------------------------------------------------------- #
# containers
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class ImageSet:
    """A set of grayscale images with their anomaly masks and labels.

    Parameters
    ----------
    images : array-like of shape (n, H, W)
        Test images ``s``, float values in [0, 1] (stored as float64).
    masks : array-like of shape (n, H, W)
        Anomaly masks ``Omega``: ``masks[i, r, c]`` is True when pixel ``c = (r, c)`` of
        image ``i`` falls in an anomalous region (stored as bool).
    labels : array-like of shape (n,), optional
        Image labels, 1 = the image contains a defect, 0 = normal. Defaults to
        ``masks.any(axis=(1, 2))``.

    Examples
    --------
    >>> ds = make_nanofibers(n_images=4, size=64, random_state=0)
    >>> len(ds), ds.images.shape, ds.labels.tolist()
    (4, (4, 64, 64), [0, 1, 1, 0])
    >>> len(ds[1:3]), len(ds[0])
    (2, 1)
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray = field(default=None)

    def __post_init__(self):
        images = np.asarray(self.images, dtype=np.float64)
        if images.ndim != 3:
            raise ValueError(
                f"images must have shape (n, H, W), got an array of shape {images.shape}"
            )
        if images.size and (np.nanmin(images) < 0.0 or np.nanmax(images) > 1.0):
            raise ValueError(
                "images must take values in [0, 1], got values in "
                f"[{np.nanmin(images):.3g}, {np.nanmax(images):.3g}]"
            )
        masks = np.asarray(self.masks)
        if masks.shape != images.shape:
            raise ValueError(
                f"masks must have the shape of images {images.shape}, got {masks.shape}"
            )
        masks = masks.astype(bool)
        if self.labels is None:
            labels = masks.any(axis=(1, 2)).astype(np.int64)
        else:
            labels = np.asarray(self.labels)
            if labels.shape != (images.shape[0],):
                raise ValueError(
                    f"labels must have shape ({images.shape[0]},), got {labels.shape}"
                )
            if not np.isin(labels, (0, 1)).all():
                raise ValueError(
                    f"labels must be 0 or 1, got values {np.unique(labels).tolist()}"
                )
            labels = labels.astype(np.int64)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> "ImageSet":
        if isinstance(index, Integral):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"index {index} out of range for an ImageSet of {n}")
            index = [index]
        return ImageSet(self.images[index], self.masks[index], self.labels[index])

    def __repr__(self) -> str:
        n, h, w = self.images.shape
        return f"ImageSet(n={n}, size=({h}, {w}), anomalous={int(self.labels.sum())})"


@dataclass(frozen=True, eq=False)
class DigitsSplit:
    """One-class split of the digits data set (see :func:`load_digits_oneclass`).

    Attributes
    ----------
    X_train : ndarray of shape (n_train, 64)
        Flattened training images of the normal digit only, values in [0, 1].
    X_test : ndarray of shape (n_test, 64)
        Flattened test images of every digit.
    y_test : ndarray of shape (n_test,)
        1 = anomaly (not the normal digit), 0 = normal.
    images_train : ndarray of shape (n_train, 8, 8)
        ``X_train`` as images.
    images_test : ndarray of shape (n_test, 8, 8)
        ``X_test`` as images.
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    images_train: np.ndarray
    images_test: np.ndarray


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low or (high is not None and value > high):
        expected = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {expected}, got {value!r}")
    return int(value)


def _check_real(name, value, low, high, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    bad_low = value <= low if low_open else value < low
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        hi_val = "inf" if high is None else high
        raise ValueError(f"{name} must be in {lo}{low}, {hi_val}{hi}, got {value!r}")
    return float(value)


def _rng(random_state):
    if random_state is None or isinstance(random_state, (Integral, np.random.Generator)):
        return np.random.default_rng(random_state)
    raise ValueError(
        "random_state must be an int, a numpy.random.Generator or None, "
        f"got {random_state!r}"
    )


# --------------------------------------------------------------------------- #
# nanofibre renderer
# --------------------------------------------------------------------------- #
# Geometry is in pixels: the field of view grows with ``size`` (fibres keep their
# width in pixels), so the same patch size suits every image size.
_N_LAYERS = 6  # depth layers, 0 = top (crisp, bright), the last = deepest
_MARGIN = 10  # rendering margin, cropped at the end (no border effects)
_STEP = 0.6  # spacing of the points along a fibre, in pixels
_FIBRES_PER_LAYER = 7.0  # expected fibres per layer per 64 px of image side
_LAYER_WEIGHT = (0.45, 0.8, 1.0, 1.1, 1.2, 1.3)  # sparse on top, dense below


def _random_paths(rng, n, n_steps, extent, curvature, persistence=0.9):
    """Smooth random curves: a random walk whose direction has momentum.

    The angular velocity is an AR(1) process, so each path bends smoothly. Every
    path starts from its middle point, uniform in ``[0, extent)^2``. Returns the
    points (n, n_steps, 2) in (row, col) and the unit tangents (n, n_steps, 2).
    """
    curvature = np.broadcast_to(np.asarray(curvature, dtype=float), (n,))
    eps = rng.normal(size=(n, n_steps)) * curvature[:, None]
    omega = signal.lfilter([1.0], [1.0, -persistence], eps, axis=1)
    theta = rng.uniform(0, 2 * np.pi, size=(n, 1)) + np.cumsum(omega, axis=1)
    tangent = np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    pos = np.cumsum(_STEP * tangent, axis=1)
    pos -= pos[:, n_steps // 2 : n_steps // 2 + 1]
    start = rng.uniform(0, 1, size=(n, 1, 2)) * np.asarray(extent, dtype=float)
    return pos + start, tangent


def _render_curves(shape, points, tangents, radius, value):
    """Draw thick anti-aliased curves on one layer.

    ``points`` (N, 2), ``tangents`` (N, 2), ``radius`` (N,), ``value`` (N,) describe
    the centre lines point by point. Every pixel takes the nearest centre-line point
    (Euclidean distance transform), then its distance to the tangent line through
    that point, which gives smooth edges. Returns (colour, alpha): the shading of
    the fibre (brighter edges, as in secondary-electron images) and its opacity.
    """
    colour = np.zeros(shape)
    alpha = np.zeros(shape)
    ij = np.rint(points).astype(np.intp)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < shape[0]) & (ij[:, 1] >= 0) & (ij[:, 1] < shape[1])
    if not inside.any():
        return colour, alpha
    ij, points, tangents = ij[inside], points[inside], tangents[inside]
    radius, value = radius[inside], value[inside]
    owner = np.full(shape, -1, dtype=np.intp)
    owner[ij[:, 0], ij[:, 1]] = np.arange(len(ij))
    dist, (ir, ic) = ndimage.distance_transform_edt(owner < 0, return_indices=True)
    near = dist <= radius.max() + 2.0
    k = owner[ir[near], ic[near]]
    rr, cc = np.nonzero(near)
    dr = rr - points[k, 0]
    dc = cc - points[k, 1]
    d = np.abs(dr * tangents[k, 1] - dc * tangents[k, 0])
    r = radius[k]
    a = np.clip(r - d + 0.5, 0.0, 1.0)
    u = np.clip(d / r, 0.0, 1.0)
    alpha[near] = a
    colour[near] = value[k] * (0.78 + 0.32 * u**4)
    return colour, alpha


def _blob(shape, centre, axes, angle, rng, roughness=0.35, ramp=1.2):
    """Soft irregular blob: a rotated ellipse with a noisy boundary. Returns
    (alpha, rho) where rho is the normalised elliptical radius (0 at the centre)."""
    rr, cc = np.indices(shape, dtype=float)
    dr, dc = rr - centre[0], cc - centre[1]
    ca, sa = np.cos(angle), np.sin(angle)
    x = (dc * ca + dr * sa) / axes[0]
    y = (-dc * sa + dr * ca) / axes[1]
    rho = np.hypot(x, y)
    noise = ndimage.gaussian_filter(rng.normal(size=shape), sigma=0.35 * min(axes))
    noise /= noise.std() + 1e-12
    level = rho + roughness * noise * 0.35
    alpha = np.clip((1.0 - level) * min(axes) / ramp, 0.0, 1.0)
    return alpha, rho


def _bead(shape, layer, rng, size):
    """A bead: a spindle-shaped thickening sitting on a fibre of the given layer."""
    pts, tan, rad, val = layer
    lo, hi = _MARGIN + 4, _MARGIN + size - 4
    ok = np.nonzero(
        (pts[:, 0] >= lo) & (pts[:, 0] < hi) & (pts[:, 1] >= lo) & (pts[:, 1] < hi)
    )[0]
    if len(ok) == 0:  # no top fibre inside the image: a free bead
        centre = rng.uniform(lo, hi, size=2)
        t, r, v = np.array([0.0, 1.0]), 1.8, 0.8
    else:
        k = ok[rng.integers(len(ok))]
        centre, t, r, v = pts[k], tan[k], rad[k], val[k]
    b = rng.uniform(3.0, 4.5)
    a = b * rng.uniform(1.3, 2.0)
    angle = np.arctan2(t[0], t[1])
    rr, cc = np.indices(shape, dtype=float)
    dr, dc = rr - centre[0], cc - centre[1]
    x = (dc * np.cos(angle) + dr * np.sin(angle)) / a
    y = (-dc * np.sin(angle) + dr * np.cos(angle)) / b
    rho = np.hypot(x, y)
    alpha = np.clip((1.0 - rho) * b + 0.5, 0.0, 1.0)
    colour = v * rng.uniform(0.92, 1.02) * (0.76 + 0.4 * np.clip(rho, 0, 1) ** 6)
    return colour, alpha


def _clump(shape, rng, size):
    """A clump: an irregular aggregate of material with a knobbly surface.

    The clump is a height field (an irregular blob times bumpy noise) shaded as a
    secondary-electron detector sees it: brighter where the surface is higher and
    much brighter where it is steep (the SEM edge effect), so its texture is
    granular, with bright rims around dark pits.
    """
    axes = rng.uniform(6.0, 12.0, size=2)
    centre = rng.uniform(_MARGIN + 4, _MARGIN + size - 4, size=2)
    region, rho = _blob(shape, centre, axes, rng.uniform(0, np.pi), rng, roughness=0.7)
    bumps = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(1.0, 1.5))
    bumps /= bumps.std() + 1e-12
    envelope = ndimage.gaussian_filter(region, 2.0)
    height = envelope * (1.5 + bumps)
    gr, gc = np.gradient(height)
    colour = rng.uniform(0.04, 0.08) + 0.04 * height + 0.8 * np.hypot(gr, gc)
    return np.clip(colour, 0.0, 1.0), region


def _film(shape, rng, size):
    """A film: a flat, smooth membrane spanning the gaps between fibres.

    It lies on the mat and hides the fibres below it; only the shot noise of the
    acquisition gives it texture, so its local contrast is much lower than that
    of the fibre network, while its grey level is an ordinary one.
    """
    axes = rng.uniform(10.0, 18.0, size=2)
    centre = rng.uniform(_MARGIN + 4, _MARGIN + size - 4, size=2)
    alpha, rho = _blob(shape, centre, axes, rng.uniform(0, np.pi), rng, roughness=0.5)
    alpha *= rng.uniform(0.93, 0.99)
    level = rng.uniform(0.26, 0.38)
    shade = ndimage.gaussian_filter(rng.normal(size=shape), 6.0)
    shade /= shade.std() + 1e-12
    colour = level * (1.0 + 0.04 * shade + 0.08 * np.clip(rho, 0, 1) ** 2)
    return colour, alpha


def _render_nanofiber_image(rng, size, anomalous, fiber_density, defect_types, noise):
    """Render one image; return (image, mask) of shape (size, size)."""
    ext = size + 2 * _MARGIN
    shape = (ext, ext)
    length = 1.5 * ext
    n_steps = int(length / _STEP)

    # background: dark, with a faint low-frequency glow (deep, unresolved fibres)
    bg = ndimage.gaussian_filter(rng.normal(size=shape), 12.0)
    bg = 0.1 + 0.02 * bg / (bg.std() + 1e-12)

    # fibre layers, 0 = top
    layers = []  # (colour, alpha, sigma) bottom layers last
    top_fibres = None
    density = fiber_density * rng.uniform(0.9, 1.1)  # the mat is not uniform
    for lay in range(_N_LAYERS):
        z = lay / (_N_LAYERS - 1)
        n = rng.poisson(density * _LAYER_WEIGHT[lay] * _FIBRES_PER_LAYER * ext / 64.0)
        if n == 0:
            layers.append((np.zeros(shape), np.zeros(shape), 0.0))
            continue
        curv = rng.uniform(0.001, 0.006, size=n)
        pts, tan = _random_paths(rng, n, n_steps, shape, curv)
        rad = rng.uniform(0.6, 1.4, size=n) * (1.0 - 0.2 * z)
        val = rng.uniform(0.8, 1.0, size=n) * (0.85 - 0.5 * z)
        # slow thickness variation along each fibre
        wob = 1.0 + 0.12 * np.sin(
            np.linspace(0, 1, n_steps)[None, :] * rng.uniform(4, 16, (n, 1))
            + rng.uniform(0, 2 * np.pi, (n, 1))
        )
        radius = (rad[:, None] * wob).ravel()
        value = np.repeat(val, n_steps)
        pts, tan = pts.reshape(-1, 2), tan.reshape(-1, 2)
        colour, alpha = _render_curves(shape, pts, tan, radius, value)
        sigma = 0.25 + 1.2 * z**1.3
        layers.append((colour, alpha, sigma))
        if lay == 0:
            top_fibres = (pts, tan, radius, value)

    # defects, each inserted above a layer (it occludes that layer and those below)
    defects = []  # (insert above layer index, colour, alpha, sigma)
    if anomalous:
        n_def = int(rng.integers(1, 4))
        kinds = [defect_types[i] for i in rng.integers(len(defect_types), size=n_def)]
        for kind in kinds:
            if kind == "bead":
                if top_fibres is None:
                    top_fibres = (np.empty((0, 2)), np.empty((0, 2)), np.empty(0), np.empty(0))
                c, a = _bead(shape, top_fibres, rng, size)
                defects.append((0, c, a, 0.3))
            elif kind == "clump":
                c, a = _clump(shape, rng, size)
                defects.append((0, c, a, 0.3))
            else:  # film, a membrane on top of the mat
                c, a = _film(shape, rng, size)
                defects.append((0, c, a, 0.4))

    # composite from the bottom up (premultiplied alpha), tracking the visible
    # contribution of each defect
    img = bg
    visible = []
    stack = []
    for lay in range(_N_LAYERS - 1, -1, -1):
        stack.append(("fibre",) + layers[lay])
        for where, c, a, s in defects:
            if where == lay:
                stack.append(("defect", c, a, s))
    for kind, c, a, s in stack:
        if s > 0:
            ca = ndimage.gaussian_filter(c * a, s)
            a = ndimage.gaussian_filter(a, s)
        else:
            ca = c * a
        img = img * (1.0 - a) + ca
        visible = [v * (1.0 - a) for v in visible]
        if kind == "defect":
            visible.append(a)

    crop = (slice(_MARGIN, _MARGIN + size),) * 2
    img = img[crop]
    mask = np.zeros((size, size), dtype=bool)
    for v in visible:
        mask |= v[crop] >= _MASK_THRESHOLD

    # acquisition: brightness/contrast drift, vignetting, scan-line noise,
    # shot noise and the detector's point-spread function
    rr, cc = np.indices((size, size), dtype=float)
    r2 = ((rr - size / 2) ** 2 + (cc - size / 2) ** 2) / (size / 2) ** 2
    gain = rng.uniform(0.92, 1.08) * (1.0 - 0.08 * r2)
    img = img * gain + rng.uniform(-0.02, 0.02)
    if noise > 0:
        img = img + noise * 0.1 * rng.normal(size=(size, 1))
        photons = 1.0 / noise**2
        img = rng.poisson(np.clip(img, 0, None) * photons) / photons
        img = ndimage.gaussian_filter(img, 0.6)
    return np.clip(img, 0.0, 1.0), mask


def make_nanofibers(
    n_images=16,
    size=128,
    anomaly_rate=0.5,
    fiber_density=1.0,
    defect_types=DEFECT_TYPES,
    noise=0.1,
    random_state=0,
):
    """Synthetic SEM images of a nanofibrous material, with exact defect masks.

    The lecture's running example ("Monitoring Nanofiber Production", Carrera et al.
    2017): each image ``s`` shows a dense, interconnected network of thin, curved
    fibres, bright on a dark background. Fibres lie at several depths: the top ones
    are crisp and bright and cover the lower ones, which are dimmer and blurrier
    (out of the focal plane). Anomalous images also carry 1 to 3 defects, and their
    mask ``Omega(c)`` is 1 exactly on the pixels ``c`` the defects changed.

    Defect types:

    * ``"bead"``: a small bright spindle (ellipse) sitting on a top fibre, where the
      fibre thickened during electrospinning;
    * ``"clump"``: an irregular cluster of aggregated material with a granular,
      knobbly surface (bright rims around dark pits, as SEM shows relief);
    * ``"film"``: a flat, smooth membrane of mid-grey material spanning the gaps
      between fibres and hiding the fibres below it.

    The defects have the grey levels of fibres and gaps, so a pixel's intensity
    alone does not reveal them (the pixel AUROC of the raw intensity is about
    0.55-0.7 and that of a Gaussian ``phi0`` fitted on normal intensities below
    0.55), while local statistics of a patch (local mean and contrast over 9x9
    windows) do better (about 0.8): a detector must look at the structure of the
    patch around ``c``, not at ``s(c)`` alone. Images are rendered in pixels, at
    any ``size``, with the same fibre width.

    Parameters
    ----------
    n_images : int, default=16
        Number of images ``n``.
    size : int, default=128
        Side of the square images in pixels (>= 32). Fibres keep their width in
        pixels, so a larger ``size`` shows a wider field of view, not larger fibres.
    anomaly_rate : float in [0, 1], default=0.5
        Fraction of anomalous images; ``round(anomaly_rate * n_images)`` images get
        defects, in an order shuffled by ``random_state``.
    fiber_density : float > 0, default=1.0
        Multiplies the expected number of fibres per depth layer: above 1 the mat is
        denser (fewer dark gaps), below 1 sparser.
    defect_types : sequence of str, default=("bead", "clump", "film")
        The defect types an anomalous image may carry; each defect picks one at
        random. Pass one type to study it alone.
    noise : float >= 0, default=0.1
        SEM acquisition noise: Poisson shot noise with standard deviation about
        ``noise * sqrt(intensity)``, faint horizontal scan-line offsets and a slight
        blur of the detector. 0 gives clean renderings.
    random_state : int, numpy.random.Generator or None, default=0
        Seed (or generator) of every random choice; the same int gives the same
        images.

    Returns
    -------
    ImageSet
        ``images`` (n, size, size) float64 in [0, 1], ``masks`` (n, size, size) bool
        (the anomaly masks ``Omega``) and ``labels`` (n,) with 1 = anomalous
        (``labels == masks.any(axis=(1, 2))``).

    References
    ----------
    D. Carrera, F. Manganini, G. Boracchi, E. Lanzarone, "Defect Detection in SEM
    Images of Nanofibrous Materials", IEEE Trans. Industrial Informatics 13(2), 2017,
    doi:10.1109/TII.2016.2641472.

    Examples
    --------
    >>> ds = make_nanofibers(n_images=8, size=64, random_state=0)
    >>> ds.images.shape, ds.images.dtype, int(ds.labels.sum())
    ((8, 64, 64), dtype('float64'), 4)
    >>> bool((ds.labels == ds.masks.any(axis=(1, 2))).all())
    True
    >>> films = make_nanofibers(n_images=4, size=64, anomaly_rate=1.0,
    ...                         defect_types=("film",), random_state=1)
    >>> films.labels.tolist()
    [1, 1, 1, 1]
    """
    n_images = _check_int("n_images", n_images, 1)
    size = _check_int("size", size, 32)
    anomaly_rate = _check_real("anomaly_rate", anomaly_rate, 0.0, 1.0)
    fiber_density = _check_real("fiber_density", fiber_density, 0.0, None, low_open=True)
    noise = _check_real("noise", noise, 0.0, None)
    if isinstance(defect_types, str):
        defect_types = (defect_types,)
    defect_types = tuple(defect_types)
    if not defect_types:
        raise ValueError(f"defect_types must name at least one of {DEFECT_TYPES}, got ()")
    for kind in defect_types:
        if kind not in DEFECT_TYPES:
            raise ValueError(
                f"defect_types must contain only {DEFECT_TYPES}, got {kind!r}"
            )
    rng = _rng(random_state)

    n_anomalous = int(np.floor(anomaly_rate * n_images + 0.5))
    labels = np.zeros(n_images, dtype=np.int64)
    labels[:n_anomalous] = 1
    labels = rng.permutation(labels)

    images = np.empty((n_images, size, size))
    masks = np.zeros((n_images, size, size), dtype=bool)
    for i in range(n_images):
        for _ in range(20):  # re-draw the rare anomalous image whose defects are hidden
            img, mask = _render_nanofiber_image(
                rng, size, bool(labels[i]), fiber_density, defect_types, noise
            )
            if not labels[i] or mask.sum() >= 10:
                break
        images[i], masks[i] = img, mask
    return ImageSet(images, masks, labels)


# --------------------------------------------------------------------------- #
# toy vectors
# --------------------------------------------------------------------------- #
def _shuffle(rng, x, y):
    order = rng.permutation(len(y))
    return x[order], y[order]


def make_toy_1d(n_normal=500, n_anomalous=50, shift=3.0, random_state=0):
    """Scalar data: normal samples from phi0 mixed with anomalies from phi1.

    ``phi0 = N(0, 1)`` (normal data) and ``phi1 = N(shift, 1)`` (anomalies): the
    larger ``shift``, the easier it is to tell them apart with a threshold on ``x``.

    Parameters
    ----------
    n_normal : int, default=500
        Number of samples ``x ~ phi0``.
    n_anomalous : int, default=50
        Number of samples ``x ~ phi1`` (may be 0).
    shift : float, default=3.0
        Mean of ``phi1``.
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the draws and of the shuffling.

    Returns
    -------
    x : ndarray of shape (n_normal + n_anomalous,)
        The samples, in a shuffled order.
    y : ndarray of int of shape (n_normal + n_anomalous,)
        1 = anomaly (drawn from ``phi1``), 0 = normal.

    Examples
    --------
    >>> x, y = make_toy_1d(n_normal=100, n_anomalous=10, random_state=0)
    >>> x.shape, int(y.sum())
    ((110,), 10)
    """
    n_normal = _check_int("n_normal", n_normal, 1)
    n_anomalous = _check_int("n_anomalous", n_anomalous, 0)
    shift = _check_real("shift", shift, -np.inf, np.inf)
    rng = _rng(random_state)
    x = np.concatenate([rng.normal(0.0, 1.0, n_normal), rng.normal(shift, 1.0, n_anomalous)])
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_normal, n_anomalous])
    return _shuffle(rng, x, y)


#: Parameters of :func:`make_toy_2d`: phi0 = N(mean0, cov0), phi1 = N(mean1, cov1).
TOY_2D_PARAMS = {
    "mean0": np.array([0.0, 0.0]),
    "cov0": np.array([[1.0, 0.8], [0.8, 1.0]]),
    "mean1": np.array([1.5, -1.5]),
    "cov1": np.array([[1.0, 0.0], [0.0, 1.0]]),
}


def make_toy_2d(n_normal=500, n_anomalous=50, random_state=0):
    """2-D data: a correlated Gaussian phi0 and broader anomalies phi1 off its axis.

    * ``phi0 = N([0, 0], [[1, 0.8], [0.8, 1]])``: normal data stretched along the
      diagonal ``x1 = x2`` (variance 1.8 along it, 0.2 across it);
    * ``phi1 = N([1.5, -1.5], I)``: anomalies centred off that axis, in the
      direction where ``phi0`` is narrow, and broader than ``phi0`` across it.

    Many anomalies are as close to the origin as normal points, so the Euclidean
    distance from the mean detects them poorly, while the Mahalanobis distance
    (which uses the covariance of ``phi0``) does well. The parameters are in
    ``TOY_2D_PARAMS``.

    Parameters
    ----------
    n_normal : int, default=500
        Number of samples ``x ~ phi0``.
    n_anomalous : int, default=50
        Number of samples ``x ~ phi1`` (may be 0).
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the draws and of the shuffling.

    Returns
    -------
    X : ndarray of shape (n_normal + n_anomalous, 2)
        The samples, in a shuffled order.
    y : ndarray of int of shape (n_normal + n_anomalous,)
        1 = anomaly (drawn from ``phi1``), 0 = normal.

    Examples
    --------
    >>> X, y = make_toy_2d(random_state=0)
    >>> X.shape, int(y.sum())
    ((550, 2), 50)
    """
    n_normal = _check_int("n_normal", n_normal, 1)
    n_anomalous = _check_int("n_anomalous", n_anomalous, 0)
    rng = _rng(random_state)
    p = TOY_2D_PARAMS
    X = np.concatenate(
        [
            rng.multivariate_normal(p["mean0"], p["cov0"], n_normal),
            rng.multivariate_normal(p["mean1"], p["cov1"], n_anomalous).reshape(-1, 2),
        ]
    )
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_normal, n_anomalous])
    return _shuffle(rng, X, y)


TEXTURES = ("brick", "grass", "gravel")
TEXTURE_DEFECTS = ("scratch", "blob", "patch", "intensity")


def _load_texture(name):
    """A real 512x512 greyscale texture shipped with scikit-image, as floats in [0, 1]."""
    import skimage.data

    return getattr(skimage.data, name)().astype(np.float64) / 255.0


def _soft_ellipse(shape, centre, axes, angle, edge=1.5):
    """Opacity in [0, 1] of an ellipse with a smooth border of about ``edge`` pixels."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    c, s = np.cos(angle), np.sin(angle)
    u = ((xx - centre[1]) * c + (yy - centre[0]) * s) / axes[1]
    v = (-(xx - centre[1]) * s + (yy - centre[0]) * c) / axes[0]
    r = np.sqrt(u**2 + v**2)
    return np.clip((1.0 - r) * min(axes) / edge, 0.0, 1.0)


def _texture_defect(crop, kind, rng, donor):
    """Add one synthetic defect to ``crop``; return the new crop and the opacity of the defect."""
    h, w = crop.shape
    centre = rng.uniform([0.2 * h, 0.2 * w], [0.8 * h, 0.8 * w])
    if kind == "scratch":  # a thin straight line, brighter or darker than the texture
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.3, 0.6) * min(h, w)
        width = rng.uniform(1.0, 2.0)
        yy, xx = np.mgrid[:h, :w].astype(np.float64)
        dy, dx = np.sin(angle), np.cos(angle)
        along = (xx - centre[1]) * dx + (yy - centre[0]) * dy
        across = np.abs(-(xx - centre[1]) * dy + (yy - centre[0]) * dx)
        alpha = np.clip(width - across, 0, 1) * (np.abs(along) <= length / 2)
        value = rng.choice([0.08, 0.92])
        return crop * (1 - alpha) + value * alpha, alpha
    axes = rng.uniform(0.06, 0.14, size=2) * min(h, w)
    alpha = _soft_ellipse((h, w), centre, axes, rng.uniform(0, np.pi))
    if kind == "blob":  # a smooth stain of uniform tone
        value = float(np.clip(crop.mean() + rng.choice([-1, 1]) * rng.uniform(0.15, 0.3), 0, 1))
        return crop * (1 - alpha) + value * alpha, alpha
    if kind == "patch":  # cut-and-paste: a piece of another texture
        return crop * (1 - alpha) + donor * alpha, alpha
    # intensity: the same texture, with changed contrast and brightness
    changed = np.clip((crop - crop.mean()) * rng.uniform(0.3, 0.6) + crop.mean()
                      + rng.choice([-1, 1]) * 0.12, 0, 1)
    return crop * (1 - alpha) + changed * alpha, alpha


def make_textures(texture="brick", n_images=16, size=64, anomaly_rate=0.5, split="train",
                  defect_types=TEXTURE_DEFECTS, random_state=0):
    """Crops of a real texture (scikit-image) with synthetic defects and exact masks.

    Normal images are random ``size x size`` crops of ``skimage.data.brick()``,
    ``grass()`` or ``gravel()`` (real photographs, bundled with scikit-image, so
    available offline). Anomalous crops get one defect among

    * ``"scratch"``: a thin straight line, much brighter or darker;
    * ``"blob"``: a smooth elliptical stain of uniform tone;
    * ``"patch"``: an ellipse cut from *another* texture and pasted in;
    * ``"intensity"``: an ellipse of the same texture with lower contrast and a shifted
      brightness.

    The mask :math:`\\Omega` holds the pixels where the defect's opacity is at
    least 0.5. ``split="train"`` takes crops from the top half of the 512x512
    texture and ``split="test"`` from the bottom half, so training and test crops
    never share pixels.

    Returns an :class:`ImageSet`.

    Examples
    --------
    >>> ds = make_textures("grass", n_images=4, size=48, random_state=0)
    >>> ds.images.shape, int(ds.labels.sum())
    ((4, 48, 48), 2)
    """
    if texture not in TEXTURES:
        raise ValueError(f"texture must be one of {TEXTURES}, got {texture!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n_images = _check_int("n_images", n_images, 1)
    size = _check_int("size", size, 16, 256)
    anomaly_rate = _check_real("anomaly_rate", anomaly_rate, 0.0, 1.0)
    defect_types = tuple(defect_types)
    unknown = [d for d in defect_types if d not in TEXTURE_DEFECTS]
    if not defect_types or unknown:
        raise ValueError(f"defect_types must be a non-empty subset of {TEXTURE_DEFECTS}, "
                         f"got {defect_types!r}")
    rng = _rng(random_state)
    full = _load_texture(texture)
    donor_full = _load_texture(TEXTURES[(TEXTURES.index(texture) + 1) % len(TEXTURES)])
    rows = (0, 256 - size) if split == "train" else (256, 512 - size)
    n_anomalous = int(round(anomaly_rate * n_images))
    anomalous = rng.permutation(np.r_[np.ones(n_anomalous, bool), np.zeros(n_images - n_anomalous, bool)])
    images = np.empty((n_images, size, size))
    masks = np.zeros((n_images, size, size), dtype=bool)
    for i in range(n_images):
        r = rng.integers(rows[0], rows[1] + 1)
        c = rng.integers(0, 512 - size + 1)
        crop = full[r : r + size, c : c + size].copy()
        if anomalous[i]:
            kind = defect_types[rng.integers(len(defect_types))]
            dr, dc = rng.integers(0, 512 - size + 1, size=2)
            crop, alpha = _texture_defect(crop, kind, rng, donor_full[dr : dr + size, dc : dc + size])
            masks[i] = alpha >= 0.5
        images[i] = np.clip(crop, 0.0, 1.0)
    return ImageSet(images, masks, masks.any(axis=(1, 2)).astype(np.int64))


SHAPES_2D = ("blobs", "banana", "ring", "mixture")


def make_shapes_2d(kind="blobs", n_normal=500, n_anomalous=50, random_state=0):
    """2-D normal data of various shapes, with anomalies spread uniformly around them.

    The chapter-2 test bed: decision boundaries of every detector drawn on the
    same data. ``phi0`` depends on ``kind``:

    * ``"blobs"``: three Gaussian clusters of different spread;
    * ``"banana"``: a curved, non-convex band (a bent parabola plus noise);
    * ``"ring"``: an annulus of radius 2 around an empty centre, where a detector
      that only looks at the distance from the mean fails;
    * ``"mixture"``: a dense and a sparse cluster, where a global density
      threshold misses points near the dense one (the case of LOF).

    ``phi1`` is uniform on the box ``[-5, 5]^2`` (anomalies that fall inside the
    normal region are indistinguishable, which caps the best AUROC below 1).

    Returns ``(X, y)`` shuffled, ``y = 1`` for anomalies.

    Examples
    --------
    >>> X, y = make_shapes_2d("ring", n_normal=100, n_anomalous=10)
    >>> X.shape, int(y.sum())
    ((110, 2), 10)
    """
    if kind not in SHAPES_2D:
        raise ValueError(f"kind must be one of {SHAPES_2D}, got {kind!r}")
    n_normal = _check_int("n_normal", n_normal, 1)
    n_anomalous = _check_int("n_anomalous", n_anomalous, 0)
    rng = _rng(random_state)
    n = n_normal
    if kind == "blobs":
        centres = np.array([[-2.5, -2.0], [2.0, 2.5], [2.5, -2.0]])
        spreads = np.array([0.4, 0.7, 0.3])
        which = rng.integers(0, 3, n)
        X0 = centres[which] + rng.normal(size=(n, 2)) * spreads[which, None]
    elif kind == "banana":
        t = rng.uniform(-2.2, 2.2, n)
        X0 = np.c_[t, 0.45 * t**2 - 1.5] + rng.normal(scale=0.25, size=(n, 2))
    elif kind == "ring":
        angle = rng.uniform(0, 2 * np.pi, n)
        radius = 2.0 + rng.normal(scale=0.2, size=n)
        X0 = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    else:  # mixture: dense + sparse cluster
        dense = rng.random(n) < 0.5
        X0 = np.where(
            dense[:, None],
            np.array([-2.0, 1.5]) + 0.25 * rng.normal(size=(n, 2)),
            np.array([1.5, -1.0]) + 1.2 * rng.normal(size=(n, 2)),
        )
    X1 = rng.uniform(-5, 5, size=(n_anomalous, 2))
    X = np.concatenate([X0, X1])
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_normal, n_anomalous])
    return _shuffle(rng, X, y)


def load_breast_cancer_oneclass(test_size=0.5, random_state=0):
    """scikit-learn's breast-cancer data as a one-class problem (bundled, offline).

    Benign tumours (357) are normal, malignant ones (212) anomalous. The 30
    features are standardised with the mean and standard deviation of the
    normal training part. Returns ``(X_train, X_test, y_test)``: ``X_train``
    holds benign samples only, ``X_test`` the other benign ones and every
    malignant one, ``y_test = 1`` for malignant.
    """
    from sklearn.datasets import load_breast_cancer

    test_size = _check_real("test_size", test_size, 0.0, 1.0, low_open=True, high_open=True)
    rng = _rng(random_state)
    X, target = load_breast_cancer(return_X_y=True)
    anomalous = target == 0  # in scikit-learn, 0 = malignant
    normal_idx = rng.permutation(np.flatnonzero(~anomalous))
    n_test = int(round(test_size * normal_idx.size))
    train_idx, test_normal = normal_idx[n_test:], normal_idx[:n_test]
    mean, std = X[train_idx].mean(0), X[train_idx].std(0)
    X = (X - mean) / std
    test_idx = np.r_[test_normal, np.flatnonzero(anomalous)]
    return X[train_idx], X[test_idx], anomalous[test_idx].astype(np.int64)


# --------------------------------------------------------------------------- #
# digits
# --------------------------------------------------------------------------- #
def load_digits_oneclass(normal_digit=0, test_size=0.5, random_state=0):
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

    Returns
    -------
    DigitsSplit
        ``X_train`` (n_train, 64) and ``X_test`` (n_test, 64) with pixel values in
        [0, 1], ``y_test`` (1 = anomaly, i.e. not ``normal_digit``), and the same
        images as ``images_train`` (n_train, 8, 8) and ``images_test`` (n_test, 8, 8).

    Examples
    --------
    >>> split = load_digits_oneclass(normal_digit=3, random_state=0)
    >>> split.X_train.shape[1], split.images_test.shape[1:]
    (64, (8, 8))
    >>> float(split.X_train.max()) <= 1.0
    True
    """
    from sklearn.datasets import load_digits

    normal_digit = _check_int("normal_digit", normal_digit, 0, 9)
    test_size = _check_real("test_size", test_size, 0.0, 1.0, low_open=True, high_open=True)
    rng = _rng(random_state)
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
    X_train, X_test = X[train_idx], X[test_idx]
    y_test = (target[test_idx] != normal_digit).astype(np.int64)
    return DigitsSplit(
        X_train=X_train,
        X_test=X_test,
        y_test=y_test,
        images_train=X_train.reshape(-1, 8, 8),
        images_test=X_test.reshape(-1, 8, 8),
    )


# --------------------------------------------------------------------------- #
# committed sample images
# --------------------------------------------------------------------------- #
def _sample_set():
    """The images of the committed sample: 3 normal, then one bead, one clump and
    one film image (in the order of ``DEFECT_TYPES``)."""
    parts = [make_nanofibers(_SAMPLE_N_NORMAL, _SAMPLE_SIZE, anomaly_rate=0.0,
                             random_state=_SAMPLE_SEED)]
    for k, kind in enumerate(DEFECT_TYPES):
        parts.append(
            make_nanofibers(1, _SAMPLE_SIZE, anomaly_rate=1.0, defect_types=(kind,),
                            random_state=_SAMPLE_SEED + 1 + k)
        )
    return ImageSet(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.masks for p in parts]),
        np.concatenate([p.labels for p in parts]),
    )


def _to_uint8(images):
    return np.clip(np.floor(np.asarray(images) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def save_samples(folder):
    """Write the sample nanofibre images as 8-bit PNG files.

    Writes ``nanofibers_00.png`` ... ``nanofibers_05.png`` (128x128; 00-02 normal,
    03 with beads, 04 with clumps, 05 with films),
    their masks ``nanofibers_XX_mask.png`` (0 = normal pixel, 255 = anomalous) and
    ``labels.csv`` (columns ``image, mask, label``). The images come from
    :func:`make_nanofibers` with fixed seeds, so the files are reproducible; this is
    how ``data/nanofibers`` is made (``python -m adcourse.data``).

    Parameters
    ----------
    folder : str or Path
        Destination folder, created if missing.

    Returns
    -------
    ImageSet
        The images as written (after 8-bit quantisation), i.e. what
        :func:`load_samples` reads back.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ds = _sample_set()
    images8 = _to_uint8(ds.images)
    rows = []
    for i in range(len(ds)):
        name = f"nanofibers_{i:02d}.png"
        mask_name = f"nanofibers_{i:02d}_mask.png"
        Image.fromarray(images8[i], mode="L").save(folder / name, optimize=True)
        Image.fromarray(ds.masks[i].astype(np.uint8) * 255, mode="L").save(
            folder / mask_name, optimize=True
        )
        rows.append((name, mask_name, int(ds.labels[i])))
    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("image", "mask", "label"))
        writer.writerows(rows)
    return ImageSet(images8 / 255.0, ds.masks, ds.labels)


def load_samples(folder=None):
    """Read the sample nanofibre images written by :func:`save_samples`.

    Parameters
    ----------
    folder : str or Path, optional
        Folder with ``labels.csv`` and the PNG files. Defaults to the repository's
        ``data/nanofibers``.

    Returns
    -------
    ImageSet
        Images in [0, 1] (8-bit precision), masks ``Omega`` and labels.

    Raises
    ------
    FileNotFoundError
        If the folder or one of its files is missing.

    Examples
    --------
    >>> ds = load_samples()
    >>> len(ds), ds.labels.tolist()
    (6, [0, 0, 0, 1, 1, 1])
    """
    from PIL import Image

    folder = SAMPLES_DIR if folder is None else Path(folder)
    table = folder / "labels.csv"
    if not table.is_file():
        raise FileNotFoundError(
            f"no sample images in {folder} (missing {table.name}); regenerate them with "
            "`python -m adcourse.data --out <folder>`"
        )
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    images, masks, labels = [], [], []
    for row in rows:
        for key in ("image", "mask"):
            if not (folder / row[key]).is_file():
                raise FileNotFoundError(f"sample file {folder / row[key]} is missing")
        images.append(np.asarray(Image.open(folder / row["image"]).convert("L")))
        masks.append(np.asarray(Image.open(folder / row["mask"]).convert("L")) > 127)
        labels.append(int(row["label"]))
    return ImageSet(np.stack(images) / 255.0, np.stack(masks), np.array(labels))


# --------------------------------------------------------------------------- #
# MVTec AD (for users who have downloaded it; the course never downloads it)
# --------------------------------------------------------------------------- #
__all__ += ["load_mvtec", "mvtec_defect_types", "MVTEC_URL"]

#: Where to get MVTec AD (manual download; licence CC BY-NC-SA 4.0).
MVTEC_URL = "https://www.mvtec.com/company/research/datasets/mvtec-ad"

_MVTEC_LAYOUT = (
    "expected the MVTec AD layout\n"
    "  <root>/<category>/train/good/*.png\n"
    "  <root>/<category>/test/<defect_type>/*.png   (including test/good)\n"
    "  <root>/<category>/ground_truth/<defect_type>/<name>_mask.png\n"
    f"MVTec AD is not downloaded by adcourse: get it by hand from {MVTEC_URL} "
    "(licence CC BY-NC-SA 4.0, non-commercial use) and unpack it under <root>"
)


def _mvtec_files(root, category, split):
    """``[(defect_type, image_path, mask_path or None), ...]`` in the loaders' order.

    Order: defect-type folders sorted by name, then file names sorted within each.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MVTec AD root folder {root} does not exist; {_MVTEC_LAYOUT}")
    folder = root / str(category) / split
    if not folder.is_dir():
        categories = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"no folder {folder} (category {category!r}, split {split!r}; categories "
            f"found in {root}: {categories}); {_MVTEC_LAYOUT}"
        )
    files = []
    for type_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        defect_type = type_dir.name
        for image_path in sorted(type_dir.glob("*.png")):
            mask_path = None
            if defect_type != "good":
                mask_path = (
                    root / str(category) / "ground_truth" / defect_type
                    / f"{image_path.stem}_mask.png"
                )
                if not mask_path.is_file():
                    raise ValueError(
                        f"test image {image_path} has no mask: expected {mask_path}; "
                        f"{_MVTEC_LAYOUT}"
                    )
            files.append((defect_type, image_path, mask_path))
    if not files:
        raise FileNotFoundError(f"no PNG images under {folder}; {_MVTEC_LAYOUT}")
    return files


def mvtec_defect_types(root, category, split="train"):
    """Defect type of each image :func:`load_mvtec` returns, in the same order.

    ``"good"`` for normal images, otherwise the name of the ``test/<defect_type>``
    folder (e.g. ``"scratch"``). Same arguments and errors as :func:`load_mvtec`.
    """
    return [defect_type for defect_type, _, _ in _mvtec_files(root, category, split)]


def _read_gray(path):
    """A PNG as a float (H, W) array in [0, 1]; colour converted with ITU-R 601 luma."""
    from PIL import Image
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.util import img_as_float

    with Image.open(path) as im:
        if im.mode in ("P", "LA", "CMYK", "YCbCr"):
            im = im.convert("RGBA" if "A" in im.mode or im.mode == "P" else "RGB")
        arr = np.asarray(im)
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    image = img_as_float(arr).astype(np.float64)
    if image.ndim == 3:
        if image.shape[-1] == 4:
            image = rgba2rgb(image)
        image = rgb2gray(image) if image.shape[-1] == 3 else image[..., 0]
    return np.clip(image, 0.0, 1.0)


def load_mvtec(root, category, split="train", size=None, grayscale=True):
    """Load one category of MVTec AD (Bergmann et al., 2019) from a local copy.

    adcourse never downloads MVTec AD: get it by hand from
    https://www.mvtec.com/company/research/datasets/mvtec-ad (licence CC BY-NC-SA 4.0,
    non-commercial use) and unpack it so that the folders look like::

        root/<category>/train/good/*.png
        root/<category>/test/<defect_type>/*.png          (including test/good)
        root/<category>/ground_truth/<defect_type>/<name>_mask.png

    Parameters
    ----------
    root : str or Path
        Folder holding the category folders (``bottle``, ``carpet``, ...).
    category : str
        Category name, e.g. ``"carpet"``.
    split : {"train", "test"}, default "train"
        ``train`` holds normal images only; ``test`` normal and defective ones.
    size : int or (int, int), optional
        Resize every image to ``(size, size)`` (or ``(H, W)``): images with
        anti-aliased bilinear interpolation, masks with nearest neighbour
        (``order=0``). Default: native resolution (all images must then share it).
    grayscale : bool, default True
        :class:`ImageSet` holds grayscale ``(n, H, W)`` images only, so colour
        categories are converted to grayscale (luma, ``skimage.color.rgb2gray``);
        ``False`` raises ``ValueError``.

    Returns
    -------
    ImageSet
        ``images`` float in [0, 1], shape (n, H, W); ``masks`` bool (all False for
        ``good`` images); ``labels`` 1 for any defect type, 0 for ``good``. Order:
        defect-type folders sorted by name, then file names sorted; the defect type
        of each image is given, in the same order, by :func:`mvtec_defect_types`.

    Raises
    ------
    FileNotFoundError
        If ``root`` or ``root/category/split`` is missing or holds no PNG images.
    ValueError
        If ``split`` is not "train"/"test", a defective test image has no mask, a mask
        does not match its image's shape, or images differ in shape and ``size`` is None.
    """
    if not grayscale:
        raise ValueError(
            "grayscale=False is not supported: ImageSet holds grayscale (n, H, W) images "
            "only; use grayscale=True (colour is converted with skimage.color.rgb2gray)"
        )
    if size is not None:
        if isinstance(size, Integral):
            size = (int(size), int(size))
        size = tuple(size)
        if len(size) != 2 or not all(isinstance(s, Integral) and s >= 1 for s in size):
            raise ValueError(f"size must be a positive int or a pair (H, W), got {size!r}")
    files = _mvtec_files(root, category, split)

    from PIL import Image
    from skimage.transform import resize

    images, masks, labels = [], [], []
    for defect_type, image_path, mask_path in files:
        image = _read_gray(image_path)
        if mask_path is None:
            mask = np.zeros(image.shape, dtype=bool)
        else:
            with Image.open(mask_path) as im:
                mask = np.asarray(im.convert("L")) > 0
            if mask.shape != image.shape:
                raise ValueError(
                    f"mask {mask_path} has shape {mask.shape}, its image {image_path} "
                    f"has shape {image.shape}"
                )
        if size is not None and image.shape != size:
            image = np.clip(resize(image, size, order=1, anti_aliasing=True), 0.0, 1.0)
            mask = resize(mask.astype(np.float64), size, order=0, anti_aliasing=False) > 0.5
        images.append(image)
        masks.append(mask)
        labels.append(int(defect_type != "good"))
    shapes = sorted({im.shape for im in images})
    if len(shapes) > 1:
        raise ValueError(
            f"images under {Path(root) / str(category) / split} have different shapes "
            f"{shapes}; pass size= to resize them to a common shape"
        )
    return ImageSet(np.stack(images), np.stack(masks), np.array(labels, dtype=np.int64))


def main(argv=None):
    """Command line: ``python -m adcourse.data [--out FOLDER]``."""
    parser = argparse.ArgumentParser(
        prog="python -m adcourse.data",
        description="Regenerate the sample nanofibre images (data/nanofibers).",
    )
    parser.add_argument(
        "--out", type=Path, default=SAMPLES_DIR, help=f"output folder (default: {SAMPLES_DIR})"
    )
    args = parser.parse_args(argv)
    ds = save_samples(args.out)
    print(f"wrote {len(ds)} images and masks + labels.csv to {args.out}")


if __name__ == "__main__":
    main()
