"""Tests of patch extraction, reassembly and the patch-wise image detector."""

import numpy as np
import pytest
from scipy import ndimage
from sklearn.base import clone

from adcourse.data import make_nanofibers
from adcourse.decision import Threshold
from adcourse.vectors.density import GaussianDetector
from adcourse.images.patches import (
    PatchDetector,
    extract_patches,
    patch_grid_shape,
    patch_scores_to_map,
    patches_as_vectors,
    patches_to_image,
)
from adcourse.images.subspace import PCADetector


@pytest.fixture(scope="module")
def rng_images():
    return np.random.default_rng(0).random((3, 17, 22))


# --- extraction ----------------------------------------------------------------------------


@pytest.mark.parametrize("size,stride", [(3, 1), (4, 1), (5, 2), (5, 3), ((3, 6), (2, 4)), (7, 10)])
def test_extract_patches_values_and_grid(rng_images, size, stride):
    p = extract_patches(rng_images, size, stride)
    h, w = (size, size) if isinstance(size, int) else size
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    n_h, n_w = (17 - h) // sy + 1, (22 - w) // sx + 1
    assert p.shape == (3, n_h, n_w, h, w)
    assert patch_grid_shape(rng_images.shape, size, stride) == (n_h, n_w)
    for k, i, j in [(0, 0, 0), (2, n_h - 1, n_w - 1), (1, n_h // 2, n_w - 1)]:
        np.testing.assert_array_equal(p[k, i, j], rng_images[k, i * sy:i * sy + h, j * sx:j * sx + w])


def test_patches_are_views_not_copies(rng_images):
    p = extract_patches(rng_images, 5, 2)
    assert np.shares_memory(p, rng_images)
    assert not p.flags.writeable  # a view of overlapping windows must not be written to
    v = patches_as_vectors(p)
    assert v.shape == (p.shape[0] * p.shape[1] * p.shape[2], 25)
    assert not np.shares_memory(v, rng_images)  # documented: the vectors are a copy
    np.testing.assert_array_equal(v[0], rng_images[0, :5, :5].ravel())


def test_colour_patches(rng_images):
    colour = np.stack([rng_images, 1 - rng_images, rng_images**2], axis=1)  # (3, 3, 17, 22)
    p = extract_patches(colour, 4, 3)
    assert p.shape == (3, 5, 7, 3, 4, 4)
    assert np.shares_memory(p, colour)
    np.testing.assert_array_equal(p[1, 2, 3], colour[1, :, 6:10, 9:13])
    v = patches_as_vectors(p)
    assert v.shape == (3 * 5 * 7, 48)
    np.testing.assert_array_equal(v[0], colour[0, :, :4, :4].ravel())  # channel first
    np.testing.assert_allclose(patches_to_image(p, colour.shape, 3)[:, :, :16, :22], colour[:, :, :16, :22])


def test_bad_sizes_are_rejected(rng_images):
    with pytest.raises(ValueError, match=r"17x22 pixels are smaller than the patch size 18x18"):
        extract_patches(rng_images, 18)
    with pytest.raises(ValueError, match="smaller than the patch size 5x23"):
        extract_patches(rng_images, (5, 23))
    with pytest.raises(ValueError, match="size must be >= 1"):
        extract_patches(rng_images, 0)
    with pytest.raises(TypeError, match="stride"):
        extract_patches(rng_images, 3, stride=1.5)
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        extract_patches(rng_images[0], 3)


# --- reassembly ----------------------------------------------------------------------------


@pytest.mark.parametrize("size,stride", [(5, 1), (4, 1), (3, 3), (5, 2), (5, 4), (3, 5), ((3, 5), (2, 3))])
def test_patches_to_image_round_trip_is_exact(rng_images, size, stride):
    p = extract_patches(rng_images, size, stride)
    back = patches_to_image(p, rng_images.shape, stride)
    h, w = (size, size) if isinstance(size, int) else size
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    n_h, n_w = p.shape[1:3]
    covered = np.zeros(rng_images.shape[1:], bool)
    for i in range(n_h):
        for j in range(n_w):
            covered[i * sy:i * sy + h, j * sx:j * sx + w] = True
    np.testing.assert_allclose(back[:, covered], rng_images[:, covered], rtol=0, atol=1e-12)
    if not covered.all():  # uncovered pixels copy their nearest covered pixel
        assert np.isfinite(back).all()


@pytest.mark.parametrize("mode", ["average", "centre"])
@pytest.mark.parametrize("size,stride", [(5, 1), (4, 2), (5, 3), (3, 5)])
def test_constant_patch_scores_give_a_constant_map(size, stride, mode):
    grid = patch_grid_shape((17, 22), size, stride)
    m = patch_scores_to_map(np.full((2,) + grid, 3.25), (17, 22), size, stride, mode)
    assert m.shape == (2, 17, 22)
    np.testing.assert_allclose(m, 3.25, rtol=1e-13)


def test_average_of_patch_means_is_a_box_filter(rng_images):
    size = 5
    means = extract_patches(rng_images, size).mean(axis=(-2, -1))
    m = patch_scores_to_map(means, rng_images.shape, size, 1, "average")
    # in the interior a pixel is covered by all 25 patches, whose means are the 5x5 box
    # filter centred 2 pixels away at most: their average is the box filter applied twice
    once = ndimage.uniform_filter(rng_images, (1, size, size))
    box = ndimage.uniform_filter(once, (1, size, size))
    r = size - 1
    np.testing.assert_allclose(m[:, r:-r, r:-r], box[:, r:-r, r:-r], rtol=1e-12)
    # anywhere: the direct average over the covering patches
    y, x = 1, 20
    covering = [means[0, i, j] for i in range(means.shape[1]) for j in range(means.shape[2])
                if i <= y < i + size and j <= x < j + size]
    np.testing.assert_allclose(m[0, y, x], np.mean(covering))


def test_centre_mode_puts_each_score_on_its_centre():
    scores = np.arange(4 * 6, dtype=float).reshape(1, 4, 6)
    m = patch_scores_to_map(scores, (12, 16), 5, 2, "centre")  # grid (4, 6)
    for i in range(4):
        for j in range(6):
            assert m[0, 2 * i + 2, 2 * j + 2] == scores[0, i, j]
    # borders and the uncovered last rows/columns copy the nearest centre
    assert m[0, 0, 0] == scores[0, 0, 0]
    assert m[0, 11, 15] == scores[0, 3, 5]


def test_average_mode_fills_uncovered_pixels_with_the_nearest():
    # 11 rows, patches of 4 with stride 3: rows 0..9 covered, row 10 not
    scores = np.random.default_rng(1).random((1, 3, 3))
    m = patch_scores_to_map(scores, (11, 11), 4, 3, "average")
    np.testing.assert_array_equal(m[0, 10], m[0, 9])
    np.testing.assert_array_equal(m[0, :, 10], m[0, :, 9])
    # a pixel covered by patches (0, 0) and (1, 0) only: row 3 belongs to both, column 0 to j=0
    np.testing.assert_allclose(m[0, 3, 0], scores[0, :2, 0].mean())


def test_patch_scores_to_map_bad_input():
    with pytest.raises(ValueError, match=r"scores must be \(n, 13, 13\)"):
        patch_scores_to_map(np.zeros((1, 12, 13)), (17, 17), 5)
    with pytest.raises(ValueError, match="mode"):
        patch_scores_to_map(np.zeros((1, 13, 13)), (17, 17), 5, mode="max")


# --- the detector --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sets():
    train = make_nanofibers(n_images=4, size=48, anomaly_rate=0.0, random_state=1)
    test = make_nanofibers(n_images=4, size=48, anomaly_rate=0.5, random_state=2)
    return train, test


def test_patch_detector_protocol(sets):
    train, test = sets
    det = PatchDetector(GaussianDetector(), patch_size=5, max_train_patches=3000).fit(train.images)
    assert det.n_train_patches_ == 3000
    assert det.detector_ is not det.detector
    maps = det.anomaly_map(test.images)
    assert maps.shape == test.images.shape
    np.testing.assert_array_equal(det.anomaly_score(test.images), maps.max(axis=(1, 2)))
    np.testing.assert_array_equal(clone(det).fit(train.images).anomaly_map(test.images), maps)
    # another image size is fine, smaller than a patch is not
    assert det.anomaly_map(test.images[:1, :20, :30]).shape == (1, 20, 30)
    with pytest.raises(ValueError, match="smaller than the patch size"):
        det.anomaly_map(test.images[:1, :4, :30])


def test_patch_detector_equals_scoring_patches_by_hand(sets):
    train, test = sets
    det = PatchDetector(PCADetector(4), patch_size=5, stride=2, max_train_patches=None).fit(train.images)
    vectors = patches_as_vectors(extract_patches(train.images, 5))
    assert det.n_train_patches_ == len(vectors)
    ref = PCADetector(4).fit(vectors)
    p = extract_patches(test.images, 5, 2)
    expected = ref.anomaly_score(patches_as_vectors(p)).reshape(p.shape[:3])
    np.testing.assert_allclose(det.patch_scores(test.images), expected, rtol=1e-9)
    np.testing.assert_allclose(
        det.anomaly_map(test.images), patch_scores_to_map(expected, test.images.shape, 5, 2), rtol=1e-9
    )


def test_patch_detector_scores_in_bounded_chunks(sets, monkeypatch):
    from adcourse.images import patches

    train, test = sets
    det = PatchDetector(PCADetector(4), patch_size=5).fit(train.images)
    full = det.patch_scores(test.images)
    monkeypatch.setattr(patches, "_CHUNK_FLOATS", 25 * 44 * 3)  # 3 rows of patches per chunk
    np.testing.assert_array_equal(det.patch_scores(test.images), full)


def test_patch_detector_colour(sets):
    train, _ = sets
    colour = np.stack([train.images, train.images[:, ::-1]], axis=1)
    det = PatchDetector(PCADetector(5), patch_size=3, max_train_patches=2000).fit(colour)
    assert det.detector_.n_features_in_ == 18
    assert det.anomaly_map(colour[:2]).shape == (2, 48, 48)


def test_patch_detector_bad_parameters(sets):
    train, _ = sets
    with pytest.raises(ValueError, match="mode"):
        PatchDetector(GaussianDetector(), mode="max").fit(train.images)
    with pytest.raises(ValueError, match="max_train_patches"):
        PatchDetector(GaussianDetector(), max_train_patches=0).fit(train.images)
    with pytest.raises(TypeError, match="detector"):
        PatchDetector("gaussian").fit(train.images)
    with pytest.raises(ValueError, match="patch_size"):
        PatchDetector(GaussianDetector(), patch_size=0).fit(train.images)


def test_patch_detector_two_sided_monitors_the_log_statistic(sets):
    """two_sided=True: the detector is fitted on the patches of half the images (S), a Gaussian on
    log t over the patches of the other half (V); the patch score is |log t - m_V| / sd_V."""
    train, test = sets
    det = PatchDetector(PCADetector(4), patch_size=5, max_train_patches=None, two_sided=True,
                        random_state=3).fit(train.images)
    order = np.random.default_rng(3).permutation(4)
    S, V = train.images[order[2:]], train.images[order[:2]]
    ref = PCADetector(4).fit(patches_as_vectors(extract_patches(S, 5)))
    assert det.n_train_patches_ == len(patches_as_vectors(extract_patches(S, 5)))
    log_v = np.log(ref.anomaly_score(patches_as_vectors(extract_patches(V, 5))) + 1e-12)
    assert det.log_score_mean_ == pytest.approx(log_v.mean(), rel=1e-9)
    assert det.log_score_std_ == pytest.approx(log_v.std(), rel=1e-9)
    p = extract_patches(test.images, 5)
    t = ref.anomaly_score(patches_as_vectors(p)).reshape(p.shape[:3])
    expected = np.abs(np.log(t + 1e-12) - log_v.mean()) / log_v.std()
    np.testing.assert_allclose(det.patch_scores(test.images), expected, rtol=1e-7)
    # a patch far too simple for the model (a flat one: residual 0) is now anomalous, not normal
    flat = np.full((1, 5, 5), float(train.images.mean()))
    assert det.patch_scores(flat)[0, 0, 0] > expected.max()
    with pytest.raises(ValueError, match="two_sided=True needs at least 2 training images"):
        PatchDetector(PCADetector(4), patch_size=5, two_sided=True).fit(train.images[:1])
    with pytest.raises(TypeError, match="two_sided must be a bool"):
        PatchDetector(PCADetector(4), patch_size=5, two_sided="yes").fit(train.images)


def test_validation_threshold_controls_the_pixel_fpr():
    """The lecture's recipe: S to fit, a disjoint normal V for gamma, fresh normal data to check."""
    S = make_nanofibers(n_images=4, size=64, anomaly_rate=0.0, random_state=11)
    V = make_nanofibers(n_images=32, size=48, anomaly_rate=0.0, random_state=12)
    fresh = make_nanofibers(n_images=32, size=48, anomaly_rate=0.0, random_state=13)
    det = PatchDetector(PCADetector(10), patch_size=7).fit(S.images)
    gamma = Threshold.from_fpr(det.anomaly_map(V.images).ravel(), 0.01)
    fpr = gamma.predict(det.anomaly_map(fresh.images)).mean()
    # pixels of a map are strongly correlated and normal images differ (fibre density), so
    # the pixel FPR scatters around 1%: 0.3%-2.6% measured over 6 seeds of this set-up
    assert 0.002 < fpr < 0.04, fpr
