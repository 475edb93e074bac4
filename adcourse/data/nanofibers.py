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
from scipy import ndimage, signal

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

