"""Tests of adcourse.images.sparse: BPDN by ADMM, dictionary learning, the sparse-coding detector."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.linear_model import Lasso

from adcourse import metrics
from adcourse.data import make_nanofibers
from adcourse.vectors.density import GaussianDetector
from adcourse.images.patches import PatchDetector, extract_patches
from adcourse.images.sparse import (
    SparseCodingDetector,
    bpdn_admm,
    bpdn_objective,
    learn_dictionary,
    soft_threshold,
)


def _patch_columns(size, n_images=2, image_size=48, random_state=3):
    """Mean-subtracted patches of normal nanofibre images, as columns (d, N)."""
    ims = make_nanofibers(n_images=n_images, size=image_size, anomaly_rate=0.0,
                          random_state=random_state).images
    P = extract_patches(ims, size).reshape(-1, size * size)
    P = P - P.mean(axis=1, keepdims=True)
    return np.ascontiguousarray(P.T)


@pytest.fixture(scope="module")
def problem():
    """A BPDN problem on real patches: a dictionary of 40 patches, 12 other patches."""
    S_all = _patch_columns(7)
    rng = np.random.default_rng(0)
    idx = rng.permutation(S_all.shape[1])
    D = S_all[:, idx[:40]]
    D = D / np.linalg.norm(D, axis=0)
    return D, S_all[:, idx[40:52]], 0.05


# --------------------------------------------------------------------------- #
# soft-thresholding and ADMM
# --------------------------------------------------------------------------- #
def test_soft_threshold_hand_cases():
    np.testing.assert_array_equal(
        soft_threshold([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], 1.0),
        [-2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0],
    )
    np.testing.assert_array_equal(soft_threshold([2.5, -2.5], 0.0), [2.5, -2.5])
    # per-element thresholds broadcast; integers are promoted to float
    np.testing.assert_array_equal(soft_threshold(np.array([3, 3]), [1, 4]), [2.0, 0.0])
    with pytest.raises(ValueError, match="t must be >= 0"):
        soft_threshold([1.0], -1.0)


def test_admm_matches_sklearn_lasso(problem):
    D, S, lam = problem
    d = D.shape[0]
    A, info = bpdn_admm(D, S, lam, tol_abs=1e-10, tol_rel=1e-9, max_iter=20000, return_info=True)
    assert info.converged
    ours = bpdn_objective(D, S, A, lam)
    # Lasso minimises 1/(2 n) ||y - X w||^2 + a ||w||_1 with n = d rows: a = lam / d
    W = np.column_stack([
        Lasso(alpha=lam / d, fit_intercept=False, tol=1e-12, max_iter=100000).fit(D, s).coef_
        for s in S.T
    ])
    theirs = bpdn_objective(D, S, W, lam)
    np.testing.assert_array_less(np.abs(ours - theirs) / theirs, 1e-4)
    np.testing.assert_allclose(A, W, atol=1e-4)


def test_admm_kkt_conditions(problem):
    D, S, lam = problem
    A = bpdn_admm(D, S, lam, tol_abs=1e-10, tol_rel=1e-9, max_iter=20000)
    g = D.T @ (S - D @ A)  # minus the gradient of the data term
    support = A != 0
    assert support.any() and (~support).any()
    # on the support: D^T (s - D a) = lam sign(a); off it: |D^T (s - D a)| <= lam
    np.testing.assert_allclose(g[support], lam * np.sign(A[support]), atol=1e-6)
    assert np.all(np.abs(g[~support]) <= lam + 1e-6)


def test_admm_batched_equals_one_at_a_time(problem):
    D, S, lam = problem
    kwargs = dict(tol_abs=1e-10, tol_rel=1e-9, max_iter=20000)
    together = bpdn_admm(D, S, lam, **kwargs)
    alone = np.column_stack([bpdn_admm(D, s, lam, **kwargs) for s in S.T])
    np.testing.assert_allclose(together, alone, atol=1e-7)
    # blocks of columns do not change the result either
    np.testing.assert_allclose(bpdn_admm(D, S, lam, block_size=5, **kwargs), together, atol=1e-7)


def test_admm_fat_dictionary_and_options(problem):
    D, S, lam = problem
    kwargs = dict(tol_abs=1e-10, tol_rel=1e-9, max_iter=20000)
    ref, ref_info = bpdn_admm(D, S, lam, return_info=True, **kwargs)
    # a fat dictionary (k > d) takes the matrix-inversion-lemma branch
    S_all = _patch_columns(5)
    D_fat = S_all[:, :40] / np.linalg.norm(S_all[:, :40], axis=0)
    assert D_fat.shape[1] > D_fat.shape[0]
    A_fat = bpdn_admm(D_fat, S_all[:, 40:50], lam, **kwargs)
    W = np.column_stack([
        Lasso(alpha=lam / 25, fit_intercept=False, tol=1e-12, max_iter=100000).fit(D_fat, s).coef_
        for s in S_all[:, 40:50].T
    ])
    np.testing.assert_allclose(
        bpdn_objective(D_fat, S_all[:, 40:50], A_fat, lam),
        bpdn_objective(D_fat, S_all[:, 40:50], W, lam), rtol=1e-4,
    )
    # plain iteration, other rho, warm start and float32 reach the same minimiser
    np.testing.assert_allclose(bpdn_admm(D, S, lam, relaxation=1.0, **kwargs), ref, atol=1e-6)
    np.testing.assert_allclose(bpdn_admm(D, S, lam, rho=1.0, **kwargs), ref, atol=1e-6)
    # a warm start at the solution (codes and dual variable) stops at once
    A, info = bpdn_admm(D, S, lam, init=(ref, ref_info.u), return_info=True, **kwargs)
    assert info.n_iter <= 2
    np.testing.assert_allclose(A, ref, atol=1e-9)
    A32 = bpdn_admm(D, S, lam, dtype=np.float32, tol_rel=1e-4)
    assert A32.dtype == np.float32
    np.testing.assert_allclose(bpdn_objective(D, S, A32, lam), bpdn_objective(D, S, ref, lam),
                               rtol=1e-4)


def test_admm_one_patch_identity_dictionary():
    # with D = I, BPDN is soft-thresholding of s
    s = np.array([2.0, 0.5, -1.5, -0.2])
    np.testing.assert_allclose(bpdn_admm(np.eye(4), s, 1.0, tol_abs=1e-12, tol_rel=1e-10),
                               soft_threshold(s, 1.0), atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(S=np.zeros((5, 3))), ValueError, "S must have d = 4 rows"),
        (dict(lam=0.0), ValueError, "lam must be > 0"),
        (dict(lam="a"), TypeError, "lam must be a number"),
        (dict(rho=-1.0), ValueError, "rho must be > 0"),
        (dict(relaxation=2.5), ValueError, "relaxation"),
        (dict(dtype=np.int32), ValueError, "dtype"),
        (dict(init=(np.zeros((2, 3)), None)), ValueError, "init"),
        (dict(S=np.full((4, 3), np.nan)), ValueError, "NaN"),
    ],
)
def test_admm_rejects_bad_input(kwargs, error, match):
    args = dict(D=np.eye(4), S=np.ones((4, 3)), lam=0.1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        bpdn_admm(**args)


# --------------------------------------------------------------------------- #
# dictionary learning
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def training_patches():
    S_all = _patch_columns(7)
    idx = np.random.default_rng(1).permutation(S_all.shape[1])
    return S_all[:, idx[:1000]], S_all[:, idx[1000:2000]]


def test_dictionary_learning_objective_decreases(training_patches):
    S, _ = training_patches
    result = learn_dictionary(S, 16, 0.05, n_iter=8, random_state=0)
    obj = np.array(result.objective)
    assert len(obj) == 9
    assert np.all(np.diff(obj) <= 1e-12 * obj[0])  # non-increasing (exactly, by construction)
    assert obj[-1] < 0.9 * obj[0]  # and it learns something
    np.testing.assert_allclose(np.linalg.norm(result.dictionary, axis=0), 1.0, atol=1e-12)
    # the reported objective is that of the returned (D, A)
    np.testing.assert_allclose(
        bpdn_objective(result.dictionary, S, result.codes, 0.05).mean(), obj[-1], rtol=1e-12
    )
    # determinism with the seed
    again = learn_dictionary(S, 16, 0.05, n_iter=8, random_state=0)
    np.testing.assert_array_equal(again.dictionary, result.dictionary)
    other = learn_dictionary(S, 16, 0.05, n_iter=2, random_state=1)
    assert not np.allclose(other.dictionary, result.dictionary[:, :16])


def test_dictionary_learning_close_to_sklearn(training_patches):
    S, held_out = training_patches
    lam = 0.05

    def held_out_objective(D):
        A = bpdn_admm(D, held_out, lam, tol_rel=1e-5, tol_abs=1e-8, max_iter=2000)
        return bpdn_objective(D, held_out, A, lam).mean()

    ours = held_out_objective(learn_dictionary(S, 16, lam, n_iter=10, random_state=0).dictionary)
    sk = MiniBatchDictionaryLearning(
        n_components=16, alpha=lam, max_iter=10, batch_size=256, fit_algorithm="cd", random_state=0
    ).fit(S.T)
    theirs = held_out_objective(sk.components_.T)
    # measured: ours / theirs = 0.97 (ours is batch, sklearn's online); allow 10 %
    assert ours <= 1.1 * theirs


def test_dictionary_learning_rejects_bad_input(training_patches):
    S, _ = training_patches
    with pytest.raises(ValueError, match="n_atoms=5000 exceeds"):
        learn_dictionary(S, 5000, 0.05)
    with pytest.raises(ValueError, match="lam must be > 0"):
        learn_dictionary(S, 4, -1.0)


# --------------------------------------------------------------------------- #
# the detector
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def nanofibres():
    # on this seed (calibrated generator): SparseCodingDetector(9x9) pixel AUROC 0.71
    train = make_nanofibers(n_images=4, size=64, anomaly_rate=0.0, random_state=105)
    test = make_nanofibers(n_images=12, size=64, anomaly_rate=0.5, random_state=205)
    return train, test


@pytest.fixture(scope="module")
def fitted(nanofibres):
    train, _ = nanofibres
    det = SparseCodingDetector(patch_size=9, n_atoms=32, lam=0.05, n_train_patches=2000, n_iter=5)
    return det.fit(train.images)


def test_detector_beats_raw_patch_gaussian(nanofibres, fitted):
    _, test = nanofibres
    auc = metrics.pixel_roc_auc(fitted.anomaly_map(test.images), test.masks)
    baseline = max(
        metrics.pixel_roc_auc(
            PatchDetector(GaussianDetector(), patch_size=p).fit(nanofibres[0].images)
            .anomaly_map(test.images),
            test.masks,
        )
        for p in (5, 9)
    )
    assert auc >= baseline + 0.15, (auc, baseline)


def test_detector_features_and_protocol(nanofibres, fitted):
    train, test = nanofibres
    det = fitted
    feats = det.features(test.images)
    assert feats.shape == (12, 56, 56, 2)
    assert np.all(feats >= 0)
    assert det.dictionary_.shape == (81, 32)
    assert det.validation_features_.shape[1] == 2
    # anomalous patches (centre pixel in a defect) are smoother than the fibre network:
    # on the calibrated nanofibres, as on the real images, they are coded with a smaller
    # error and a smaller l1 norm (measured ratios 0.69 and 0.66): the density of the pair
    # flags them because it is two-sided
    centre = test.masks[:, 4:60, 4:60]
    err, l1 = feats[..., 0], feats[..., 1]
    assert err[centre].mean() < 0.85 * err[~centre].mean()
    assert l1[centre].mean() < 0.85 * l1[~centre].mean()
    maps = det.anomaly_map(test.images)
    assert maps.shape == test.images.shape
    np.testing.assert_array_equal(det.anomaly_score(test.images), maps.max(axis=(1, 2)))
    # the map is the density score of the features, averaged over covering patches
    from adcourse.images.patches import patch_scores_to_map

    scores = det.density_.anomaly_score(feats[:2].reshape(-1, 2)).reshape(2, 56, 56)
    np.testing.assert_allclose(maps[:2], patch_scores_to_map(scores, (64, 64), 9), rtol=1e-12)
    # deterministic and clone-able
    np.testing.assert_array_equal(clone(det).fit(train.images).anomaly_map(test.images[:2]), maps[:2])


def test_detector_one_image_stride_and_errors(nanofibres):
    train, test = nanofibres
    det = SparseCodingDetector(patch_size=7, n_atoms=8, lam=0.05, n_train_patches=300,
                               n_val_patches=300, n_iter=2, stride=3)
    det.fit(train.images[:1])  # one image: V and S are disjoint subsets of its patches
    assert det.features(test.images[:2]).shape == (2, 20, 20, 2)
    assert det.anomaly_map(test.images[:2]).shape == (2, 64, 64)
    with pytest.raises(ValueError, match="patch_size=80 exceeds"):
        SparseCodingDetector(patch_size=80).fit(train.images)
    with pytest.raises(ValueError, match="n_atoms=32 exceeds n_train_patches=10"):
        SparseCodingDetector(n_train_patches=10).fit(train.images)
    with pytest.raises(ValueError, match="validation_fraction"):
        SparseCodingDetector(validation_fraction=1.0).fit(train.images)


def test_detector_log_features_and_smoothing(nanofibres, fitted):
    """log_features fits the density on log(features + 1e-6); sigma smooths the map."""
    from adcourse.decision import smooth_maps
    from adcourse.images.patches import patch_scores_to_map

    train, test = nanofibres
    det = clone(fitted).set_params(log_features=True, sigma=2.0).fit(train.images)
    # same dictionary and validation features as without the options
    np.testing.assert_array_equal(det.dictionary_, fitted.dictionary_)
    np.testing.assert_array_equal(det.validation_features_, fitted.validation_features_)
    logs = np.log(det.validation_features_ + 1e-6)
    np.testing.assert_allclose(det.density_.mean_, logs.mean(axis=0), rtol=1e-10)
    feats = det.features(test.images[:2])
    scores = GaussianDetector().fit(logs).anomaly_score(np.log(feats.reshape(-1, 2) + 1e-6))
    expected = smooth_maps(patch_scores_to_map(scores.reshape(2, 56, 56), (64, 64), 9), 2.0)
    np.testing.assert_allclose(det.anomaly_map(test.images[:2]), expected, rtol=1e-9)
    with pytest.raises(ValueError, match="sigma must be a number >= 0"):
        SparseCodingDetector(sigma=-1.0).fit(train.images)
    with pytest.raises(TypeError, match="log_features must be a bool"):
        SparseCodingDetector(log_features="yes").fit(train.images)


def test_detector_indicators_add_the_patch_mean(nanofibres, fitted):
    """indicators=("error", "l1", "mean") adds each patch's mean intensity (before centring) as a
    third monitored feature; the log of log_features applies to the two energies only."""
    from adcourse.images.patches import extract_patches

    train, test = nanofibres
    det = clone(fitted).set_params(indicators=("error", "l1", "mean"), log_features=True).fit(train.images)
    np.testing.assert_array_equal(det.dictionary_, fitted.dictionary_)  # same dictionary
    assert det.validation_features_.shape == (fitted.validation_features_.shape[0], 3)
    np.testing.assert_array_equal(det.validation_features_[:, :2], fitted.validation_features_)
    feats = det.features(test.images[:2])
    np.testing.assert_array_equal(feats[..., :2], fitted.features(test.images[:2]))
    means = extract_patches(test.images[:2], 9, 1).mean(axis=(-2, -1))
    np.testing.assert_allclose(feats[..., 2], means, rtol=1e-5)
    monitored = np.c_[np.log(det.validation_features_[:, :2] + 1e-6), det.validation_features_[:, 2]]
    np.testing.assert_allclose(det.density_.mean_, monitored.mean(axis=0), rtol=1e-10)
    # the order of the names is the order of the columns; one indicator alone is allowed
    only_l1 = clone(fitted).set_params(indicators=("l1",)).fit(train.images)
    np.testing.assert_array_equal(only_l1.validation_features_[:, 0], fitted.validation_features_[:, 1])
    for bad in ("l1", (), ("error", "error"), ("error", "energy")):
        with pytest.raises(ValueError, match="indicators must be a non-empty tuple"):
            clone(fitted).set_params(indicators=bad).fit(train.images)


def test_detector_brightness_map(nanofibres, fitted):
    """brightness_weight=w adds w times the standardised local mean intensity (a one-sided cue) to
    the map of the standardised density scores, before the smoothing; 0 is the lecture's detector."""
    from scipy import ndimage

    from adcourse.decision import smooth_maps
    from adcourse.images.patches import patch_scores_to_map
    from adcourse.vectors.distance import KNNDetector

    train, test = nanofibres
    assert fitted.standardisation_ is None
    det = clone(fitted).set_params(brightness_weight=0.5, brightness_window=5, sigma=2.0).fit(train.images)
    np.testing.assert_array_equal(det.dictionary_, fitted.dictionary_)  # same model (D, phi_0)
    np.testing.assert_array_equal(det.validation_features_, fitted.validation_features_)
    # the standardisation: scores of V under phi_0, local 5x5 means of the validation images
    ref = det.density_.anomaly_score(det.validation_features_)
    order = np.random.default_rng(0).permutation(len(train.images))
    local_v = ndimage.uniform_filter(train.images[order[:2]].astype(np.float64), size=(1, 5, 5), mode="reflect")
    np.testing.assert_allclose(det.standardisation_, [[ref.mean(), local_v.mean()], [ref.std(), local_v.std()]],
                               rtol=1e-10)
    # the map
    (loc_s, loc_b), (sd_s, sd_b) = det.standardisation_
    scores = det.density_.anomaly_score(det.features(test.images[:2]).reshape(-1, 2)).reshape(2, 56, 56)
    local = ndimage.uniform_filter(test.images[:2].astype(np.float64), size=(1, 5, 5), mode="reflect")
    expected = smooth_maps(patch_scores_to_map((scores - loc_s) / sd_s, (64, 64), 9)
                           + 0.5 * (local - loc_b) / sd_b, 2.0)
    np.testing.assert_allclose(det.anomaly_map(test.images[:2]), expected, rtol=1e-9, atol=1e-12)
    # one-sided: a brighter image (same centred patches) scores higher by w * shift / sd_b everywhere
    dim = 0.8 * test.images[:2]
    delta = det.anomaly_map(dim + 0.1) - det.anomaly_map(dim)
    np.testing.assert_allclose(delta, 0.5 * 0.1 / sd_b, rtol=1e-3)
    # a density with leave-one-out training scores is standardised on those
    knn = clone(det).set_params(density=KNNDetector()).fit(train.images)
    loo = knn.density_.training_scores_
    np.testing.assert_allclose(knn.standardisation_[:, 0], [loo.mean(), loo.std()], rtol=1e-10)
    # default window: the patch size
    default = clone(det).set_params(brightness_window=None).fit(train.images)
    local9 = ndimage.uniform_filter(train.images[order[:2]].astype(np.float64), size=(1, 9, 9), mode="reflect")
    np.testing.assert_allclose(default.standardisation_[:, 1], [local9.mean(), local9.std()], rtol=1e-10)
    for bad in (-1.0, True, np.inf):
        with pytest.raises(ValueError, match="brightness_weight must be a number >= 0"):
            clone(fitted).set_params(brightness_weight=bad).fit(train.images)
    with pytest.raises(ValueError, match="brightness_window must be > 0"):
        clone(fitted).set_params(brightness_weight=1.0, brightness_window=0).fit(train.images)


def test_the_real_data_setting_is_built_in_one_place(monkeypatch):
    import importlib.util
    import sys
    from pathlib import Path

    from adcourse.images.sparse import SEM_SETTING, sem_sparse_coding

    det = sem_sparse_coding(random_state=3)
    params = det.get_params()
    assert (params["patch_size"], params["log_features"], params["sigma"], params["brightness_weight"],
            params["brightness_window"]) == (15, True, 4.0, 1.0, 5) == tuple(SEM_SETTING[i] for i in (0, 1, 2, 4, 5))
    assert type(params["density"]).__name__ == "KNNDetector" and params["random_state"] == 3
    assert (params["n_atoms"], params["lam"], params["stride"], params["n_iter"]) == (64, 0.05, 4, 5)
    # chapter 4's "lecture's model": the same detector without the prior
    plain = sem_sparse_coding(brightness_weight=0.0).get_params()
    assert {k: v for k, v in plain.items() if k not in ("brightness_weight", "density", "random_state")} == \
        {k: v for k, v in params.items() if k not in ("brightness_weight", "density", "random_state")}
    assert plain["brightness_weight"] == 0.0
    # another candidate of bench_real: the Gaussian density
    assert sem_sparse_coding((9, True, 4.0, None, 0.0, None)).get_params()["density"] is None
    with pytest.raises(ValueError, match="setting must be a tuple"):
        sem_sparse_coding((15, True))
    with pytest.raises(ValueError, match="'knn' or None"):
        sem_sparse_coding((15, True, 4.0, "kde", 1.0, 5))
    with pytest.raises(TypeError, match="unknown SparseCodingDetector parameters"):
        sem_sparse_coding(brightness=1.0)
    # bench_real's chosen setting is that constant, and it builds with this function
    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_real.py"
    spec = importlib.util.spec_from_file_location("bench_real", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_real", bench)   # its dataclasses look their module up
    spec.loader.exec_module(bench)
    method = bench._methods()["4 · sparse coding"]
    assert method.setting is SEM_SETTING and SEM_SETTING in method.candidates
    built = method.build(method.setting, 3).get_params()
    assert {k: v for k, v in built.items() if k != "density"} == {k: v for k, v in params.items() if k != "density"}
