"""Synthetic SEM images of nanofibres: the lecture's running example.

"Monitoring Nanofiber Production" (Carrera et al., 2017): scanning-electron-microscope
(SEM) images ``s`` of a nanofibrous mat, some carrying defects, each with its exact
anomaly mask ``Omega(c)`` (1 where pixel ``c`` falls in an anomalous region).

* :func:`make_nanofibers` -- the generator;
* :func:`save_samples`, :func:`load_samples` -- the small PNG sample committed in
  ``data/nanofibers`` (regenerate it with ``python -m adcourse.data``).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from scipy import ndimage

from adcourse.data._common import ImageSet, _check_int, _check_real, _rng

__all__ = ["DEFECT_TYPES", "make_nanofibers", "save_samples", "load_samples", "SAMPLES_DIR"]

#: The defect types :func:`make_nanofibers` can draw.
DEFECT_TYPES = ("bead", "clump", "film")

#: Folder of the committed sample images (``data/nanofibers`` in the repository).
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "data" / "nanofibers"

# Parameters of the committed sample (``save_samples``); changing them changes the
# files in data/nanofibers, so data/README.md must be updated with them.
_SAMPLE_N_NORMAL = 3
_SAMPLE_SIZE = 128
_SAMPLE_SEED = 2017

# Threshold on a defect's visible contribution (its opacity after occlusion by
# what lies on top of it) above which a pixel belongs to the mask Omega.
_MASK_THRESHOLD = 0.3

# --------------------------------------------------------------------------- #
# nanofibre renderer
# --------------------------------------------------------------------------- #
# Geometry is in pixels: the field of view grows with ``size`` (fibres keep their
# width in pixels), so the same patch size suits every image size. The scale is the
# one the course uses for the real NanoTWICE images: half of their resolution, where
# a fibre is about 4 pixels wide. The constants below were set so that
# sem_statistics of the generated images match NANOTWICE_STATISTICS
# (adcourse.data.nanotwice; tests/test_nanotwice.py holds them to it).
_N_LAYERS = 6  # depth layers, 0 = top (crisp, bright), the last = deepest
_MARGIN = 12  # rendering margin, cropped at the end (no border effects)
_STEP = 0.8  # spacing of the points along a fibre, in pixels
_FIBRES_PER_LAYER = 2.6  # expected fibres per layer per 64 px of image side
_LAYER_WEIGHT = (1.3, 1.2, 1.1, 1.2, 1.3, 1.4)  # relative number of fibres per layer
_LAYER_VALUE = (1.3, 0.95, 0.78, 0.64, 0.5, 0.38)  # brightness of a fibre at each depth
_BACKGROUND = 0.02  # the dark gaps between fibres
# how often each defect type is drawn: on the real images most defects are clumps
_DEFECT_FREQUENCY = {"bead": 0.3, "clump": 0.5, "film": 0.2}


def _random_paths(rng, n, n_steps, extent, curvature, persistence=0.9):
    """Smooth random curves: a random walk whose direction has momentum.

    The angular velocity is an AR(1) process, so each path bends smoothly (with the
    small ``curvature`` of electrospun fibres, they are nearly straight). Every path
    starts from its middle point, uniform in ``[0, extent)^2``. Returns the points
    (n, n_steps, 2) in (row, col) and the unit tangents (n, n_steps, 2).
    """
    curvature = np.broadcast_to(np.asarray(curvature, dtype=float), (n,))
    eps = rng.normal(size=(n, n_steps)) * curvature[:, None]
    from scipy import signal  # here: importing scipy.signal costs 1 s (it pulls in scipy.stats)

    omega = signal.lfilter([1.0], [1.0, -persistence], eps, axis=1)
    # stratified middle points (a Latin hypercube): the real mats are even, without
    # the large empty areas of independent uniform draws
    strata = (np.arange(n)[:, None] + rng.uniform(size=(n, 2))) / n
    strata[:, 1] = rng.permutation(strata[:, 1])
    theta = rng.uniform(0, 2 * np.pi, size=(n, 1)) + np.cumsum(omega, axis=1)
    tangent = np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    pos = np.cumsum(_STEP * tangent, axis=1)
    pos -= pos[:, n_steps // 2 : n_steps // 2 + 1]
    start = strata[:, None, :] * np.asarray(extent, dtype=float)
    return pos + start, tangent


def _render_curves(shape, points, tangents, radius, value):
    """Draw thick anti-aliased curves on one layer.

    ``points`` (N, 2), ``tangents`` (N, 2), ``radius`` (N,), ``value`` (N,) describe
    the centre lines point by point. Every pixel takes the nearest centre-line point
    (Euclidean distance transform), then its distance to the tangent line through
    that point, which gives smooth edges. Returns (colour, alpha): the shading of
    the fibre (a bright core that darkens slightly towards the edges, as a round
    fibre looks under a secondary-electron detector) and its opacity.
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
    colour[near] = value[k] * (1.0 - 0.5 * u**4)
    return colour, alpha


def _lognormal_area(rng, median, sigma, low, high):
    """A defect area in pixels: log-normal (the real areas are), clipped to [low, high]."""
    return float(np.clip(median * np.exp(sigma * rng.normal()), low, high))


def _blob(shape, centre, axes, angle, rng, roughness=0.35, ramp=1.2):
    """Soft irregular blob: a rotated ellipse with a noisy boundary. Returns
    (alpha, rho) where rho is the normalised elliptical radius (0 at the centre)."""
    rr, cc = np.indices(shape, dtype=float)
    dr, dc = rr - centre[0], cc - centre[1]
    ca, sa = np.cos(angle), np.sin(angle)
    x = (dc * ca + dr * sa) / axes[0]
    y = (-dc * sa + dr * ca) / axes[1]
    rho = np.hypot(x, y)
    noise = ndimage.gaussian_filter(rng.normal(size=shape), sigma=max(0.35 * min(axes), 0.8))
    noise /= noise.std() + 1e-12
    level = rho + roughness * noise * 0.35
    alpha = np.clip((1.0 - level) * min(axes) / ramp, 0.0, 1.0)
    return alpha, rho


def _axes_for_area(rng, area, elongation):
    """Semi-axes (a, b) of an ellipse of the given area and axis ratio a / b."""
    b = np.sqrt(area / (np.pi * elongation))
    return np.array([b * elongation, b])


def _bead(shape, layer, rng, size):
    """A bead: a bright spindle-shaped thickening sitting on a fibre of the given layer."""
    pts, tan, rad, val = layer
    lo, hi = _MARGIN + 4, _MARGIN + size - 4
    ok = np.nonzero(
        (pts[:, 0] >= lo) & (pts[:, 0] < hi) & (pts[:, 1] >= lo) & (pts[:, 1] < hi)
    )[0]
    if len(ok) == 0:  # no top fibre inside the image: a free bead
        centre = rng.uniform(lo, hi, size=2)
        t, r, v = np.array([0.0, 1.0]), 2.2, _LAYER_VALUE[0]
    else:
        k = ok[rng.integers(len(ok))]
        centre, t, r, v = pts[k], tan[k], rad[k], val[k]
    b = r * rng.uniform(1.2, 1.6)
    a = b * rng.uniform(1.4, 2.4)
    angle = np.arctan2(t[0], t[1])
    rr, cc = np.indices(shape, dtype=float)
    dr, dc = rr - centre[0], cc - centre[1]
    x = (dc * np.cos(angle) + dr * np.sin(angle)) / a
    y = (-dc * np.sin(angle) + dr * np.cos(angle)) / b
    rho = np.hypot(x, y)
    alpha = np.clip((1.0 - rho) * b + 0.5, 0.0, 1.0)
    grain = ndimage.gaussian_filter(rng.normal(size=shape), 0.8)
    grain /= grain.std() + 1e-12
    colour = min(v * rng.uniform(1.0, 1.05), 1.0) * (1.0 - 0.25 * np.clip(rho, 0, 1) ** 3)
    colour = colour + 0.05 * grain
    return np.clip(colour, 0.0, 1.0), alpha


def _clump(shape, rng, size):
    """A clump: an irregular aggregate of material with a granular, knobbly surface.

    The clump is bright (it stands above the mat, nearest to the detector), made of
    small nodules separated by darker crevices: a height field (an irregular blob
    times bumpy noise) shaded brighter where the surface is higher and where it is
    steep (the SEM edge effect). Its area is log-normal, as on the real images.
    """
    area = _lognormal_area(rng, 110.0, 1.2, 20.0, 0.1 * size * size)
    axes = _axes_for_area(rng, area, rng.uniform(1.0, 1.8))
    centre = rng.uniform(_MARGIN + 4, _MARGIN + size - 4, size=2)
    region, rho = _blob(shape, centre, axes, rng.uniform(0, np.pi), rng, roughness=0.7)
    bumps = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(1.2, 1.8))
    bumps /= bumps.std() + 1e-12
    gr, gc = np.gradient(bumps)
    colour = rng.uniform(0.76, 0.86) + 0.18 * bumps + 0.4 * np.hypot(gr, gc)
    colour = colour * (1.0 - 0.15 * np.clip(rho, 0, 1) ** 4)
    return np.clip(colour, 0.0, 1.0), region


def _film(shape, rng, size):
    """A film: a flat, smooth membrane of polymer spanning the gaps between fibres.

    It lies on the mat and hides the fibres below it; it is bright grey (lighter than
    the gaps, darker than the top fibres) and smooth: only faint shading and the shot
    noise of the acquisition give it texture, so its local contrast is much lower
    than that of the fibre network.
    """
    area = _lognormal_area(rng, 230.0, 0.8, 60.0, 0.12 * size * size)
    axes = _axes_for_area(rng, area, rng.uniform(1.0, 2.0))
    centre = rng.uniform(_MARGIN + 4, _MARGIN + size - 4, size=2)
    alpha, rho = _blob(shape, centre, axes, rng.uniform(0, np.pi), rng, roughness=0.5)
    alpha *= rng.uniform(0.9, 0.98)
    level = rng.uniform(0.65, 0.85)
    shade = ndimage.gaussian_filter(rng.normal(size=shape), 4.0)
    shade /= shade.std() + 1e-12
    colour = level * (1.0 + 0.04 * shade + 0.1 * np.clip(rho, 0, 1) ** 2)
    return np.clip(colour, 0.0, 1.0), alpha


def _render_nanofiber_image(rng, size, anomalous, fiber_density, defect_types, noise):
    """Render one image; return (image, mask) of shape (size, size)."""
    ext = size + 2 * _MARGIN
    shape = (ext, ext)
    length = 3.0 * ext
    n_steps = int(length / _STEP)

    # background: nearly black, with a faint low-frequency glow (deep, unresolved fibres)
    bg = ndimage.gaussian_filter(rng.normal(size=shape), 12.0)
    bg = _BACKGROUND * (1.0 + 0.5 * bg / (bg.std() + 1e-12))

    # fibre layers, 0 = top
    layers = []  # (colour, alpha, sigma) bottom layers last
    top_fibres = None
    density = fiber_density * rng.uniform(0.9, 1.1)  # the mat is not uniform
    for lay in range(_N_LAYERS):
        z = lay / (_N_LAYERS - 1)
        # the real mats are even: the count varies little from image to image
        n = int(rng.poisson(density * _LAYER_WEIGHT[lay] * _FIBRES_PER_LAYER * ext / 64.0 * 0.25)
                + density * _LAYER_WEIGHT[lay] * _FIBRES_PER_LAYER * ext / 64.0 * 0.75 + 0.5)
        if n == 0:
            layers.append((np.zeros(shape), np.zeros(shape), 0.0))
            continue
        curv = rng.uniform(0.0, 0.0015, size=n)
        pts, tan = _random_paths(rng, n, n_steps, shape, curv)
        rad = rng.uniform(1.8, 2.9, size=n) * (1.0 - 0.25 * z)
        val = np.clip(_LAYER_VALUE[lay] * rng.uniform(0.88, 1.08, size=n), 0.0, 1.0)
        # slow thickness variation along each fibre
        wob = 1.0 + 0.08 * np.sin(
            np.linspace(0, 1, n_steps)[None, :] * rng.uniform(4, 16, (n, 1))
            + rng.uniform(0, 2 * np.pi, (n, 1))
        )
        radius = (rad[:, None] * wob).ravel()
        # and of brightness: a fibre rises and sinks through the mat
        fade = 1.0 + 0.15 * np.sin(
            np.linspace(0, 1, n_steps)[None, :] * rng.uniform(3, 10, (n, 1))
            + rng.uniform(0, 2 * np.pi, (n, 1))
        )
        value = (val[:, None] * fade).ravel()
        pts, tan = pts.reshape(-1, 2), tan.reshape(-1, 2)
        colour, alpha = _render_curves(shape, pts, tan, radius, value)
        sigma = 0.8 * z
        layers.append((colour, alpha, sigma))
        if lay == 0:
            top_fibres = (pts, tan, radius, value)

    # defects, each inserted above a layer (it occludes that layer and those below)
    defects = []  # (insert above layer index, colour, alpha, sigma)
    if anomalous:
        n_def = int(rng.integers(1, 5))
        weights = np.array([_DEFECT_FREQUENCY[k] for k in defect_types])
        kinds = [defect_types[i] for i in
                 rng.choice(len(defect_types), size=n_def, p=weights / weights.sum())]
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

    # acquisition: brightness/contrast drift, faint vignetting, scan-line noise,
    # shot noise and the detector's point-spread function
    rr, cc = np.indices((size, size), dtype=float)
    r2 = ((rr - size / 2) ** 2 + (cc - size / 2) ** 2) / (size / 2) ** 2
    gain = rng.uniform(0.97, 1.03) * (1.0 - 0.01 * r2)
    img = img * gain + rng.uniform(-0.01, 0.01)
    if noise > 0:
        img = img + noise * 0.02 * rng.normal(size=(size, 1))
        photons = 12.0 / noise**2
        img = rng.poisson(np.clip(img, 0, None) * photons) / photons
        img = ndimage.gaussian_filter(img, 0.35)
    return _saturate(img), mask


def _saturate(x, knee=0.8):
    """The detector's response: linear up to ``knee``, then a soft saturation to 1
    (the brightest fibres are blown out, and their noise is squeezed with them)."""
    x = np.clip(x, 0.0, None)
    top = knee + (1.0 - knee) * np.tanh((x - knee) / (1.0 - knee))
    return np.where(x < knee, x, top)


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
    2017): each image ``s`` shows a dense mat of long, nearly straight fibres, bright
    and sharp on a dark background. Fibres lie at several depths: the top ones are
    the brightest (blown out, as in the real micrographs) and cover the lower ones,
    which are dimmer and slightly blurred. Anomalous images also carry 1 to 4 defects,
    and their mask ``Omega(c)`` is 1 exactly on the pixels ``c`` the defects changed.

    The generator is calibrated on the real NanoTWICE images at the scale the course
    uses for them (half resolution, :data:`adcourse.data.nanotwice.COURSE_SCALE`): a
    fibre is about 4 pixels wide, the grey-level histogram, the fibre cover, the
    orientation spread, the noise, the power spectrum and the sizes and contrast of
    the defects match those measured on 128 x 128 tiles of the real images
    (:data:`adcourse.data.nanotwice.NANOTWICE_STATISTICS`, compared in
    ``tests/test_nanotwice.py`` with :func:`adcourse.data.sem_statistics`).

    Defect types (drawn, when all three are allowed, with the frequencies 0.3, 0.5
    and 0.2: on the real images most defects are clumps):

    * ``"bead"``: a bright spindle (ellipse) sitting on a top fibre, where the
      fibre thickened during electrospinning;
    * ``"clump"``: an irregular, bright aggregate of material with a granular,
      knobbly surface (nodules and darker crevices); its area is log-normal, from
      about 20 to 500 pixels, as on the real images;
    * ``"film"``: a flat, smooth membrane of light-grey material spanning the gaps
      between fibres and hiding the fibres below it.

    The defects are bright, but so are the top fibres: the raw grey level as a pixel
    score reaches a pixel AUROC of about 0.75 (0.74 on the real images), a Gaussian
    ``phi0`` of normal grey levels (score ``|s(c) - mu| / sigma``) falls below chance
    (about 0.47, as on the real images), and a Gaussian of the local mean and
    contrast over 9x9 windows does no better than the raw grey level (about 0.74;
    0.73 on the real images): a detector must learn the structure of the patch
    around ``c``. Images are rendered in pixels, at any ``size``, with the same
    fibre width.

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
        random (with the frequencies above, renormalised over the types given).
        Pass one type to study it alone.
    noise : float >= 0, default=0.1
        SEM acquisition noise: Poisson shot noise with standard deviation about
        ``0.3 * noise * sqrt(intensity)``, faint horizontal scan-line offsets and a
        slight blur of the detector, then the detector's soft saturation of the
        brightest levels. 0 gives clean renderings (still saturated).
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

