r"""Supervised anomaly detection and open-set recognition: the lecture's two disclaimers.

**Supervised anomaly detection.** When the training set holds labelled normal
*and* anomalous samples, :math:`TR = \{(\mathbf{x}(t), y(t))\}`, one can train
a two-class classifier :math:`\mathcal{K}` and threshold its posterior
:math:`p_{\mathcal{K}}(\text{anomaly}\mid\mathbf{x})`. Most of the literature
does not count this as anomaly detection: anomalies lack statistical coherence
and are too few, so the classifier learns *the anomalies it was shown* and can
miss every other kind (concept drift, selection bias). The data are also
heavily imbalanced, hence the balanced class weights.
:class:`SupervisedDetector` implements it so that the failure can be seen.

**Open-set recognition.** A closed-set classifier
:math:`\mathcal{K}:\mathbb{R}^d\to\Lambda` must assign *some* known class to
every input. An open-set one, :math:`\mathcal{K}:\mathbb{R}^d\to\Lambda\cup\{\text{unknown}\}`,
may answer "unknown". :class:`OpenSetClassifier` builds one after training,
with the course's recipe: a density (background model) of the classifier's
features on known-class data, an anomaly score, and a threshold set for a
target false-positive rate on held-out known-class data.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from adcourse.base import BaseDetector
from adcourse.decision import Threshold
from adcourse.vectors.density import GaussianDetector
from adcourse.validation import check_fraction, check_labels, check_vectors

__all__ = ["SupervisedDetector", "OpenSetClassifier", "UNKNOWN"]

#: label that :meth:`OpenSetClassifier.predict` gives to rejected samples
UNKNOWN = -1


def _default_classifier():
    return LogisticRegression(max_iter=2000)


class SupervisedDetector(BaseDetector):
    r"""A two-class classifier trained on labelled normal and anomalous data.

    Train a classifier :math:`\mathcal{K}` on
    :math:`TR = \{(\mathbf{x}_i, y_i)\}`, :math:`y_i = 1` for anomalies and
    :math:`0` for normal samples, and use its posterior as the anomaly score,

    .. math:: s(\mathbf{x}) = p_{\mathcal{K}}(y = 1 \mid \mathbf{x}),

    higher = more anomalous; a threshold on it (or the :math:`k` highest) gives
    the detections.

    **Why it differs from every other detector of the course.** ``fit`` needs
    labels, ``fit(X, y)``, and anomalous training samples: it is a classifier,
    not a model of normal data. It learns the boundary between the normal data
    and *the anomalies in the training set*, and nothing tells it what to do
    with an anomaly of another kind: depending on which side of that boundary
    the new anomaly falls, it may get a posterior near 0. This is why the
    lecture excludes supervised methods from anomaly detection proper (and
    :mod:`tests.test_supervised` shows it on digits and on 2-D data).

    **Class imbalance.** Anomalies are rare (frauds are < 1 % of
    transactions); an unweighted classifier can reach a high accuracy by
    calling everything normal. ``class_weight="balanced"`` weighs each sample
    by :math:`n / (2\,n_y)`, so both classes count equally in the loss.

    Parameters
    ----------
    classifier : scikit-learn classifier or None, default None
        Any estimator with ``fit`` and ``predict_proba``; cloned before
        fitting. None means ``LogisticRegression(max_iter=2000)``.
    class_weight : "balanced", dict or None, default "balanced"
        Set on the classifier when it has a ``class_weight`` parameter
        (scikit-learn's ``LogisticRegression``, ``RandomForestClassifier``,
        ``SVC`` do); None keeps the classifier's own setting.

    Attributes
    ----------
    classifier_ : the fitted classifier
    anomaly_rate_ : float
        Fraction of anomalies in the training labels.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(95, 2)), rng.normal(size=(5, 2)) + [4.0, 0.0]]
    >>> y = np.r_[np.zeros(95, int), np.ones(5, int)]
    >>> det = SupervisedDetector().fit(X, y)
    >>> (det.anomaly_score([[0.0, 0.0], [4.0, 0.0], [-4.0, 0.0]]) > 0.5).tolist()
    [False, True, False]

    The last sample is as far from the normal data as the second, but on the
    side where the classifier never saw an anomaly.
    """

    _min_fit_samples = 2

    def __init__(self, classifier=None, class_weight="balanced"):
        self.classifier = classifier
        self.class_weight = class_weight

    def fit(self, X, y=None):
        """Train the classifier on ``X`` (n, d) with labels ``y`` (1 = anomaly, 0 = normal)."""
        if y is None:
            raise ValueError(
                "SupervisedDetector needs labels: call fit(X, y) with y = 1 for anomalies and "
                "0 for normal samples (unlike the other detectors, it does not learn from "
                "normal data alone)"
            )
        X = check_vectors(X, "X", min_samples=self._min_fit_samples)
        y = check_labels(y, "y", require_both=True)
        if len(y) != len(X):
            raise ValueError(f"y must have one label per row of X ({len(X)}), got {len(y)} labels")
        self.n_features_in_ = X.shape[1]
        self._fit(X, y)
        return self

    def fit_score(self, X, y=None):
        """``fit(X, y)`` then ``anomaly_score(X)``."""
        return self.fit(X, y).anomaly_score(X)

    def _fit(self, X, y):
        base = _default_classifier() if self.classifier is None else self.classifier
        if not hasattr(base, "predict_proba"):
            raise ValueError(
                f"classifier must have predict_proba (a posterior), got {type(base).__name__}"
            )
        classifier = clone(base)
        if self.class_weight is not None and "class_weight" in classifier.get_params():
            classifier.set_params(class_weight=self.class_weight)
        self.classifier_ = classifier.fit(X, y)
        self.anomaly_rate_ = float(y.mean())

    def _score(self, X):
        # the posterior p(anomaly | x): the column of class 1 in predict_proba
        column = list(self.classifier_.classes_).index(1)
        return self.classifier_.predict_proba(X)[:, column]


class OpenSetClassifier(BaseDetector):
    r"""A classifier that can answer "unknown": a density on its features, thresholded.

    Closed-set training, open-set use, in three steps (the course's three
    ingredients, applied to the classifier's output):

    1. split the labelled training data of the known classes :math:`\Lambda`
       into a fitting part and a validation part (stratified,
       ``validation_size``); train the classifier :math:`\mathcal{K}` on the
       fitting part;
    2. **background model**: map each sample to the classifier's features
       :math:`\mathbf{z} = g(\mathbf{x})` (``decision_function``: the class
       logits, or ``predict_proba``) and fit a density to the features of the
       fitting part — one per known class :math:`k` (``per_class=True``), since
       the features of :math:`K` classes form :math:`K` clusters, and a single
       Gaussian would centre itself between them, right where the samples the
       classifier is unsure about land. The **anomaly score** is the score under
       the closest class,

       .. math:: s(\mathbf{x}) = \min_{k\in\Lambda} s_k(g(\mathbf{x})),

       e.g. the Mahalanobis distance to the class's Gaussian for the default
       :class:`~adcourse.vectors.density.GaussianDetector`;
    3. **decision rule**: the threshold :math:`\gamma` is the
       :math:`(1-\text{fpr})` quantile of the scores of the validation part
       (:meth:`adcourse.decision.Threshold.from_fpr`), so about a fraction
       ``fpr`` of known-class samples is wrongly rejected.

    :meth:`predict` returns the classifier's label, or :data:`UNKNOWN` (-1)
    where :math:`s(\mathbf{x})\ge\gamma`.

    Parameters
    ----------
    classifier : scikit-learn classifier or None, default None
        None means ``LogisticRegression(max_iter=2000)``. Cloned before fitting.
    density : detector or None, default None
        Any :class:`~adcourse.base.BaseDetector` fitted on the features; None
        means ``GaussianDetector()``. Cloned (once per class with ``per_class``).
    fpr : float in (0, 1), default 0.05
        Target fraction of known-class samples rejected as unknown.
    features : {"auto", "decision_function", "predict_proba"}, default "auto"
        The classifier output used as features; "auto" takes
        ``decision_function`` when the classifier has it (logits keep more
        information than probabilities, which saturate at 0 and 1).
    per_class : bool, default True
        One density per known class (score = the minimum), or one for all.
    validation_size : float in (0, 1), default 0.25
        Fraction of each class held out to set the threshold.
    random_state : int or None, default None
        Seed of the split (and of the classifier and density when they take one,
        if you set it there).

    Attributes
    ----------
    classifier_ : the fitted classifier
    classes_ : ndarray
        The known classes :math:`\Lambda`.
    densities_ : list of fitted detectors
        One per class of ``classes_`` (or a single one).
    threshold_ : adcourse.decision.Threshold
        :math:`\gamma`.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    >>> y = np.repeat([0, 1, 2], 100)
    >>> X = centres[y] + rng.normal(size=(300, 2))
    >>> osc = OpenSetClassifier(random_state=0).fit(X, y)
    >>> osc.predict([[6.0, 0.0], [0.0, 6.0], [30.0, 30.0]]).tolist()
    [1, 2, -1]
    """

    _min_fit_samples = 4

    def __init__(
        self,
        classifier=None,
        density=None,
        fpr=0.05,
        features="auto",
        per_class=True,
        validation_size=0.25,
        random_state=None,
    ):
        self.classifier = classifier
        self.density = density
        self.fpr = fpr
        self.features = features
        self.per_class = per_class
        self.validation_size = validation_size
        self.random_state = random_state

    def fit(self, X, y=None):
        """Train on samples ``X`` (n, d) of the known classes, labelled by ``y`` (n,)."""
        if y is None:
            raise ValueError(
                "OpenSetClassifier needs the class labels of the known classes: call fit(X, y)"
            )
        X = check_vectors(X, "X", min_samples=self._min_fit_samples)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(
                f"y must be 1-D with one label per row of X ({len(X)}), got shape {y.shape}"
            )
        self.n_features_in_ = X.shape[1]
        self._fit(X, y)
        return self

    def fit_score(self, X, y=None):
        """``fit(X, y)`` then ``anomaly_score(X)``."""
        return self.fit(X, y).anomaly_score(X)

    def _check_params(self, y):
        check_fraction(self.fpr, "fpr")
        check_fraction(self.validation_size, "validation_size")
        if self.features not in ("auto", "decision_function", "predict_proba"):
            raise ValueError(
                "features must be 'auto', 'decision_function' or 'predict_proba', "
                f"got {self.features!r}"
            )
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise ValueError(f"y must contain at least 2 known classes, got {classes.tolist()}")
        if np.any(classes == UNKNOWN):
            raise ValueError(f"y must not use the label {UNKNOWN}: it means 'unknown'")
        if counts.min() < 4:
            raise ValueError(
                f"each class needs at least 4 samples (fit, density and validation), class "
                f"{classes[counts.argmin()]!r} has {counts.min()}"
            )
        if not isinstance(self.per_class, (bool, np.bool_)):
            raise ValueError(f"per_class must be True or False, got {self.per_class!r}")

    def _fit(self, X, y):
        self._check_params(y)
        # 1. hold out part of every known class to set the threshold
        X_fit, X_val, y_fit, _ = train_test_split(
            X, y, test_size=self.validation_size, stratify=y, random_state=self.random_state
        )
        classifier = _default_classifier() if self.classifier is None else self.classifier
        self.classifier_ = clone(classifier).fit(X_fit, y_fit)
        self.classes_ = self.classifier_.classes_
        method = self.features
        if method == "auto":
            has_logits = hasattr(self.classifier_, "decision_function")
            method = "decision_function" if has_logits else "predict_proba"
        if not hasattr(self.classifier_, method):
            raise ValueError(f"the classifier has no {method} to use as features")
        self._feature_method = method

        # 2. background model of the features of the known classes
        Z_fit = self._features(X_fit)
        density = GaussianDetector() if self.density is None else self.density
        if self.per_class:
            self.densities_ = [clone(density).fit(Z_fit[y_fit == k]) for k in self.classes_]
        else:
            self.densities_ = [clone(density).fit(Z_fit)]

        # 3. threshold at the (1 - fpr) quantile of the held-out known-class scores
        self.threshold_ = Threshold.from_fpr(self._score(X_val), self.fpr)

    def transform(self, X):
        """The classifier's features :math:`g(\\mathbf{x})`, shape (n, n_features_out)."""
        check_is_fitted(self, "classifier_")
        return self._features(check_vectors(X, "X", n_features=self.n_features_in_))

    def _features(self, X):
        Z = getattr(self.classifier_, self._feature_method)(X)
        return Z.reshape(len(X), -1)  # binary decision_function is 1-D

    def _score(self, X):
        Z = self._features(X)
        # score under each class's density, then the closest class
        return np.min([density.anomaly_score(Z) for density in self.densities_], axis=0)

    def predict(self, X):
        """Known class of each row of ``X``, or :data:`UNKNOWN` (-1) if it is rejected."""
        check_is_fitted(self, "threshold_")
        X = check_vectors(X, "X", n_features=self.n_features_in_)
        labels = self.classifier_.predict(X)
        rejected = self.threshold_.predict(self._score(X))
        if labels.dtype.kind not in "iuf":  # string labels: -1 must fit in the array
            labels = labels.astype(object)
        labels[rejected] = UNKNOWN
        return labels
