"""Part 1 of the lecture (chapter 2): anomaly detection among random vectors.

The background model ``phi0`` of normal vectors ``x in R^d``, learned four ways:

* :mod:`~adcourse.vectors.density` -- density estimation (Gaussian, GMM by EM, KDE, histogram);
* :mod:`~adcourse.vectors.domain` -- the domain of normal data (one-class SVM, SVDD);
* :mod:`~adcourse.vectors.distance` -- distances to normal data (kNN, LOF, clusters);
* :mod:`~adcourse.vectors.isolation` -- isolation (isolation forest, extended);
* :mod:`~adcourse.vectors.supervised` -- when some anomalies are labelled, and open-set recognition.

Every detector follows :class:`adcourse.base.BaseDetector`: ``fit(X)`` on normal
data, ``anomaly_score(X)`` higher = more anomalous.
"""

from adcourse.vectors.density import GaussianDetector, GMMDetector, HistogramDetector, KDEDetector
from adcourse.vectors.distance import ClusterDetector, KNNDetector, LOFDetector
from adcourse.vectors.domain import OneClassSVMDetector, SVDDDetector
from adcourse.vectors.isolation import IsolationForestDetector
from adcourse.vectors.supervised import OpenSetClassifier, SupervisedDetector

__all__ = [
    "GaussianDetector",
    "GMMDetector",
    "KDEDetector",
    "HistogramDetector",
    "OneClassSVMDetector",
    "SVDDDetector",
    "KNNDetector",
    "LOFDetector",
    "ClusterDetector",
    "IsolationForestDetector",
    "SupervisedDetector",
    "OpenSetClassifier",
]
