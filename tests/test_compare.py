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
