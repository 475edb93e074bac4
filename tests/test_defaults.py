"""Every public detector runs with its defaults.

A new user's first line is ``Detector().fit(X)``. The detectors are discovered from the
``__all__`` of the three wings (``adcourse.vectors``, ``adcourse.images``, ``adcourse.deep``),
so a detector added there without working defaults fails here with no edit to this file.

A detector is a public class with ``fit`` and ``anomaly_score``. Each is fitted on small data
of the kind it takes (tiny sizes, so the whole file stays fast):

* vector detectors (subclasses of :class:`adcourse.base.BaseDetector`): ``VECTORS``, 25-D
  (flattened 5x5 patches; enough dimensions for the PCA detectors' default components);
* image detectors (all others): ``IMAGES``, six 32 x 32 normal nanofibre images;
* the per-class exceptions, each documented in ``FIT_DATA``: the two supervised detectors need
  labels, which no unsupervised detector takes.
"""

import importlib
import inspect

import numpy as np
import pytest
import torch

import adcourse.deep
import adcourse.images
import adcourse.vectors
from adcourse.base import BaseDetector
from adcourse.data import make_nanofibers

torch.set_num_threads(1)

WINGS = (adcourse.vectors, adcourse.images, adcourse.deep)


def _public_detectors():
    found = {}
    for wing in WINGS:
        for name in wing.__all__:
            obj = getattr(wing, name)
            if inspect.isclass(obj) and hasattr(obj, "fit") and hasattr(obj, "anomaly_score"):
                found[f"{wing.__name__}.{name}"] = obj
    return found


DETECTORS = _public_detectors()


def _vectors():
    rng = np.random.default_rng(0)
    return rng.normal(size=(120, 25)), rng.normal(size=(10, 25))


def _images():
    train = make_nanofibers(n_images=6, size=32, anomaly_rate=0.0, random_state=0).images
    test = make_nanofibers(n_images=2, size=32, anomaly_rate=1.0, random_state=1).images
    return train, test


def _labelled_vectors():
    """SupervisedDetector learns from labelled normal (0) and anomalous (1) samples."""
    X, X_test = _vectors()
    return X, X_test, np.r_[np.zeros(100, int), np.ones(20, int)]


def _known_classes():
    """OpenSetClassifier learns the classes it knows (three here), to reject the others."""
    X, X_test = _vectors()
    return X + np.repeat([0.0, 4.0, 8.0], 40)[:, None], X_test, np.repeat([0, 1, 2], 40)


#: the documented exceptions to "vectors or images by the base class": class name -> data
FIT_DATA = {
    "SupervisedDetector": _labelled_vectors,
    "OpenSetClassifier": _known_classes,
}


def _data(cls):
    if cls.__name__ in FIT_DATA:
        return FIT_DATA[cls.__name__]()
    if issubclass(cls, BaseDetector):
        return (*_vectors(), None)
    return (*_images(), None)


def test_the_wings_export_detectors():
    # the discovery sees every family (a broken __all__ would silently shrink the test)
    names = {cls.__name__ for cls in DETECTORS.values()}
    assert {"KDEDetector", "OpenSetClassifier", "PatchDetector", "SparseCodingDetector",
            "LatentImageDetector", "PerLocationGaussian", "StudentTeacher"} <= names
    assert len(DETECTORS) >= 20
    assert set(FIT_DATA) <= names  # no stale exception


@pytest.mark.parametrize("path", sorted(DETECTORS))
def test_every_public_detector_runs_with_its_defaults(path):
    cls = DETECTORS[path]
    required = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self" and p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert not required, f"{cls.__name__}() needs {required}: give every parameter a working default"
    det = cls()
    if "progress" in det.get_params():  # (no progress bars in the test log; not a model setting)
        det.set_params(progress=False)
    params = det.get_params()
    X, X_test, y = _data(cls)
    assert (det.fit(X) if y is None else det.fit(X, y)) is det
    assert det.get_params() == params  # hyper-parameters stored unchanged
    scores = det.anomaly_score(X_test)
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float64
    assert scores.shape == (len(X_test),) and np.all(np.isfinite(scores))
    if hasattr(det, "anomaly_map"):
        maps = det.anomaly_map(X_test)
        assert maps.shape == X_test.shape[:1] + X_test.shape[-2:] and np.all(np.isfinite(maps))
        np.testing.assert_allclose(scores, maps.max(axis=(1, 2)))


def test_a_detector_without_defaults_is_caught(monkeypatch):
    # the discovery is what makes the rule hold for future detectors: add one to a wing
    class NeedsAnArgument(BaseDetector):
        def __init__(self, required):
            self.required = required

        def _fit(self, X):
            pass

        def _score(self, X):
            return np.zeros(len(X))

    monkeypatch.setattr(adcourse.vectors, "NeedsAnArgument", NeedsAnArgument, raising=False)
    monkeypatch.setattr(adcourse.vectors, "__all__", adcourse.vectors.__all__ + ["NeedsAnArgument"])
    found = _public_detectors()
    assert found["adcourse.vectors.NeedsAnArgument"] is NeedsAnArgument
    monkeypatch.setitem(DETECTORS, "adcourse.vectors.NeedsAnArgument", NeedsAnArgument)
    with pytest.raises(AssertionError, match=r"NeedsAnArgument\(\) needs \['required'\]"):
        test_every_public_detector_runs_with_its_defaults("adcourse.vectors.NeedsAnArgument")


def test_the_modules_of_the_detectors_are_the_documented_ones():
    # chapter N <-> module: every detector lives in a module of its wing (no stray re-export)
    for path, cls in DETECTORS.items():
        wing = path.rsplit(".", 1)[0]
        assert cls.__module__.startswith(wing + "."), (path, cls.__module__)
        importlib.import_module(cls.__module__)
