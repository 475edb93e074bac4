"""Real textures shipped with scikit-image (brick, grass, gravel) with synthetic defects."""

from __future__ import annotations

import numpy as np

from adcourse.data._common import ImageSet, _check_int, _check_real, _rng

__all__ = ["make_textures", "TEXTURES", "TEXTURE_DEFECTS"]


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


