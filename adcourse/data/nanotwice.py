r"""NanoTWICE: the lecture's real SEM images of nanofibrous material, from a local folder.

Carrera, Manganini, Boracchi and Lanzarone (2017) monitored the production of
nanofibrous material with a scanning electron microscope: 5 defect-free images and
40 images with defects (clumps of material, beads, films), each with a hand-drawn
pixel mask. The course never ships or downloads these images (no redistribution
licence is stated): a user who has them names their folder.

* :func:`nanotwice_root` -- the folder named by the environment variable
  ``ADCOURSE_NANOTWICE`` (or None);
* :func:`load_nanotwice`, :func:`nanotwice_names` -- the images, masks and labels, in
  the layout the authors distribute;
* :func:`nanotwice_split` -- the course's split: images to fit on, a validation part
  to choose settings on, and the test part;
* :func:`sem_statistics` -- simple statistics of any set of SEM-like images (intensity
  histogram, fibre width, orientation, noise, spectrum, defect sizes and contrast),
  to compare :func:`~adcourse.data.make_nanofibers` with the real images;
* :data:`NANOTWICE_STATISTICS` -- those statistics measured on the real images at the
  course's scale (:data:`COURSE_SCALE`), the target the generator is calibrated on;
  :func:`measure_nanotwice_statistics` measures them again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from adcourse.data._common import ImageSet, _check_int, _check_real

__all__ = [
    "COURSE_SCALE",
    "NANOTWICE_ENV",
    "NANOTWICE_STATISTICS",
    "NanoTwiceSplit",
    "SPECTRUM_BANDS",
    "load_nanotwice",
    "measure_nanotwice_statistics",
    "nanotwice_names",
    "nanotwice_root",
    "nanotwice_split",
    "sem_statistics",
]

#: The environment variable that names the user's NanoTWICE folder.
NANOTWICE_ENV = "ADCOURSE_NANOTWICE"

#: The scale at which the course uses the real images (half resolution, 512 x 348):
#: a fibre is then about 4-5 pixels wide, as in :func:`~adcourse.data.make_nanofibers`.
COURSE_SCALE = 0.5

_CITATION = (
    "D. Carrera, F. Manganini, G. Boracchi, E. Lanzarone, \"Defect Detection in SEM "
    "Images of Nanofibrous Materials\", IEEE Trans. Industrial Informatics 13(2), 2017, "
    "doi:10.1109/TII.2016.2641472"
)

_LAYOUT = (
    "expected the NanoTWICE layout of its authors\n"
    "  <root>/Normal/*.tif                    defect-free images\n"
    "  <root>/Anomalous/images/*.tif          images with defects\n"
    "  <root>/Anomalous/gt/<stem>_gt.png      their masks (white = defect)\n"
    "adcourse does not ship or download these images; they come with " + _CITATION
)


def nanotwice_root():
    """The NanoTWICE folder named by the environment variable ``ADCOURSE_NANOTWICE``.

    Returns
    -------
    Path or None
        The folder, or None when the variable is unset or empty (the book and the
        benchmark then skip the real images and say so).

    Raises
    ------
    FileNotFoundError
        If the variable names something that is not a folder (a typo should not
        silently hide the real images).
    """
    value = os.environ.get(NANOTWICE_ENV, "").strip()
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{NANOTWICE_ENV}={value!r} is not a folder; unset it, or point it at the "
            f"NanoTWICE folder; {_LAYOUT}"
        )
    return root


def _tifs(folder):
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff"))


def _nanotwice_files(root, subset="all"):
    """``[(name, image_path, mask_path or None), ...]``: normal images, then anomalous
    ones, each sorted by file name."""
    if subset not in ("all", "normal", "anomalous"):
        raise ValueError(f"subset must be 'all', 'normal' or 'anomalous', got {subset!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"NanoTWICE folder {root} does not exist; {_LAYOUT}")
    normal_dir = root / "Normal"
    image_dir, gt_dir = root / "Anomalous" / "images", root / "Anomalous" / "gt"
    for folder in (normal_dir, image_dir, gt_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder {folder}; {_LAYOUT}")
    normal, anomalous = _tifs(normal_dir), _tifs(image_dir)
    if not normal:
        raise FileNotFoundError(f"no TIFF images in {normal_dir}; {_LAYOUT}")
    if not anomalous:
        raise FileNotFoundError(f"no TIFF images in {image_dir}; {_LAYOUT}")
    masks = {p.name: p for p in gt_dir.glob("*_gt.png")}
    missing = [p.stem + "_gt.png" for p in anomalous if p.stem + "_gt.png" not in masks]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} anomalous image(s) have no mask in {gt_dir}: expected "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; {_LAYOUT}"
        )
    stems = {p.stem for p in anomalous}
    orphans = sorted(n for n in masks if n[: -len("_gt.png")] not in stems)
    if orphans:
        raise ValueError(
            f"{len(orphans)} mask(s) in {gt_dir} have no image in {image_dir}: "
            f"{', '.join(orphans[:5])}; is the folder incomplete? {_LAYOUT}"
        )
    files = []
    if subset in ("all", "normal"):
        files += [(p.stem, p, None) for p in normal]
    if subset in ("all", "anomalous"):
        files += [(p.stem, p, masks[p.stem + "_gt.png"]) for p in anomalous]
    return files


def nanotwice_names(root, subset="all"):
    """File stems of the images :func:`load_nanotwice` returns, in the same order
    (e.g. ``"ITIA1141"``); same arguments and errors."""
    return [name for name, _, _ in _nanotwice_files(root, subset)]


def _read_8bit(path, what):
    from PIL import Image

    with Image.open(path) as im:
        if im.mode == "1":
            return np.asarray(im, dtype=bool)
        if im.mode != "L":
            raise ValueError(
                f"{what} {path} is not an 8-bit grayscale image (PIL mode {im.mode!r}, "
                "expected 'L'); the NanoTWICE images are 8-bit grayscale TIFF files"
            )
        return np.asarray(im)


def _downscale(array, scale):
    """Area-average ``array`` (H, W) to ``round(scale * H), round(scale * W)``."""
    from PIL import Image

    h, w = array.shape
    size = (max(1, round(scale * w)), max(1, round(scale * h)))
    im = Image.fromarray(np.asarray(array, dtype=np.float32), mode="F")
    return np.asarray(im.resize(size, Image.Resampling.BOX), dtype=np.float64)


def load_nanotwice(root, scale=1.0, subset="all"):
    """Load the NanoTWICE SEM images (Carrera et al., 2017) from a local folder.

    The folder has the layout its authors distribute::

        root/Normal/*.tif                 5 defect-free images (1024 x 700)
        root/Anomalous/images/*.tif       40 images with defects (1024 x 696)
        root/Anomalous/gt/<stem>_gt.png   their masks, white = defect (1-bit PNG)

    Images are 8-bit grayscale. adcourse never ships or downloads them: cite
    D. Carrera, F. Manganini, G. Boracchi, E. Lanzarone, "Defect Detection in SEM
    Images of Nanofibrous Materials", IEEE Trans. Industrial Informatics 13(2), 2017,
    doi:10.1109/TII.2016.2641472, when you use them.

    Parameters
    ----------
    root : str or Path
        The folder (for instance :func:`nanotwice_root`).
    scale : float in (0, 1], default=1.0
        Downscale factor: each image is averaged over blocks of ``1/scale`` pixels
        (area averaging, so the noise averages as a lower-resolution scan would),
        and each mask keeps the pixels more than half covered by the defect. The
        course works at :data:`COURSE_SCALE` = 0.5.
    subset : {"all", "normal", "anomalous"}, default="all"
        Which images to load.

    Returns
    -------
    ImageSet
        ``images`` (n, H, W) float64 in [0, 1] (8-bit values / 255), ``masks`` (all
        False for the defect-free images) and ``labels`` (1 = defects). Order: the
        ``Normal`` images sorted by file name, then the ``Anomalous`` ones; their
        names are :func:`nanotwice_names`. The defect-free images are 4 rows taller
        than the others: every image is cropped to the smallest height and width of
        the set (rows and columns are removed at the bottom and right) so that they
        stack.

    Raises
    ------
    FileNotFoundError
        If ``root``, one of its three folders, the images or a mask are missing.
    ValueError
        If ``scale`` or ``subset`` is invalid, a file is not 8-bit grayscale, a mask
        does not have its image's shape, a mask has no image, or the images differ
        in height or width by more than 16 pixels and 2 %.

    Examples
    --------
    >>> root = nanotwice_root()                                    # doctest: +SKIP
    >>> ds = load_nanotwice(root, scale=COURSE_SCALE)              # doctest: +SKIP
    >>> ds                                                         # doctest: +SKIP
    ImageSet(n=45, size=(348, 512), anomalous=40)
    """
    scale = _check_real("scale", scale, 0.0, 1.0, low_open=True)
    files = _nanotwice_files(root, subset)
    images, masks = [], []
    for _, image_path, mask_path in files:
        image = _read_8bit(image_path, "image")
        if image.dtype == bool:
            raise ValueError(f"image {image_path} is a 1-bit image; expected 8-bit grayscale")
        if mask_path is None:
            mask = np.zeros(image.shape, dtype=bool)
        else:
            mask = _read_8bit(mask_path, "mask") > 0
            if mask.shape != image.shape:
                raise ValueError(
                    f"mask {mask_path} has shape {mask.shape}, its image {image_path} "
                    f"has shape {image.shape}"
                )
        images.append(image)
        masks.append(mask)
    h = min(im.shape[0] for im in images)
    w = min(im.shape[1] for im in images)
    big_h, big_w = max(im.shape[0] for im in images), max(im.shape[1] for im in images)
    if big_h - h > max(16, 0.02 * h) or big_w - w > max(16, 0.02 * w):
        raise ValueError(
            f"the images under {root} differ in size: from {h}x{w} to {big_h}x{big_w} "
            "pixels; the NanoTWICE images are all about 1024x696"
        )
    out_images, out_masks = [], []
    for image, mask in zip(images, masks):
        image = image[:h, :w].astype(np.float64) / 255.0
        mask = mask[:h, :w]
        if scale != 1.0:
            image = np.clip(_downscale(image, scale), 0.0, 1.0)
            mask = _downscale(mask, scale) > 0.5
        out_images.append(image)
        out_masks.append(mask)
    labels = np.array([int(m is not None) for _, _, m in files], dtype=np.int64)
    return ImageSet(np.stack(out_images), np.stack(out_masks), labels)


class NanoTwiceSplit(NamedTuple):
    """The course's split of NanoTWICE (:func:`nanotwice_split`)."""

    #: (4, H, W) defect-free images to fit on (crops of them)
    fit: np.ndarray
    #: anomalous images whose masks may be used to choose settings
    validation: ImageSet
    #: the remaining defect-free image and anomalous images: report figures on these only
    test: ImageSet
    #: file names of ``fit``, ``validation`` and ``test`` images
    names: dict


def nanotwice_split(dataset, names=None, n_fit=4, validation_every=4):
    """Split NanoTWICE into images to fit on, a validation part and a test part.

    The first ``n_fit`` defect-free images (by file name) are the normal data the
    models are fitted on; the other defect-free image(s) go to the test part. Of the
    anomalous images (sorted by name), every ``validation_every``-th one starting
    with the second (positions 1, 5, 9, ...: ITIA1102, ITIA1106, ..., ITIA1138 in
    the authors' set, 10 images) form the validation part, on which settings such
    as patch size, scale or number of components may be chosen; the others (30
    anomalous images) and the held-out defect-free image form the test part, on
    which figures are reported. Nothing is chosen on the test part.

    Parameters
    ----------
    dataset : ImageSet
        What :func:`load_nanotwice` returns with ``subset="all"`` (normal images first).
    names : list of str, optional
        :func:`nanotwice_names` of the same images, to record which went where.
    n_fit : int, default=4
        Number of defect-free images to fit on (at least one must stay for the test).
    validation_every : int >= 2, default=4
        One anomalous image in ``validation_every`` goes to the validation part.

    Returns
    -------
    NanoTwiceSplit
        ``fit`` (n_fit, H, W), ``validation`` and ``test`` ImageSets, and ``names``
        (a dict with the three lists, or index strings when ``names`` is None).
    """
    labels = np.asarray(dataset.labels)
    normal = np.flatnonzero(labels == 0)
    anomalous = np.flatnonzero(labels == 1)
    n_fit = _check_int("n_fit", n_fit, 1, max(1, len(normal) - 1))
    validation_every = _check_int("validation_every", validation_every, 2)
    if len(normal) < 2 or len(anomalous) < 2:
        raise ValueError(
            "dataset must hold at least 2 defect-free and 2 anomalous images, got "
            f"{len(normal)} and {len(anomalous)}"
        )
    fit = normal[:n_fit]
    val = anomalous[1::validation_every]
    test = np.r_[normal[n_fit:], np.setdiff1d(anomalous, val)]
    names = [str(i) for i in range(len(labels))] if names is None else list(names)
    if len(names) != len(labels):
        raise ValueError(f"names must have {len(labels)} entries, got {len(names)}")
    return NanoTwiceSplit(
        fit=dataset.images[fit],
        validation=dataset[val],
        test=dataset[test],
        names={k: [names[i] for i in idx] for k, idx in
               (("fit", fit), ("validation", val), ("test", test))},
    )


# --------------------------------------------------------------------------- #
# statistics of SEM-like images
# --------------------------------------------------------------------------- #
#: Edges of the frequency bands of ``power_band_k`` (cycles per pixel).
SPECTRUM_BANDS = (0.0, 1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 0.5 * np.sqrt(2) + 1e-9)


def _noise_sigma(image):
    """Immerkaer's (1996) estimate of the standard deviation of white noise: the mean
    absolute response to the Laplacian difference kernel, which cancels linear
    intensity ramps, times sqrt(pi / 2) / 6."""
    kernel = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    response = ndimage.convolve(image, kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.abs(response).mean() / 6.0)


def _band_powers(image):
    """Fraction of the power spectrum (Hann window, mean removed) in each band."""
    h, w = image.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2((image - image.mean()) * window)) ** 2
    freq = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    bands = np.array([power[(freq >= lo) & (freq < hi)].sum()
                      for lo, hi in zip(SPECTRUM_BANDS[:-1], SPECTRUM_BANDS[1:])])
    return bands / bands.sum()


def _texture_statistics(image, valid):
    """Statistics of the defect-free pixels ``valid`` of one image (a dict)."""
    from skimage.feature import structure_tensor, structure_tensor_eigenvalues
    from skimage.filters import threshold_otsu
    from skimage.morphology import skeletonize

    pixels = image[valid]
    out = dict(zip(("intensity_q05", "intensity_q25", "intensity_median",
                    "intensity_q75", "intensity_q95"),
                   np.quantile(pixels, [0.05, 0.25, 0.5, 0.75, 0.95])))
    fibre = image > threshold_otsu(pixels)
    skeleton = skeletonize(fibre) & valid
    out["background"] = np.median(image[valid & ~fibre])
    out["fibre_level"] = np.median(image[valid & fibre])
    out["fibre_cover"] = fibre[valid].mean()
    out["fibre_width"] = fibre[valid].sum() / max(int(skeleton.sum()), 1)
    tensor = structure_tensor(image, sigma=2.0, order="rc")
    l1, l2 = structure_tensor_eigenvalues(tensor)
    coherence = (l1 - l2) / (l1 + l2 + 1e-12)
    a_rr, a_rc, a_cc = tensor
    theta = 0.5 * np.arctan2(2.0 * a_rc, a_cc - a_rr)
    sel = fibre & valid
    weights = coherence[sel]
    mean_axis = np.abs(np.sum(weights * np.exp(2j * theta[sel]))) / (weights.sum() + 1e-12)
    out["orientation_spread"] = 1.0 - mean_axis
    out["coherence"] = weights.mean()
    out["noise"] = _noise_sigma(image)
    for k, p in enumerate(_band_powers(image)):
        out[f"power_band_{k}"] = p
    return out


def sem_statistics(images, masks=None):
    r"""Simple statistics of SEM-like images of fibres, and of their defects.

    What :func:`~adcourse.data.make_nanofibers` is calibrated on, computed the same
    way for any image set, so that real and synthetic images can be shown side by
    side. Pixel quantities are in pixels of the images given: compare sets at the
    same scale. Texture statistics use the defect-free pixels only (outside the
    masks dilated by 3 pixels) and are averaged over the images:

    * ``intensity_q05`` ... ``intensity_q95``: quantiles of the grey levels;
    * ``background`` / ``fibre_level``: median grey level below / above Otsu's
      threshold (the dark gaps and the fibres), ``fibre_cover`` the fraction above;
    * ``fibre_width``: mean width of the fibres, area of the bright (above-Otsu)
      region divided by the length of its skeleton (a strip of width :math:`w` and
      length :math:`L` has area :math:`wL`);
    * ``orientation_spread``: :math:`1 - |\sum_c \kappa_c e^{2i\theta_c}| / \sum_c
      \kappa_c` over fibre pixels :math:`c`, with :math:`\theta_c` the orientation and
      :math:`\kappa_c = (\lambda_1 - \lambda_2)/(\lambda_1 + \lambda_2)` the coherence
      of the structure tensor (Gaussian window of 2 pixels): 1 when the fibres run in
      every direction, 0 when they are all parallel; ``coherence`` the mean
      :math:`\kappa_c` (high for straight, sharp fibres);
    * ``noise``: Immerkaer's estimate of the standard deviation of the white noise;
    * ``power_band_0`` ... ``power_band_5``: fractions of the power spectrum in the
      frequency bands :data:`SPECTRUM_BANDS` (cycles per pixel; the last band is the
      finest detail and the noise).

    With masks holding defects, also:

    * ``defect_area_q10``, ``defect_area_median``, ``defect_area_q90``: quantiles of
      the areas (pixels) of the connected regions of the masks, pooled over images;
    * ``defect_fraction``: median fraction of an anomalous image covered by defects;
    * ``defect_intensity`` / ``defect_ring_intensity``: mean grey level inside the
      defects / in a 4-pixel ring around them (their contrast to what surrounds them);
    * ``defect_local_std`` / ``normal_local_std``: mean standard deviation over 5x5
      windows centred inside the defects / on defect-free pixels (the texture);
    * ``intensity_pixel_auroc``: pixel AUROC of the raw grey level as the anomaly
      score (how much brightness alone gives the defects away).

    Parameters
    ----------
    images : array-like of shape (n, H, W)
        Grayscale images in [0, 1], at least 16 x 16.
    masks : array-like of shape (n, H, W), optional
        Defect masks (True = defect).

    Returns
    -------
    dict of str -> float

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> ds = make_nanofibers(4, 64, anomaly_rate=0.5, random_state=0)
    >>> stats = sem_statistics(ds.images, ds.masks)
    >>> 3 < stats["fibre_width"] < 7, stats["defect_intensity"] > stats["defect_ring_intensity"]
    (True, True)
    """
    from adcourse.metrics import pixel_roc_auc
    from adcourse.validation import check_images

    images = check_images(images, "images", min_size=16)
    if images.ndim != 3:
        raise ValueError(f"images must be grayscale (n, H, W), got shape {images.shape}")
    if masks is None:
        masks = np.zeros(images.shape, dtype=bool)
    masks = np.asarray(masks)
    if masks.shape != images.shape:
        raise ValueError(f"masks must have the shape of images {images.shape}, got {masks.shape}")
    masks = masks.astype(bool)
    per_image = []
    for image, mask in zip(images, masks):
        valid = ~ndimage.binary_dilation(mask, iterations=3) if mask.any() else np.ones_like(mask)
        per_image.append(_texture_statistics(image, valid))
    out = {k: float(np.mean([s[k] for s in per_image])) for k in per_image[0]}
    if not masks.any():
        return out
    areas, fractions = [], []
    for mask in masks[masks.any(axis=(1, 2))]:
        labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
        areas.append(np.bincount(labels.ravel())[1:])
        fractions.append(mask.mean())
    areas = np.concatenate(areas)
    out["defect_area_q10"], out["defect_area_median"], out["defect_area_q90"] = (
        float(q) for q in np.quantile(areas, [0.1, 0.5, 0.9]))
    out["defect_fraction"] = float(np.median(fractions))
    ring = np.stack([ndimage.binary_dilation(m, iterations=4) & ~m for m in masks])
    mean = ndimage.uniform_filter(images, size=(1, 5, 5))
    local_std = np.sqrt(np.clip(ndimage.uniform_filter(images**2, size=(1, 5, 5)) - mean**2, 0, None))
    out["defect_intensity"] = float(images[masks].mean())
    out["defect_ring_intensity"] = float(images[ring].mean())
    out["defect_local_std"] = float(local_std[masks].mean())
    out["normal_local_std"] = float(local_std[~masks].mean())
    out["intensity_pixel_auroc"] = float(pixel_roc_auc(images, masks))
    return out


def _tiles(array, size):
    """Non-overlapping ``size x size`` tiles of (n, H, W) images, row by row."""
    n, h, w = array.shape
    return np.stack([array[i, r:r + size, c:c + size] for i in range(n)
                     for r in range(0, h - size + 1, size) for c in range(0, w - size + 1, size)])


def measure_nanotwice_statistics(root=None, scale=COURSE_SCALE, tile=128):
    """:func:`sem_statistics` of the real NanoTWICE images, as stored in
    :data:`NANOTWICE_STATISTICS`.

    All 45 images are loaded at ``scale`` and cut into non-overlapping ``tile x tile``
    tiles (8 per image at the course's scale), the size of the course's synthetic
    images, because some statistics depend on the image size (the coarsest spectral
    band, the orientation spread of a few fibres). Texture statistics come from the
    defect-free pixels of every tile, defect statistics from the tiles' masks.

    Parameters
    ----------
    root : str or Path, optional
        The NanoTWICE folder; defaults to :func:`nanotwice_root`.
    scale : float, default=COURSE_SCALE
    tile : int or None, default=128
        Tile side in pixels; None measures the whole images.

    Returns
    -------
    dict of str -> float, rounded to 4 significant digits.
    """
    root = nanotwice_root() if root is None else root
    if root is None:
        raise FileNotFoundError(
            f"no NanoTWICE folder: pass root= or set {NANOTWICE_ENV}; {_LAYOUT}")
    ds = load_nanotwice(root, scale=scale)
    images, masks = ds.images, ds.masks
    if tile is not None:
        tile = _check_int("tile", tile, 16, min(images.shape[1:]))
        images, masks = _tiles(images, tile), _tiles(masks, tile)
    return {k: float(f"{v:.4g}") for k, v in sem_statistics(images, masks).items()}


#: :func:`sem_statistics` of the real NanoTWICE images at :data:`COURSE_SCALE`, on
#: 128 x 128 tiles (8 per image, 360 tiles), measured with
#: ``measure_nanotwice_statistics(root)`` on the authors' 45 files (numpy 2.x,
#: scikit-image 0.26). Stored here because the images are not part of the project:
#: ``tests/test_nanotwice.py`` holds :func:`~adcourse.data.make_nanofibers` to these
#: values, and measures them again when ``ADCOURSE_NANOTWICE`` names the folder.
NANOTWICE_STATISTICS = {
    "intensity_q05": 0.01744,
    "intensity_q25": 0.1708,
    "intensity_median": 0.5174,
    "intensity_q75": 0.8421,
    "intensity_q95": 0.97,
    "background": 0.1612,
    "fibre_level": 0.8367,
    "fibre_cover": 0.5139,
    "fibre_width": 4.042,
    "orientation_spread": 0.7521,
    "coherence": 0.7039,
    "noise": 0.04374,
    "power_band_0": 0.03669,
    "power_band_1": 0.1134,
    "power_band_2": 0.2433,
    "power_band_3": 0.3505,
    "power_band_4": 0.2027,
    "power_band_5": 0.05347,
    "defect_area_q10": 21.0,
    "defect_area_median": 90.0,
    "defect_area_q90": 393.8,
    "defect_fraction": 0.02032,
    "defect_intensity": 0.799,
    "defect_ring_intensity": 0.5266,
    "defect_local_std": 0.1407,
    "normal_local_std": 0.2037,
    "intensity_pixel_auroc": 0.7449,
}
