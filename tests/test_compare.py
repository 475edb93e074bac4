"""Tests of adcourse.compare: the comparison tables of the book."""

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from adcourse import metrics
from adcourse.compare import External, compare
from adcourse.data import make_shapes_2d
from adcourse.vectors.density import GaussianDetector


@pytest.fixture(scope="module")
def datasets():
    X, y = make_shapes_2d("blobs", 200, 20, random_state=0)
    X2, y2 = make_shapes_2d("ring", 200, 20, random_state=1)
    return {"blobs": (X[y == 0][:100], X, y), "ring": (X2[y2 == 0][:100], X2, y2)}


def test_compare_records_auroc_and_times(datasets):
    table = compare({"Gaussian": GaussianDetector}, datasets)
    X_train, X_test, y_test = datasets["ring"]
    expected = metrics.roc_auc(GaussianDetector().fit(X_train).anomaly_score(X_test), y_test)
    assert table.value("Gaussian", "ring", "auroc") == expected
    assert table.value("Gaussian", "blobs", "fit_s") >= 0
    assert table.methods == ["Gaussian"] and table.datasets == ["blobs", "ring"]
    assert "Gaussian" in str(table) and "<table" in table._repr_html_()


def test_external_flips_sklearn_sign(datasets):
    X_train, X_test, y_test = datasets["blobs"]
    ext = External(IsolationForest(random_state=0), lambda est, X: -est.score_samples(X))
    s = ext.fit(X_train).anomaly_score(X_test)
    np.testing.assert_allclose(s, -IsolationForest(random_state=0).fit(X_train).score_samples(X_test))
    assert metrics.roc_auc(s, y_test) > 0.8


def test_a_failing_method_does_not_stop_the_table(datasets):
    class Broken:
        def fit(self, X):
            raise RuntimeError("boom")

    table = compare({"broken": Broken, "Gaussian": GaussianDetector}, datasets)
    assert "boom" in table.rows[0]["error"]
    assert np.isfinite(table.value("Gaussian", "blobs", "auroc"))
    assert "error" in table._repr_html_()


def test_compare_images_reports_image_pixel_and_pro():
    from adcourse.data import make_nanofibers
    from adcourse.images.features import LocalFeatureDetector

    train = make_nanofibers(n_images=3, size=48, anomaly_rate=0.0, random_state=1).images
    test = make_nanofibers(n_images=6, size=48, anomaly_rate=0.5, random_state=2)
    table = compare({"local": lambda: LocalFeatureDetector(window=7)}, {"fibres": (train, test)})
    assert table.measures == ("image_auroc", "pixel_auroc", "pro")
    maps = LocalFeatureDetector(window=7).fit(train).anomaly_map(test.images)
    assert table.value("local", "fibres", "pixel_auroc") == metrics.pixel_roc_auc(maps, test.masks)
    assert table.value("local", "fibres", "pro") == metrics.pro_auc(maps, test.masks)
    assert table.value("local", "fibres", "image_auroc") == metrics.roc_auc(maps.max(axis=(1, 2)), test.labels)
    assert "pixel AUROC" in table._repr_html_() and "fibres" in str(table)


def test_mixing_vector_and_image_sets_is_an_error(datasets):
    from adcourse.data import make_nanofibers

    test = make_nanofibers(n_images=2, size=48, random_state=2)
    with pytest.raises(ValueError, match="mix"):
        compare({"Gaussian": GaussianDetector}, {"blobs": datasets["blobs"], "img": (test.images, test)})


def test_fitted_detectors_are_scored_without_refitting(datasets):
    X_train = datasets["blobs"][0]
    det = GaussianDetector().fit(X_train)
    calls = []

    class Counting(GaussianDetector):
        def fit(self, X, y=None):
            calls.append(1)
            return super().fit(X, y)

    table = compare({"g": Counting}, datasets, fitted={("g", "blobs"): (det, 12.5)})
    assert len(calls) == 1  # fitted only on "ring"
    rows = {r["dataset"]: r for r in table.rows}
    assert rows["blobs"]["fit_s"] == 12.5
    expected = metrics.roc_auc(det.anomaly_score(datasets["blobs"][1]), datasets["blobs"][2])
    assert table.value("g", "blobs", "auroc") == expected
    with pytest.raises(ValueError, match="not \\(method, data set\\) pairs"):
        compare({"g": Counting}, datasets, fitted={("g", "nope"): (det, 1.0)})


# --------------------------------------------------------------------------- #
# the one-class protocol
# --------------------------------------------------------------------------- #
def test_one_class_protocol_matches_a_hand_computation():
    from adcourse.compare import one_class
    from adcourse.data import load_digits_oneclass
    from adcourse.vectors.distance import KNNDetector
    from adcourse.vectors.isolation import IsolationForestDetector

    methods = {"kNN": KNNDetector, "IF": lambda: IsolationForestDetector(n_estimators=30)}
    t = one_class(methods, load_digits_oneclass, classes=[1, 7], seeds=[0, 1, 2])
    assert t.auroc.shape == (2, 2, 3) and np.isfinite(t.auroc).all() and not t.errors
    # one cell by hand: class 7, seed 2; the detector's random_state is set to the seed
    split = load_digits_oneclass(7, random_state=2)
    det = IsolationForestDetector(n_estimators=30, random_state=2).fit(split.X_train)
    assert t.auroc[1, 1, 2] == metrics.roc_auc(det.anomaly_score(split.X_test), split.y_test)
    # summaries: mean over classes per seed, then mean and sample sd over the seeds
    per_seed = t.auroc[0].mean(axis=0)
    assert t.mean("kNN") == pytest.approx(per_seed.mean())
    assert t.spread("kNN") == pytest.approx(per_seed.std(ddof=1))
    np.testing.assert_allclose(t.class_spread("kNN"), t.auroc[0].std(axis=1, ddof=1))
    assert t.spread("IF") > 0  # different seeds, different splits and forests
    frame = t.frame()
    assert list(frame.columns) == ["1", "7", "mean", "time (s)"] and "±" in frame.loc["kNN", "mean"]
    assert "kNN" in str(t) and "<table" in t._repr_html_()


def test_one_class_images_errors_and_bad_arguments():
    from functools import partial

    from adcourse.compare import one_class
    from adcourse.data import load_digits_oneclass

    seen = []

    class Shape:
        def fit(self, X):
            seen.append(X.shape[1:])
            return self

        def anomaly_score(self, X):
            if len(seen) > 1:
                raise RuntimeError("boom")
            return X.reshape(len(X), -1).mean(axis=1)

    t = one_class({"shape": Shape}, partial(load_digits_oneclass, size=16), classes=[0], seeds=[0, 1],
                  inputs="images")
    assert seen == [(16, 16), (16, 16)]
    assert np.isfinite(t.auroc[0, 0, 0]) and np.isnan(t.auroc[0, 0, 1])
    assert "boom" in t.errors[("shape", 0, 1)]
    with pytest.raises(ValueError, match="inputs"):
        one_class({"s": Shape}, load_digits_oneclass, inputs="pixels")
    with pytest.raises(TypeError, match="loader"):
        one_class({"s": Shape}, "digits")
    with pytest.raises(ValueError, match="empty"):
        one_class({"s": Shape}, load_digits_oneclass, seeds=[])
    with pytest.raises(KeyError, match="no method"):
        t.mean("kNN")


def test_one_class_extra_scores_reuse_the_fitted_detector():
    from adcourse.compare import one_class
    from adcourse.data import load_digits_oneclass
    from adcourse.vectors.distance import KNNDetector

    fits = []

    class CountingKNN(KNNDetector):
        def fit(self, X, y=None):
            fits.append(len(X))
            return super().fit(X)

    t = one_class({"kNN": CountingKNN}, load_digits_oneclass, classes=[2], seeds=[0, 1],
                  scores={"-kNN": ("kNN", lambda det, X: -det.anomaly_score(X))})
    assert len(fits) == 2 and t.methods == ["kNN", "-kNN"]       # one fit per run, two rows
    np.testing.assert_allclose(t.auroc[1], 1 - t.auroc[0])
    with pytest.raises(ValueError, match="scores must map"):
        one_class({"kNN": KNNDetector}, load_digits_oneclass, scores={"x": ("IF", len)})


def test_one_class_in_worker_processes_gives_the_serial_table_and_keeps_the_detectors():
    from adcourse.compare import one_class
    from adcourse.data import load_digits_oneclass
    from adcourse.vectors.isolation import IsolationForestDetector

    methods = {"IF": lambda: IsolationForestDetector(n_estimators=20)}
    scores = {"-IF": ("IF", lambda det, X: -det.anomaly_score(X))}
    serial_kept, parallel_kept = {}, {}
    serial = one_class(methods, load_digits_oneclass, classes=[1, 7], seeds=[0, 1], scores=scores, keep=serial_kept)
    parallel = one_class(methods, load_digits_oneclass, classes=[1, 7], seeds=[0, 1], scores=scores,
                         keep=parallel_kept, n_jobs=2)
    np.testing.assert_array_equal(parallel.auroc, serial.auroc)    # seeded runs: the same in any process
    assert parallel.methods == serial.methods == ["IF", "-IF"] and (parallel.seconds > 0).all()
    assert sorted(parallel_kept) == sorted(serial_kept) == [("IF", c, s) for c in (1, 7) for s in (0, 1)]
    kept = parallel_kept[("IF", 7, 1)]                              # fitted on 7's training half, seed 1
    split = load_digits_oneclass(7, random_state=1)
    assert kept.random_state == 1
    assert metrics.roc_auc(kept.anomaly_score(split.X_test), split.y_test) == serial.auroc[0, 1, 1]
    # a failing run in a worker is one error, the other runs are kept
    seven = float(load_digits_oneclass(7, random_state=0).X_train.mean())

    class FailsOnSeven:                       # local: the workers receive it by value
        def fit(self, X):
            if np.isclose(X.mean(), seven):
                raise RuntimeError("seven")
            self.mean_ = X.mean(axis=0)
            return self

        def anomaly_score(self, X):
            return ((X - self.mean_) ** 2).sum(axis=1)

    t = one_class({"mean": FailsOnSeven}, load_digits_oneclass, classes=[1, 7], seeds=[0], n_jobs=2)
    assert list(t.errors) == [("mean", 7, 0)] and "seven" in t.errors[("mean", 7, 0)]
    assert np.isfinite(t.auroc[0, 0, 0]) and np.isnan(t.auroc[0, 1, 0])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_jobs"):
            one_class(methods, load_digits_oneclass, classes=[1], seeds=[0], n_jobs=bad)
    with pytest.raises(TypeError, match="keep"):
        one_class(methods, load_digits_oneclass, classes=[1], seeds=[0], keep=[])


def _seeded(seed):
    out = {}
    for kind in ("blobs", "ring"):
        X, y = make_shapes_2d(kind, 200, 20, random_state=seed)
        X_train, _ = make_shapes_2d(kind, 200, 0, random_state=100 + seed)
        out[kind] = (X_train, X, y)
    return out


def test_compare_seeds_is_mean_and_spread_of_single_seed_tables():
    from adcourse.compare import compare_seeds
    from adcourse.vectors.distance import KNNDetector

    methods = {"Gaussian": GaussianDetector, "kNN": KNNDetector}
    table = compare_seeds(methods, _seeded, seeds=(0, 1, 2))
    per_seed = [compare(methods, _seeded(s)).value("kNN", "ring", "auroc") for s in (0, 1, 2)]
    np.testing.assert_allclose(table.values("kNN", "ring", "auroc"), per_seed)
    assert table.mean("kNN", "ring", "auroc") == pytest.approx(np.mean(per_seed))
    assert table.spread("kNN", "ring", "auroc") == pytest.approx(np.std(per_seed, ddof=1))
    assert table.text("kNN", "ring", "auroc") == f"{np.mean(per_seed):.3f} ± {np.std(per_seed, ddof=1):.3f}"
    frame = table.frame()
    assert list(frame.index) == ["Gaussian", "kNN"] and "time (s)" in frame.columns
    assert frame.loc["kNN", "ring"] == table.text("kNN", "ring", "auroc")
    html = table._repr_html_()
    assert "<table" in html and "overflow-x: auto" in html and "over 3 seeds (0, 1, 2; each draws the data" in html


def test_compare_seeds_initialises_each_fresh_detector_with_the_seed():
    """The seed draws the data and initialises the detector (as in one_class): a detector
    with a random_state is fitted with random_state = seed, one without is left as it is."""
    from adcourse.compare import compare_seeds
    from adcourse.vectors.isolation import IsolationForestDetector

    seen = []

    class Recording(IsolationForestDetector):
        def fit(self, X, y=None):
            seen.append(self.random_state)
            return super().fit(X, y)

    methods = {"IF": lambda: Recording(n_estimators=20, random_state=123), "Gaussian": GaussianDetector}
    table = compare_seeds(methods, _seeded, seeds=(4, 7, 9))
    assert seen == [4, 4, 7, 7, 9, 9]          # two data sets per seed, each fitted once
    for seed, auc in zip((4, 7, 9), table.values("IF", "ring", "auroc")):
        X_train, X, y = _seeded(seed)["ring"]
        det = IsolationForestDetector(n_estimators=20, random_state=seed).fit(X_train)
        assert auc == pytest.approx(metrics.roc_auc(det.anomaly_score(X), y))
    assert np.isfinite(table.values("Gaussian", "ring", "auroc")).all()


def test_compare_seeds_seeds_a_wrapped_library_estimator_too():
    """External shows the wrapped estimator's random_state, so compare_seeds seeds scikit-learn's
    isolation forest as it seeds ours; an estimator without one (OC-SVM) is left alone."""
    from sklearn.svm import OneClassSVM

    from adcourse.compare import compare_seeds

    def flip(est, X):
        return -est.score_samples(X)

    methods = {"IF (sklearn)": lambda: External(IsolationForest(n_estimators=20, random_state=0), flip),
               "OC-SVM (sklearn)": lambda: External(OneClassSVM(gamma="scale"), flip)}
    table = compare_seeds(methods, _seeded, seeds=(3, 5))
    for seed, auc in zip((3, 5), table.values("IF (sklearn)", "ring", "auroc")):
        X_train, X, y = _seeded(seed)["ring"]
        est = IsolationForest(n_estimators=20, random_state=seed).fit(X_train)
        assert auc == pytest.approx(metrics.roc_auc(-est.score_samples(X), y))
    assert np.isfinite(table.values("OC-SVM (sklearn)", "ring", "auroc")).all()

    ext = External(IsolationForest(random_state=0), flip, random_state=7)
    assert ext.estimator.random_state == 7 and ext.get_params()["random_state"] == 7
    assert ext.set_params(random_state=8).estimator.random_state == 8
    svm = External(OneClassSVM(), flip)
    assert "random_state" not in svm.get_params()
    with pytest.raises(ValueError, match="no parameter 'random_state'"):
        svm.set_params(random_state=1)
    with pytest.raises(ValueError, match="no parameter 'random_state'"):
        External(OneClassSVM(), flip, random_state=1)


def test_clearly_better_needs_a_difference_larger_than_its_spread():
    from adcourse.compare import SeedTable, Table

    def table(a_values, b_values):
        tables = [Table([{"method": "A", "dataset": "d", "auroc": a, "fit_s": 0, "score_s": 0},
                         {"method": "B", "dataset": "d", "auroc": b, "fit_s": 0, "score_s": 0}])
                  for a, b in zip(a_values, b_values)]
        return SeedTable(tables, seeds=range(len(a_values)))

    # the draws move both methods together (0.70 .. 0.90), A ahead on each by 0.04 ± 0.01:
    # the intervals of the two columns overlap, the paired differences do not
    paired = table([0.74, 0.84, 0.95], [0.70, 0.80, 0.90])
    assert paired.clearly_better("A", "B", "d", "auroc") and not paired.clearly_better("B", "A", "d", "auroc")
    paired.assert_better("A", "B", "d", "auroc")
    assert paired.difference_text("A", "B", "d", "auroc") == "0.043 ± 0.006"
    # A ahead on average but not on every draw
    mixed = table([0.90, 0.95, 0.85], [0.86, 0.88, 0.87])
    assert mixed.mean("A", "d", "auroc") > mixed.mean("B", "d", "auroc")
    assert not mixed.clearly_better("A", "B", "d", "auroc")
    with pytest.raises(AssertionError, match=r"0\.900 ± 0\.050 vs 0\.870 ± 0\.010"):
        mixed.assert_better("A", "B", "d", "auroc")
    # ahead on every draw, but by less than the spread of the differences
    noisy = table([0.81, 0.90, 0.80], [0.80, 0.80, 0.79])
    assert not noisy.clearly_better("A", "B", "d", "auroc")
    assert mixed.best("d", "auroc") == "A"


# --------------------------------------------------------------------------- #
# results shared between chapters
# --------------------------------------------------------------------------- #
def _two_seed_table():
    from adcourse.compare import SeedTable, Table

    def rows(a, b):
        return Table([{"method": "A", "dataset": "d", "image_auroc": a, "pixel_auroc": a - 0.1, "pro": 0.5,
                       "fit_s": 1.0, "score_s": 0.5},
                      {"method": "B", "dataset": "d", "error": "ValueError: boom"}],
                     measures=("image_auroc", "pixel_auroc", "pro"))

    return SeedTable([rows(0.9, 0), rows(0.8, 0)], seeds=[0, 1])


def test_save_load_cached_and_invalidation(tmp_path, monkeypatch):
    import adcourse.compare as cmp

    table = _two_seed_table()
    assert cmp.load_results("ch99-x", folder=tmp_path) is None
    assert cmp.save_results("ch99-x", table, folder=tmp_path) is table
    back = cmp.load_results("ch99-x", folder=tmp_path)
    assert isinstance(back, cmp.SeedTable) and back.text("A", "d", "image_auroc") == table.text("A", "d", "image_auroc")
    calls = []
    got, reused = cmp.cached("ch99-x", lambda: calls.append(1) or table, folder=tmp_path)
    assert reused and not calls and got.seeds == [0, 1]
    got, reused = cmp.cached("ch99-y", lambda: calls.append(1) or "computed", folder=tmp_path)
    assert not reused and calls == [1] and got == "computed"
    assert cmp.load_results("ch99-y", folder=tmp_path) == "computed"
    assert list(cmp.saved_results(folder=tmp_path)) == ["ch99-x", "ch99-y"]
    # other sources, other results: an old table is never shown
    monkeypatch.setattr(cmp, "_sources_fingerprint", lambda folder: "another-version")
    assert cmp.load_results("ch99-x", folder=tmp_path) is None and cmp.saved_results(folder=tmp_path) == {}
    cmp.save_results("ch99-z", 1, folder=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["another-version"]  # the stale version is removed
    for bad in ("", "a/b", "..", ".hidden", 3):
        with pytest.raises(ValueError, match="name must be"):
            cmp.save_results(bad, table, folder=tmp_path)


def test_default_results_folder_and_fingerprint(tmp_path, monkeypatch):
    import adcourse.compare as cmp

    monkeypatch.delenv(cmp.RESULTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cmp.results_folder() == tmp_path / "_build" / "results"
    monkeypatch.setenv(cmp.RESULTS_ENV, str(tmp_path / "elsewhere"))
    assert cmp.results_folder() == tmp_path / "elsewhere"
    # the book's chapters count when the folder is <book>/_build/results
    (tmp_path / "01-a.md").write_text("one")
    before = cmp._sources_fingerprint(tmp_path / "_build" / "results")
    assert cmp._sources_fingerprint(tmp_path / "elsewhere") != before
    (tmp_path / "01-a.md").write_text("two")
    assert cmp._sources_fingerprint(tmp_path / "_build" / "results") != before


def test_result_rows_of_every_table_kind():
    from adcourse.compare import OneClassTable, result_rows
    from adcourse.data import load_digits_oneclass
    from adcourse.vectors.distance import KNNDetector

    rows = result_rows(_two_seed_table(), source="chapter 99")
    assert [(r["method"], r["measure"]) for r in rows] == [("A", "image_auroc"), ("A", "pixel_auroc"), ("A", "pro")]
    assert rows[0]["mean"] == pytest.approx(0.85) and rows[0]["spread"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
    assert rows[0]["fit_s"] == 1.0 and rows[0]["score_s"] == 0.5 and rows[0]["n_seeds"] == 2
    assert rows[0]["source"] == "chapter 99"
    single = result_rows(_two_seed_table().tables[0])
    assert single[0]["n_seeds"] == 1 and np.isnan(single[0]["spread"])
    from adcourse.compare import one_class

    oc = one_class({"kNN": KNNDetector}, load_digits_oneclass, classes=[0, 1], seeds=[0, 1])
    assert isinstance(oc, OneClassTable)
    (row,) = result_rows(oc)
    assert row["dataset"] == "digits one-class" and row["mean"] == pytest.approx(oc.mean("kNN"))
    assert row["spread"] == pytest.approx(oc.spread("kNN")) and row["fit_s"] > 0
    with pytest.raises(TypeError, match="SeedTable or OneClassTable"):
        result_rows({"a": 1})


def test_seed_table_hides_columns_but_keeps_the_numbers():
    from adcourse.compare import compare_seeds

    table = compare_seeds({"Gaussian": GaussianDetector}, _seeded, seeds=(0, 1))
    table.hide(dataset="ring")
    assert list(table.frame().columns) == ["blobs", "time (s)"]
    assert "ring" not in table._repr_html_()
    assert np.isfinite(table.mean("Gaussian", "ring", "auroc"))
    view = table.select(datasets=["ring"])
    assert list(view.frame().columns) == ["time (s)"]  # ring was hidden in the table already
    assert list(compare_seeds({"Gaussian": GaussianDetector}, _seeded, seeds=(0, 1)).select(
        datasets=["ring"]).frame().columns) == ["ring", "time (s)"]


def test_data_sets_sharing_their_training_data_share_one_fit():
    fits = []

    class Counting(GaussianDetector):
        def fit(self, X, y=None):
            fits.append(len(X))
            return super().fit(X)

    X, y = make_shapes_2d("blobs", 200, 20, random_state=0)
    X2, y2 = make_shapes_2d("blobs", 200, 20, random_state=1)
    train = X[y == 0]
    table = compare({"g": Counting}, {"a": (train, X, y), "b": (train, X2, y2), "c": (train.copy(), X, y)})
    assert len(fits) == 2  # a and b share one fit; c has its own copy of the data
    assert table.value("g", "b", "fit_s") == 0.0 and table.value("g", "a", "fit_s") > 0
    assert table.value("g", "c", "auroc") == table.value("g", "a", "auroc")


def test_a_data_set_drawn_by_one_seed_only_has_no_spread():
    from adcourse.compare import compare_seeds

    def sets(seed):
        out = _seeded(seed)
        if seed:
            out.pop("ring")  # "ring" exists once, like a fixed real data set
        return out

    table = compare_seeds({"Gaussian": GaussianDetector}, sets, seeds=(0, 1, 2))
    once = compare({"Gaussian": GaussianDetector}, _seeded(0)).value("Gaussian", "ring", "auroc")
    assert table.mean("Gaussian", "ring", "auroc") == pytest.approx(once)
    assert table.spread("Gaussian", "ring", "auroc") == 0.0
    assert table.text("Gaussian", "ring", "auroc") == f"{once:.3f}"
    assert "±" in table.text("Gaussian", "blobs", "auroc")


def test_reuse_takes_over_the_cells_of_the_same_detector_on_the_same_data():
    from adcourse.compare import compare_seeds, evaluation_key
    from adcourse.vectors.distance import KNNDetector

    fits = []

    class Counting(GaussianDetector):
        def fit(self, X, y=None):
            fits.append(len(X))
            return super().fit(X)

    X, y = make_shapes_2d("blobs", 200, 20, random_state=0)
    X2, y2 = make_shapes_2d("ring", 200, 20, random_state=1)
    sets = {"blobs": (X[y == 0], X, y), "ring": (X2[y2 == 0], X2, y2)}
    earlier = compare({"g": Counting, "knn": lambda: KNNDetector(5)}, sets)
    assert len(fits) == 2
    later = compare({"same g": Counting, "knn": lambda: KNNDetector(5), "knn 3": lambda: KNNDetector(3),
                     "g, reg": lambda: Counting(reg=1e-3)},
                    {"blobs": sets["blobs"], "ring, one value changed": (X2[y2 == 0], X2 + (X2 == X2.max()), y2)},
                    reuse={"the first table": earlier, "nothing": None})
    # the same class, parameters and bytes: taken over (times too), not fitted again
    # fitted again: "same g" on the changed ring, "g, reg" on both (not "same g" on blobs)
    assert len(fits) == 2 + 3
    for name, first in (("same g", "g"), ("knn", "knn")):
        for key in ("auroc", "fit_s", "score_s"):
            assert later.value(name, "blobs", key) == earlier.value(first, "blobs", key)
        assert next(r for r in later.rows if r["method"] == name and r["dataset"] == "blobs")["reused"] == \
            "the first table"
    # another parameter, or data that differ in one value: computed
    reused = {(r["method"], r["dataset"]) for r in later.rows if r.get("reused")}
    assert reused == {("same g", "blobs"), ("knn", "blobs")}
    assert evaluation_key(KNNDetector(5), *sets["blobs"][:1], sets["blobs"][1:]) != \
        evaluation_key(KNNDetector(3), *sets["blobs"][:1], sets["blobs"][1:])
    # across seeds: the SeedTable names the cells it took over
    seeded = compare_seeds({"knn": lambda: KNNDetector(5)}, lambda s: {"blobs": sets["blobs"]}, seeds=(0, 1),
                           reuse={"chapter 0": earlier})
    assert seeded.reused() == {("knn", "blobs"): "chapter 0"}
    assert "computed by chapter 0" in seeded._repr_html_() and "knn" in seeded.reused_note()
    assert compare_seeds({"knn": lambda: KNNDetector(5)}, lambda s: {"blobs": sets["blobs"]},
                         seeds=(0,)).reused_note() == ""
    # a cell taken over from a table that had taken it over names where it was computed
    chained = compare({"knn": lambda: KNNDetector(5)}, {"blobs": sets["blobs"]}, reuse={"the second": later})
    assert chained.rows[0]["reused"] == "the first table"
    assert chained.value("knn", "blobs", "auroc") == earlier.value("knn", "blobs", "auroc")


def test_reuse_never_matches_a_detector_whose_parameters_are_not_plain_values():
    from adcourse.compare import evaluation_key

    X, y = make_shapes_2d("blobs", 100, 10, random_state=0)
    # a library estimator inside External (its score is a function): no key, so never taken over
    ext = External(IsolationForest(random_state=0), lambda est, Z: -est.score_samples(Z))
    assert evaluation_key(ext, X[y == 0], (X, y)) is None
    # images of different sizes are not one array: no key either
    assert evaluation_key(GaussianDetector(), [np.zeros((4, 4)), np.zeros((5, 5))], (X, y)) is None
    assert evaluation_key(GaussianDetector(), X[y == 0], (X, y)) == evaluation_key(GaussianDetector(), X[y == 0], (X, y))
    table = compare({"ext": lambda: ext}, {"blobs": (X[y == 0], X, y)})
    again = compare({"ext": lambda: ext}, {"blobs": (X[y == 0], X, y)}, reuse={"t": table})
    assert not any(r.get("reused") for r in again.rows)
    # a failed cell is not taken over
    class Broken(GaussianDetector):
        def fit(self, X, y=None):
            raise RuntimeError("broken on purpose")

    failed = compare({"b": Broken}, {"blobs": (X[y == 0], X, y)})
    assert compare({"b": Broken}, {"blobs": (X[y == 0], X, y)}, reuse={"t": failed}).rows[0].get("reused") is None
    with pytest.raises(TypeError, match="reuse"):
        compare({"g": GaussianDetector}, {"blobs": (X[y == 0], X, y)}, reuse={"t": "not a table"})
