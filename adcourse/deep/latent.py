r"""Anomaly detection in the latent space of a pretrained CNN (chapter 5).

*Transfer learning*: a CNN :math:`\psi` trained to classify *other* images
(here the course backbone, or an ImageNet ResNet), with its last layers
dropped, turns an image (or a patch) :math:`\mathbf{s}` into a feature vector
:math:`\psi(\mathbf{s})`. The network was never shown our normal data, yet its
features describe textures and shapes well enough that normal samples form a
compact cloud and anomalies fall outside it. The recipe of the lecture is:

1. build the latent training set :math:`TR' = \{\psi(\mathbf{s}),\ \mathbf{s} \in TR\}`
   from normal training images only;
2. (optionally standardise each feature, then) reduce the dimension with a PCA
   fitted on :math:`TR'`: :math:`\mathbf{z} = P^\top(\psi(\mathbf{s}) - \mu)`,
   with :math:`P` the first :math:`m` principal directions;
3. fit **any chapter-2 detector** on :math:`\{\mathbf{z}\}`: the distance to the
   :math:`k`-th nearest normal neighbour (:class:`adcourse.vectors.distance.KNNDetector`,
   the default), a Gaussian and its Mahalanobis distance
   (:class:`adcourse.vectors.density.GaussianDetector`), an isolation forest, ...;
4. set the threshold on the scores of *normal validation* images
   (:meth:`adcourse.decision.Threshold.three_sigma`,
   :meth:`~adcourse.decision.Threshold.bootstrap`, ...).

Two granularities:

* :class:`LatentImageDetector` -- one vector per image (global average pooling
  of the feature maps): *is this image anomalous?*
* :class:`LatentPatchDetector` -- one vector per feature-map location, i.e.
  per patch of the image (the location's receptive field): *where is the
  anomaly?* The scores of the locations form an anomaly map.

Both take numpy images in ``[0, 1]`` and follow the detector conventions of
:mod:`adcourse.base` (scores higher = more anomalous, scikit-learn parameters,
:func:`sklearn.base.clone` works).

References
----------
P. Napoletano, F. Piccoli, R. Schettini, "Anomaly detection in nanofibrous
materials by CNN-based self-similarity", Sensors 18(1):209, 2018.
L. Bergman, N. Cohen, Y. Hoshen, "Deep nearest neighbor anomaly detection",
arXiv:2002.10445, 2020.
N. Cohen, Y. Hoshen, "Sub-image anomaly detection with deep pyramid
correspondences" (SPADE), arXiv:2005.02357, 2020.
K. Roth et al., "Towards total recall in industrial anomaly detection"
(PatchCore), CVPR 2022.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from adcourse.base import BaseImageDetector
from adcourse.decision import upsample_maps
from adcourse.vectors.density import GaussianDetector
from adcourse.vectors.distance import KNNDetector
from adcourse.validation import check_images

__all__ = ["LatentImageDetector", "LatentPatchDetector"]

#: names accepted by the ``detector`` parameter
DETECTOR_NAMES = ("knn", "gaussian")


# --------------------------------------------------------------------------- #
# shared machinery: parameter checks, standardisation + PCA, detector
# --------------------------------------------------------------------------- #
def _build_extractor(extractor, layers, default_layers, method, signature):
    """The user's extractor (checked for ``method``), or the course backbone on ``layers``."""
    if extractor is None:
        from adcourse.deep.backbones import FeatureExtractor

        layers = default_layers if layers is None else layers
        return FeatureExtractor("course", layers=tuple(layers) if not isinstance(layers, str) else layers)
    if layers is not None:
        raise ValueError(
            "layers is only used to build the default extractor; with your own extractor, "
            "set layers on the extractor (e.g. FeatureExtractor(layers=...)) and leave layers=None"
        )
    if not hasattr(extractor, method):
        raise TypeError(f"extractor must have an {signature} method, got {type(extractor).__name__}")
    return extractor


def _check_positive_int(value, name, minimum=1, allow_none=False):
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {minimum}{extra}, got {value!r}")
    return int(value)


def _check_n_components(value):
    """``None``, an int >= 1, or a float in (0, 1); the upper bound is checked at fit."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"n_components must be None, an int or a float in (0, 1), got {value!r}")
    if isinstance(value, numbers.Integral):
        if value < 1:
            raise ValueError(f"n_components must be >= 1 when an int, got {value}")
        return int(value)
    if isinstance(value, numbers.Real):
        if not 0.0 < float(value) < 1.0:
            raise ValueError(
                f"n_components must be in (0, 1) when a float (fraction of variance kept), got {value}; "
                "use an int for a number of components"
            )
        return float(value)
    raise TypeError(
        f"n_components must be None, an int or a float in (0, 1), got {type(value).__name__} {value!r}"
    )


def _make_detector(spec, default_k):
    """An unfitted detector from the ``detector`` parameter (a clone if an instance)."""
    if spec is None:
        return KNNDetector(n_neighbors=default_k)
    if isinstance(spec, str):
        if spec == "knn":
            return KNNDetector(n_neighbors=default_k)
        if spec == "gaussian":
            return GaussianDetector()
        raise ValueError(f"detector must be one of {DETECTOR_NAMES}, None or a detector instance, got {spec!r}")
    if not (hasattr(spec, "fit") and hasattr(spec, "anomaly_score")):
        raise TypeError(
            "detector must be a vector detector with fit and anomaly_score (e.g. "
            f"adcourse.vectors.distance.KNNDetector()), one of {DETECTOR_NAMES} or None, got {type(spec).__name__}"
        )
    return clone(spec)


class _LatentSpace:
    """Mixin: the ``standardize -> PCA -> detector`` chain on latent vectors.

    Expects the hyper-parameters ``standardize``, ``n_components`` and
    ``detector`` and sets ``scaler_``, ``pca_``, ``n_components_`` and ``detector_``.
    """

    _default_k = 1
    _unit = "vectors"  # how the latent training vectors are described in error messages

    def _check_space_params(self):
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"standardize must be True or False, got {self.standardize!r}")
        _check_n_components(self.n_components)
        _make_detector(self.detector, self._default_k)  # type/name check only

    def _fit_space(self, vectors):
        """Fit scaler, PCA and detector on the latent training vectors (N, D)."""
        n, d = vectors.shape
        if n < 2:
            raise ValueError(f"need at least 2 latent training vectors ({self._unit}), got {n}")
        n_comp = _check_n_components(self.n_components)
        if isinstance(n_comp, int) and n_comp > min(n - 1, d):
            raise ValueError(
                f"n_components={n_comp} is too large: the n = {n} centred latent training vectors "
                f"({self._unit}) of dimension d = {d} span at most min(n - 1, d) = {min(n - 1, d)} "
                "directions; lower n_components, give a fraction of variance (e.g. 0.95) or more "
                "training images"
            )
        if self.standardize:
            self.scaler_ = StandardScaler().fit(vectors)
            vectors = self.scaler_.transform(vectors)
        else:
            self.scaler_ = None
        if n_comp is None:
            self.pca_ = None
            self.n_components_ = d
        else:
            self.pca_ = PCA(n_components=n_comp, svd_solver="full").fit(vectors)
            vectors = self.pca_.transform(vectors)
            self.n_components_ = int(self.pca_.n_components_)
        detector = _make_detector(self.detector, self._default_k)
        try:
            self.detector_ = detector.fit(vectors)
        except ValueError as exc:
            raise ValueError(
                f"fitting {type(detector).__name__} on the {n} latent training vectors ({self._unit}, "
                f"dimension {vectors.shape[1]}) failed: {exc}"
            ) from exc

    def _reduce(self, vectors):
        """Standardised and PCA-reduced vectors (N, m) of latent vectors (N, D)."""
        if self.scaler_ is not None:
            vectors = self.scaler_.transform(vectors)
        if self.pca_ is not None:
            vectors = self.pca_.transform(vectors)
        return vectors


def _check_finite_features(features, who):
    if not np.all(np.isfinite(features)):
        n_bad = int((~np.isfinite(features)).sum())
        raise ValueError(
            f"{who} returned {n_bad} non-finite feature value(s) (NaN or inf); check the "
            "extractor (weights, input normalisation)"
        )


def _check_channels(images, image_shape):
    """``images`` if they have the channels of the training images (any height and width)."""
    if images.shape[1:-2] != tuple(image_shape[:-2]):
        raise ValueError(
            f"images must have the channels of the training images, shaped (n, {tuple(image_shape)}) "
            f"up to height and width, got {images.shape}"
        )
    return images


# --------------------------------------------------------------------------- #
# one vector per image
# --------------------------------------------------------------------------- #
class LatentImageDetector(_LatentSpace, BaseEstimator):
    r"""Image-level detector in the latent space of a CNN (global average pooling).

    Each chosen layer :math:`l` of the frozen network gives an activation map
    :math:`A^{(l)}(\mathbf{s}) \in \mathbb{R}^{C_l \times h_l \times w_l}`;
    global average pooling keeps one number per channel and the layers are
    concatenated into the latent vector of the image,

    .. math::

        \psi(\mathbf{s}) = \Big[\,\bar A^{(l_1)}(\mathbf{s}),\ \dots,\
        \bar A^{(l_L)}(\mathbf{s})\Big] \in \mathbb{R}^{D},\qquad
        \bar A^{(l)}_c(\mathbf{s}) = \frac{1}{h_l w_l}\sum_{i,j} A^{(l)}_{c,i,j}(\mathbf{s}),
        \quad D = \sum_l C_l .

    On the normal training set, :math:`TR' = \{\psi(\mathbf{s}),\ \mathbf{s}\in TR\}`:
    each feature is (optionally) standardised with its mean and standard
    deviation over :math:`TR'`, :math:`\mathbf{u} = (\psi(\mathbf{s}) - \mathbf{m}) / \boldsymbol\sigma`,
    then projected on the first :math:`m` principal directions of the
    standardised :math:`TR'`,

    .. math:: \mathbf{z}(\mathbf{s}) = P^\top(\mathbf{u} - \bar{\mathbf{u}}) \in \mathbb{R}^m ,

    and the chapter-2 ``detector`` is fitted on :math:`\{\mathbf{z}(\mathbf{s}),\ \mathbf{s}\in TR\}`.
    With the default :math:`k`-NN detector the score is the distance to the
    :math:`k`-th nearest normal training image in the latent space (Bergman et
    al., 2020, "DN2"),

    .. math:: \text{score}(\mathbf{s}) = \lVert \mathbf{z}(\mathbf{s}) - \mathbf{z}_{(k)} \rVert_2 ;

    with ``detector="gaussian"`` it is the Mahalanobis distance
    :math:`\sqrt{(\mathbf{z}-\hat\mu)^\top\hat\Sigma^{-1}(\mathbf{z}-\hat\mu)}` to
    a Gaussian fitted on the normal latent vectors.

    Parameters
    ----------
    extractor : object with ``extract(images) -> dict`` or None, default None
        Frozen feature extractor whose ``extract`` returns ``{layer: (n, C, h, w)}``
        (e.g. :class:`adcourse.deep.backbones.FeatureExtractor`); every returned layer
        is pooled, in the order of the dict. None: a
        ``FeatureExtractor("course", layers=layers)`` is built at fit (the
        shipped course backbone, offline).
    layers : sequence of str or None, default None
        Layers of the default extractor; None means ``("layer2", "layer3")``.
        Only used when ``extractor`` is None (set the layers of your own
        extractor on the extractor).
    n_components : int, float in (0, 1) or None, default 0.95
        PCA dimension :math:`m`: an int (at most ``min(n_train - 1, D)``), the
        fraction of the training variance to keep (the smallest :math:`m` that
        keeps more than it), or None for no PCA.
    standardize : bool, default False
        Standardise every pooled feature (mean 0, variance 1 over :math:`TR'`)
        before the PCA, so that layers with larger activations do not dominate.
        Off by default: with a few dozen training images, channels that are
        almost constant on them get a tiny standard deviation, and any test
        image that activates them is scaled up enormously -- the scores of
        normal images then have a heavy tail, which ruins mean-plus-k-sigma
        thresholds.
    detector : None, "knn", "gaussian" or a vector detector, default None
        The chapter-2 detector on the reduced vectors; an instance is cloned (never
        modified). None and ``"knn"``: ``KNNDetector(n_neighbors=2)``;
        ``"gaussian"``: ``GaussianDetector()``.
    batch_size : int, default 32
        Images given to the extractor at once (bounds the memory of the maps).

    Attributes
    ----------
    extractor_ : object
        The extractor used (``extractor`` itself, or the default one).
    scaler_ : sklearn.preprocessing.StandardScaler or None
    pca_ : sklearn.decomposition.PCA or None
    n_components_ : int
        Dimension :math:`m` of the reduced latent space.
    n_features_latent_ : int
        Dimension :math:`D` of the pooled vectors.
    detector_ : BaseDetector
        The fitted clone of ``detector``.
    image_shape_ : tuple
        Shape of one training image; test images must have the same channels.

    Notes
    -----
    Training needs at least 2 images (3 with the default 2-NN detector).
    Nothing in the model depends on the position, so test images may have
    any height and width: their pooled vector is a mean over more (or fewer)
    locations. On a texture its expected value does not depend on the size,
    but its spread shrinks as the area grows, the share of border locations
    (which see the network's zero padding) changes, and a small defect weighs
    less in a larger image. So set the threshold on normal validation images
    of the test size, and to find small defects in large images use
    :class:`LatentPatchDetector`, whose scores are local.

    References
    ----------
    L. Bergman, N. Cohen, Y. Hoshen, "Deep nearest neighbor anomaly detection",
    arXiv:2002.10445, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from adcourse.data import make_nanofibers
    >>> fibres = make_nanofibers(n_images=10, size=64, anomaly_rate=0.0, random_state=0).images
    >>> noise = np.random.default_rng(0).uniform(size=(2, 64, 64))    # another kind of image
    >>> det = LatentImageDetector(n_components=3).fit(fibres[:8])
    >>> det.features(fibres[8:]).shape                               # 3 PCA coefficients per image
    (2, 3)
    >>> bool(det.anomaly_score(noise).min() > det.anomaly_score(fibres[8:]).max())
    True
    """

    _default_k = 2
    _unit = "one per training image"
    _DEFAULT_LAYERS = ("layer2", "layer3")

    def __init__(self, extractor=None, layers=None, n_components=0.95, standardize=False,
                 detector=None, batch_size=32):
        self.extractor = extractor
        self.layers = layers
        self.n_components = n_components
        self.standardize = standardize
        self.detector = detector
        self.batch_size = batch_size

    def _build_extractor(self):
        return _build_extractor(self.extractor, self.layers, self._DEFAULT_LAYERS, "extract",
                                "extract(images) -> {layer: (n, C, h, w)}")

    def _pool(self, images):
        """Pooled latent vectors (n, D) of validated images, batch by batch."""
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            maps = self.extractor_.extract(batch)
            if not isinstance(maps, dict) or not maps:
                raise ValueError("extractor.extract must return a non-empty dict {layer: (n, C, h, w)}")
            pooled = []
            for name, fmap in maps.items():
                fmap = np.asarray(fmap, dtype=np.float64)
                if fmap.ndim != 4 or fmap.shape[0] != len(batch):
                    raise ValueError(
                        f"extractor.extract gave layer {name!r} of shape {fmap.shape}, expected "
                        f"(n, C, h, w) with n={len(batch)}"
                    )
                pooled.append(fmap.mean(axis=(2, 3)))  # global average pooling
            out.append(np.concatenate(pooled, axis=1))
        vectors = np.concatenate(out)
        _check_finite_features(vectors, "the extractor")
        return vectors

    def _check_images(self, images):
        check_is_fitted(self, "detector_")
        return _check_channels(check_images(images, "images"), self.image_shape_)

    def fit(self, images, y=None):
        """Fit standardisation, PCA and detector on the latent vectors of normal ``images``.

        ``y`` is ignored: the model sees normal images only.
        """
        self._check_space_params()
        _check_positive_int(self.batch_size, "batch_size")
        images = check_images(images, "images")
        if len(images) < 2:
            raise ValueError(f"need at least 2 normal training images, got {len(images)}")
        self.extractor_ = self._build_extractor()
        self.image_shape_ = images.shape[1:]
        vectors = self._pool(images)
        self.n_features_latent_ = vectors.shape[1]
        self._fit_space(vectors)
        return self

    def pooled_features(self, images):
        r"""Latent vectors :math:`\psi(\mathbf{s})` before standardisation and PCA, shape (n, D)."""
        return self._pool(self._check_images(images))

    def features(self, images):
        r"""Reduced latent vectors :math:`\mathbf{z}(\mathbf{s})` (the detector's input), shape (n, m).

        With ``n_components=None`` these are the (standardised) pooled vectors.
        Handy to plot the normal cloud and the anomalies (e.g. the first two columns).
        """
        return self._reduce(self.pooled_features(images))

    def anomaly_score(self, images):
        """Anomaly score of each image, shape (n,), higher = more anomalous."""
        z = self.features(images)
        return np.asarray(self.detector_.anomaly_score(z), dtype=np.float64)


# --------------------------------------------------------------------------- #
# one vector per feature-map location (patch)
# --------------------------------------------------------------------------- #
class LatentPatchDetector(_LatentSpace, BaseImageDetector):
    r"""Patch-level detector in the latent space of a CNN: an anomaly map.

    The stacked multi-layer embedding of an image (``extractor.embed``, e.g.
    :meth:`adcourse.deep.backbones.FeatureExtractor.embed`) is a grid of vectors
    :math:`\mathbf{x}_{ij}(\mathbf{s}) \in \mathbb{R}^D`, one per location
    :math:`(i, j)` of the first layer's map; each describes the patch of the
    input seen by that location (its receptive field). Every location is a
    sample: the latent training set is

    .. math::

        TR' = \{\mathbf{x}_{ij}(\mathbf{s}),\ \mathbf{s} \in TR,\ (i, j) \in \text{grid}\},

    of which a seeded random subset of at most ``max_samples`` vectors is kept.
    As in :class:`LatentImageDetector`, the vectors are (optionally)
    standardised and reduced by a PCA fitted on that subset,
    :math:`\mathbf{z}_{ij} = P^\top(\mathbf{u}_{ij} - \bar{\mathbf{u}})`, and
    the chapter-2 detector is fitted on the reduced subset :math:`TR''` (the
    memory bank). The default is the distance to the nearest normal patch
    (:math:`k = 1`, as in SPADE and PatchCore),

    .. math::

        a_{ij}(\mathbf{s}) = \min_{\mathbf{z}' \in TR''}
        \lVert \mathbf{z}_{ij}(\mathbf{s}) - \mathbf{z}' \rVert_2 ,

    which is also the spirit of Napoletano et al.'s self-similarity (CNN
    features of patches compared with a dictionary of normal ones). One model
    serves every location (unlike PaDiM, :class:`adcourse.deep.padim.PerLocationGaussian`,
    which fits one Gaussian per location): it suits textures, where normal
    content does not depend on the position.

    The ``(n, h, w)`` map of the location scores is computed for all locations
    of a batch at once (one call of the detector), upsampled bilinearly to the
    input size ``(n, H, W)`` and smoothed by a Gaussian of standard deviation
    ``sigma`` (:func:`adcourse.decision.smooth_maps`). The image score is the
    maximum of the map.

    Parameters
    ----------
    extractor : object with ``embed(images) -> (n, D, h, w)`` or None, default None
        Frozen feature extractor (e.g. :class:`adcourse.deep.backbones.FeatureExtractor`).
        None: ``FeatureExtractor("course", layers=layers)`` built at fit.
    layers : sequence of str or None, default None
        Layers of the default extractor; None means ``("layer1", "layer2")``
        (stride 4: a 64x64 image gives a 16x16 grid). Only used when
        ``extractor`` is None.
    n_components : int, float in (0, 1) or None, default 0.95
        PCA dimension (int, at most ``min(N - 1, D)`` for ``N`` sampled vectors),
        fraction of variance kept, or None for no PCA.
    standardize : bool, default True
        Standardise every channel before the PCA.
    detector : None, "knn", "gaussian" or a vector detector, default None
        None and ``"knn"``: ``KNNDetector(n_neighbors=1)``; ``"gaussian"``: one
        ``GaussianDetector()`` for all locations. An instance is cloned.
    max_samples : int or None, default 10000
        Training location vectors kept (drawn at random without replacement,
        seeded by ``random_state``) to fit the PCA and the detector; None keeps
        all. Bounds the memory bank of the kNN and so the scoring time.
    sigma : float, default 4.0
        Standard deviation, in input pixels, of the smoothing of the upsampled
        map; 0 disables it.
    batch_size : int, default 16
        Images embedded at once, in training and in scoring (bounds memory).
    random_state : int, default 0
        Seed of the subsampling.

    Attributes
    ----------
    extractor_ : object
    feature_shape_ : tuple (D, h, w)
        Shape of one training image's embedding.
    n_train_samples_ : int
        Number of location vectors the PCA and the detector were fitted on.
    scaler_, pca_, n_components_, detector_ :
        As in :class:`LatentImageDetector`.
    image_shape_ : tuple

    Notes
    -----
    One model serves every location, so test images may have any height and
    width (train on crops, score whole images): the map has the test image's
    size, and away from the borders it equals the map of the same region
    inside a larger image (exactly, when the region's offset is a multiple
    of the extractor's deepest stride; otherwise up to the sub-stride shift
    of the feature grid). Locations near the border see the zero padding of
    the network: with small images (< 64 px) border patches are a large share
    of the training set and of the maps; an image smaller than the receptive
    field (39 px for the default layers) is all border.

    References
    ----------
    P. Napoletano, F. Piccoli, R. Schettini, "Anomaly detection in nanofibrous
    materials by CNN-based self-similarity", Sensors 18(1):209, 2018.
    N. Cohen, Y. Hoshen, "Sub-image anomaly detection with deep pyramid
    correspondences", arXiv:2005.02357, 2020.

    Examples
    --------
    >>> from adcourse.data import make_nanofibers
    >>> train = make_nanofibers(n_images=4, size=32, anomaly_rate=0.0, random_state=0).images
    >>> det = LatentPatchDetector(n_components=8, sigma=2.0).fit(train)
    >>> det.feature_shape_, det.n_train_samples_        # 96 channels on an 8x8 grid
    ((96, 8, 8), 256)
    >>> det.anomaly_map(train[:2]).shape, det.anomaly_score(train[:2]).shape
    ((2, 32, 32), (2,))
    """

    _default_k = 1
    _unit = "sampled feature-map locations of the training images"
    _DEFAULT_LAYERS = ("layer1", "layer2")

    def __init__(self, extractor=None, layers=None, n_components=0.95, standardize=True,
                 detector=None, max_samples=10000, sigma=4.0, batch_size=16, random_state=0):
        self.extractor = extractor
        self.layers = layers
        self.n_components = n_components
        self.standardize = standardize
        self.detector = detector
        self.max_samples = max_samples
        self.sigma = sigma
        self.batch_size = batch_size
        self.random_state = random_state

    def _build_extractor(self):
        return _build_extractor(self.extractor, self.layers, self._DEFAULT_LAYERS, "embed",
                                "embed(images) -> (n, D, h, w)")

    def _check_params(self):
        self._check_space_params()
        _check_positive_int(self.max_samples, "max_samples", minimum=2, allow_none=True)
        _check_positive_int(self.batch_size, "batch_size")
        if isinstance(self.sigma, bool) or not isinstance(self.sigma, numbers.Real) or not self.sigma >= 0:
            raise ValueError(f"sigma must be a number >= 0, got {self.sigma!r}")

    def _embed(self, images):
        """Embedding of validated images as (n, h, w, D) float64, checked."""
        emb = np.asarray(self.extractor_.embed(images), dtype=np.float64)
        if emb.ndim != 4 or emb.shape[0] != len(images):
            raise ValueError(f"extractor.embed must return (n, D, h, w) with n={len(images)}, got {emb.shape}")
        if hasattr(self, "feature_shape_") and emb.shape[1] != self.feature_shape_[0]:
            raise ValueError(
                f"extractor gave embeddings with {emb.shape[1]} channels, expected "
                f"{self.feature_shape_[0]} as in training"
            )
        _check_finite_features(emb, "extractor.embed")
        return emb.transpose(0, 2, 3, 1)

    def _fit(self, images):
        self._check_params()
        self.__dict__.pop("feature_shape_", None)
        self.extractor_ = self._build_extractor()
        rng = np.random.default_rng(self.random_state)
        n = len(images)
        chosen, keep = None, []
        for start in range(0, n, self.batch_size):
            emb = self._embed(images[start:start + self.batch_size])  # (b, h, w, D)
            b, h, w, d = emb.shape
            if chosen is None:
                self.feature_shape_ = (d, h, w)
                total = n * h * w
                if self.max_samples is None or total <= self.max_samples:
                    chosen = np.arange(total)
                else:  # the subset is drawn once, over all training locations, before streaming
                    chosen = np.sort(rng.choice(total, size=self.max_samples, replace=False))
            first = start * h * w
            lo, hi = np.searchsorted(chosen, [first, first + b * h * w])
            keep.append(emb.reshape(-1, d)[chosen[lo:hi] - first])
        bank = np.concatenate(keep)
        self.n_train_samples_ = bank.shape[0]
        self._fit_space(bank)

    def features(self, images):
        r"""Reduced location vectors :math:`\mathbf{z}_{ij}(\mathbf{s})`, shape (n, h, w, m)."""
        check_is_fitted(self, "detector_")
        images = self._validated(images)
        out = []
        for start in range(0, len(images), self.batch_size):
            emb = self._embed(images[start:start + self.batch_size])
            b, h, w, d = emb.shape
            out.append(self._reduce(emb.reshape(-1, d)).reshape(b, h, w, -1))
        return np.concatenate(out)

    def location_scores(self, images):
        """Detector score of every feature-map location, shape (n, h, w), before upsampling."""
        check_is_fitted(self, "detector_")
        images = self._validated(images)
        out = []
        for start in range(0, len(images), self.batch_size):
            emb = self._embed(images[start:start + self.batch_size])
            b, h, w, d = emb.shape
            scores = self.detector_.anomaly_score(self._reduce(emb.reshape(-1, d)))
            out.append(np.asarray(scores, dtype=np.float64).reshape(b, h, w))
        return np.concatenate(out)

    def _validated(self, images):
        return _check_channels(check_images(images, "images"), self.image_shape_)

    def _map(self, images):
        return upsample_maps(self.location_scores(images), images.shape[-2:], self.sigma)
