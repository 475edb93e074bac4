"""adcourse.protocol: crops, tiling, the texture protocol, choosing settings on validation images."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from adcourse import metrics
from adcourse.base import BaseImageDetector
from adcourse.compare import Table
from adcourse.data import ImageSet
from adcourse.protocol import (
    TextureResult,
    RestartSelection,
    choose_setting,
    evaluate_texture,
    random_crops,
    select_restart,
    texture_table,
)


class Brightness(BaseImageDetector):
    """Score = |grey level - mean of the training pixels| smoothed over ``width`` pixels:
    a location-free detector that accepts any image size."""

    def __init__(self, width=1):
        self.width = width

    def _fit(self, images):
        self.mean_ = float(images.mean())
        self.n_fit_images_ = len(images)

    def _map(self, images):
        from scipy import ndimage

        return ndimage.uniform_filter(np.abs(images - self.mean_), size=(1, self.width, self.width))


class FixedSize(Brightness):
    """The same score, but refusing any size other than the training size (per-location)."""

    def _map(self, images):
        if images.shape[1:] != tuple(self.image_shape_):
            raise ValueError("images must have the shape of the training images")
        self.calls_ = getattr(self, "calls_", 0) + 1
        return super()._map(images)


def _texture_set(seed=0, n=3, shape=(40, 56)):
    """Noise around 0.5 with bright square defects of 6x6 pixels."""
    rng = np.random.default_rng(seed)
    images = np.clip(rng.normal(0.5, 0.05, (n,) + shape), 0, 1)
    masks = np.zeros(images.shape, dtype=bool)
    for i in range(n):
        r, c = rng.integers(0, shape[0] - 6), rng.integers(0, shape[1] - 6)
        masks[i, r:r + 6, c:c + 6] = True
    images[masks] = 0.9
    return ImageSet(images, masks)


def test_random_crops_come_from_the_images():
    images = np.random.default_rng(0).uniform(size=(2, 30, 50))
    crops = random_crops(images, n_crops=20, crop_size=8, random_state=3)
    assert crops.shape == (20, 8, 8)
    for crop in crops:  # every crop is a window of one of the images
        found = any(np.array_equal(im[r:r + 8, c:c + 8], crop)
                    for im in images for r in range(23) for c in range(43))
        assert found
    np.testing.assert_array_equal(crops, random_crops(images, 20, 8, random_state=3))
    assert not np.array_equal(crops, random_crops(images, 20, 8, random_state=4))
    colour = random_crops(np.zeros((1, 3, 20, 20)), 4, 10)
    assert colour.shape == (4, 3, 10, 10)


def test_random_crops_bad_arguments():
    with pytest.raises(ValueError, match="crop_size"):
        random_crops(np.zeros((1, 20, 30)), 4, crop_size=21)
    with pytest.raises(ValueError, match="n_crops"):
        random_crops(np.zeros((1, 20, 30)), 0, 8)
    with pytest.raises(ValueError, match="images"):
        random_crops(np.full((1, 20, 30), 2.0), 4, 8)


def test_evaluate_texture_fits_on_crops_and_measures_all_pixels():
    fit_images = _texture_set(1).images * 0 + 0.5
    test = _texture_set(2)
    det = Brightness()
    result = evaluate_texture(det, test, fit_images, n_crops=7, crop_size=16, keep_maps=True)
    assert isinstance(result, TextureResult)
    assert det.n_fit_images_ == 7 and det.image_shape_ == (16, 16)
    assert result.maps.shape == test.images.shape  # whole images, any size
    expected = roc_auc_score(test.masks.ravel(), result.maps.ravel())
    assert result.pixel_auroc == pytest.approx(expected, abs=1e-12)
    assert result.pro == pytest.approx(metrics.pro_auc(result.maps, test.masks))
    assert result.pixel_auroc > 0.95 and result.fit_s >= 0 and result.ms_per_image > 0
    # already fitted: scored as it is
    again = evaluate_texture(det, test)
    assert again.fit_s is None and again.pixel_auroc == result.pixel_auroc and again.maps is None


def test_evaluate_texture_tiles_per_location_detectors():
    fit_images, test = _texture_set(1).images, _texture_set(2)
    with pytest.raises(ValueError):
        evaluate_texture(FixedSize(), test, fit_images, n_crops=4, crop_size=16)
    fixed = FixedSize()
    tiled = evaluate_texture(fixed, test, fit_images, n_crops=4, crop_size=16, tiled=True)
    # 40 x 56 with tiles of 16: rows 0, 16, 24 and columns 0, 16, 32, 40
    assert fixed.calls_ == 3 * 4
    whole = evaluate_texture(Brightness(), test, fit_images, n_crops=4, crop_size=16)
    assert tiled.pixel_auroc == pytest.approx(whole.pixel_auroc)


def test_evaluate_texture_bad_test_set():
    with pytest.raises(TypeError, match="ImageSet"):
        evaluate_texture(Brightness(), np.zeros((2, 16, 16)), np.zeros((1, 16, 16)))


def _spied(det, seen):
    """``det`` whose anomaly_map records the images it is given in ``seen``."""
    original = det.anomaly_map

    def spy(images):
        seen.append(images)
        return original(images)

    det.anomaly_map = spy
    return det


def test_choose_setting_uses_the_validation_images_only():
    fit_images = _texture_set(1).images
    validation = _texture_set(3)
    seen = []

    def make(width):
        return _spied(Brightness(width), seen)

    best, scores = choose_setting(make, [1, 3, 25], fit_images, validation, n_crops=4, crop_size=16)
    assert set(scores) == {1, 3, 25}
    assert best == max(scores, key=lambda v: scores[v].pixel_auroc)
    assert scores[25].pixel_auroc < scores[best].pixel_auroc  # a 25-px box blurs 6-px defects
    assert all(images is validation.images for images in seen)
    with pytest.raises(ValueError, match="measure"):
        choose_setting(make, [1], fit_images, validation, measure="accuracy")
    with pytest.raises(ValueError, match="candidates"):
        choose_setting(make, [], fit_images, validation)


def test_texture_table():
    fit_images, test = _texture_set(1).images, _texture_set(2)
    pre = Brightness().fit(random_crops(fit_images, 4, 16))

    def broken():
        raise RuntimeError("no model")

    table = texture_table(
        {"brightness": Brightness, "fixed": FixedSize, "prefitted": Brightness, "broken": broken},
        fit_images, test, tiled={"fixed"}, fitted={"prefitted": (pre, 1.5)},
        n_crops=4, crop_size=16,
    )
    assert isinstance(table, Table) and table.measures == ("pixel_auroc", "pro")
    assert table.methods == ["brightness", "fixed", "prefitted", "broken"]
    auc = table.value("brightness", "real SEM", "pixel_auroc")
    assert table.value("fixed", "real SEM", "pixel_auroc") == pytest.approx(auc)
    assert table.value("prefitted", "real SEM", "fit_s") == 1.5
    row = next(r for r in table.rows if r["method"] == "broken")
    assert "RuntimeError: no model" in row["error"]
    assert "error" in str(table)
    with pytest.raises(ValueError, match="not in methods"):
        texture_table({"a": Brightness}, fit_images, test, tiled={"b"})


class Restart(Brightness):
    """A fake detector whose quality depends on its random state: ``width`` = 1 + 12 * state
    (state 0 sees the 6-px defects sharply, state 2 blurs them over 25 px)."""

    def __init__(self, random_state=0):
        self.random_state = random_state
        super().__init__(width=1 + 12 * random_state)


def test_tune_runs_after_the_fit_and_before_the_test_images():
    fit_images, validation, test = _texture_set(1).images, _texture_set(3), _texture_set(2)
    calls = []

    def tune(det):   # a setting that needs no refit, set from the validation images
        calls.append(hasattr(det, "mean_"))
        det.set_params(width=25 if validation.masks.any() else 1)   # 25 px blurs the 6-px defects

    r = evaluate_texture(Brightness(1), test, fit_images, n_crops=4, crop_size=16, tune=tune)
    assert calls == [True]                        # once, on the fitted detector
    by_hand = Brightness(25).fit(random_crops(fit_images, 4, 16, 0))
    assert r.pixel_auroc == evaluate_texture(by_hand, test).pixel_auroc   # the test saw the tuned width
    assert r.fit_s > 0
    # the tuned width made a difference that the test images show
    assert r.pixel_auroc != evaluate_texture(Brightness(1).fit(random_crops(fit_images, 4, 16, 0)), test).pixel_auroc
    # an already fitted detector is tuned too: its fit time is then the tuning's (None without a tune)
    assert evaluate_texture(by_hand, test).fit_s is None
    assert isinstance(evaluate_texture(by_hand, test, tune=lambda det: None).fit_s, float)
    # select_restart tunes every restart before measuring it on validation
    seen = []
    select_restart(lambda s: Restart(s), [0, 1], fit_images, validation, n_crops=4, crop_size=16,
                   tune=lambda det: seen.append(det.random_state))
    assert seen == [0, 1]
    with pytest.raises(TypeError, match="tune must be callable"):
        evaluate_texture(Brightness(1), test, fit_images, n_crops=4, crop_size=16, tune=3)


def test_select_restart_keeps_the_best_on_validation_only():
    fit_images, validation = _texture_set(1).images, _texture_set(3)
    seen = []

    def make(state):
        return _spied(Restart(state), seen)

    sel = select_restart(make, [2, 0, 1], fit_images, validation, n_crops=4, crop_size=16)
    assert isinstance(sel, RestartSelection)
    assert set(sel.scores) == {2, 0, 1}
    aucs = {k: r.pixel_auroc for k, r in sel.scores.items()}
    assert aucs[0] > aucs[1] > aucs[2]  # the fixture separates the restarts
    assert sel.random_state == 0 and sel.detector.random_state == 0
    assert sel.detector.n_fit_images_ == 4  # fitted, on the protocol's crops
    assert sel.fit_s >= sum(r.fit_s for r in sel.scores.values())  # all the restarts count
    assert len(seen) == 3 and all(images is validation.images for images in seen)
    # the winner is fitted: scored on other images as it is
    assert evaluate_texture(sel.detector, _texture_set(2)).fit_s is None
    # measure="pro" and ties: the first restart wins
    same = select_restart(lambda s: Brightness(1), [5, 7], fit_images, validation, measure="pro",
                          n_crops=4, crop_size=16)
    assert same.random_state == 5
    with pytest.raises(ValueError, match="empty"):
        select_restart(make, [], fit_images, validation)
    with pytest.raises(ValueError, match="distinct"):
        select_restart(make, [1, 1], fit_images, validation)
    with pytest.raises(ValueError, match="measure"):
        select_restart(make, [0], fit_images, validation, measure="accuracy")
