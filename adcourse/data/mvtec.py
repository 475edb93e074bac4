"""MVTec AD (Bergmann et al., 2019) from a local copy: for users who have downloaded it.

The course never downloads it.
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path

import numpy as np

from adcourse.data._common import ImageSet

__all__ = ["load_mvtec", "mvtec_defect_types", "MVTEC_URL"]

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

