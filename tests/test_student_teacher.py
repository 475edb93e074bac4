"""Uninformed Students: the two statistics, the detector on an easy defect, normalisation, errors."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from adcourse.deep.backbones import FeatureExtractor
from adcourse.metrics import pixel_roc_auc, roc_auc
from adcourse.deep.student_teacher import StudentNet, StudentTeacher, student_teacher_scores

torch.set_num_threads(1)


# --------------------------------------------------------------------------- data
def _textures(n, size=32, seed=0, defect=False):
    """Vertical gratings with random phase and a little noise; defects are bright 8x8 squares."""
    rng = np.random.default_rng(seed)
    xx = np.arange(size)[None, :]
    images, masks = [], []
    for _ in range(n):
        img = 0.4 + 0.15 * np.sin(2 * np.pi * xx / 6 + rng.uniform(0, 2 * np.pi)) \
            + rng.normal(0, 0.02, (size, size))
        mask = np.zeros((size, size), bool)
        if defect:
            r, c = rng.integers(4, size - 12, 2)
            mask[r:r + 8, c:c + 8] = True
            img[mask] = 0.95
        images.append(np.clip(img, 0, 1))
        masks.append(mask)
    return np.array(images, np.float32), np.array(masks)


class BlockTeacher:
    """A toy numpy teacher: mean and standard deviation of every 4x4 block (stride 4)."""

    def embed(self, images):
        x = np.asarray(images)
        if x.ndim == 4:
            x = x.mean(axis=1)
        n, h, w = x.shape
        blocks = x.reshape(n, h // 4, 4, w // 4, 4)
        return np.stack([blocks.mean(axis=(2, 4)), blocks.std(axis=(2, 4))], axis=1)


# small and fast: whole 32-px images (no crops), a few epochs
FAST = {"n_students": 2, "n_epochs": 3, "batch_size": 4, "crop_size": None, "sigma": 1.0,
        "progress": False, "device": "cpu"}


@pytest.fixture(scope="module")
def teacher():
    return FeatureExtractor("course", layers=("layer1",), device="cpu")


@pytest.fixture(scope="module")
def fitted(teacher):
    train, _ = _textures(8, seed=0)
    det = StudentTeacher(teacher, **{**FAST, "n_epochs": 10}).fit(train)
    return det, train


# --------------------------------------------------------------------------- the statistics
def test_scores_match_a_direct_numpy_computation():
    rng = np.random.default_rng(0)
    preds = rng.normal(size=(4, 2, 5, 3, 3))
    y = rng.normal(size=(2, 5, 3, 3))
    e, v = student_teacher_scores(preds, y)
    assert e.shape == v.shape == (2, 3, 3) and e.dtype == v.dtype == np.float64
    np.testing.assert_allclose(e, ((preds.mean(axis=0) - y) ** 2).sum(axis=1))
    np.testing.assert_allclose(v, np.var(preds, axis=0).sum(axis=1))  # ensemble variance
    # the lecture's form: mean of squared norms minus squared norm of the mean
    lecture = (preds ** 2).sum(axis=2).mean(axis=0) - (preds.mean(axis=0) ** 2).sum(axis=1)
    np.testing.assert_allclose(v, lecture, atol=1e-12)
    assert np.all(v >= 0) and np.all(e >= 0)
    # one location by hand: students (1, 1) and (3, 5), teacher (0, 0)
    p = np.array([[1.0, 1.0], [3.0, 5.0]]).reshape(2, 1, 2, 1, 1)
    e1, v1 = student_teacher_scores(p, np.zeros((1, 2, 1, 1)))
    assert e1.item() == pytest.approx(2**2 + 3**2)  # mean (2, 3)
    assert v1.item() == pytest.approx((1 + 4 + 1 + 4) / 2)  # deviations (+-1, +-2)


def test_one_student_has_zero_uncertainty():
    preds = np.random.default_rng(1).normal(size=(1, 2, 3, 4, 4))
    e, v = student_teacher_scores(preds, np.zeros((2, 3, 4, 4)))
    assert np.all(v == 0)
    np.testing.assert_allclose(e, (preds[0] ** 2).sum(axis=1))


def test_scores_shape_and_value_errors():
    y = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(M, n, C, h, w\)"):
        student_teacher_scores(np.zeros((2, 3, 4, 4)), y)
    with pytest.raises(ValueError, match=r"\(n, C, h, w\)"):
        student_teacher_scores(np.zeros((1, 2, 3, 4, 4)), y[0])
    with pytest.raises(ValueError, match=r"\(3, 2, 3, 4, 5\).*\(2, 3, 4, 4\)"):
        student_teacher_scores(np.zeros((3, 2, 3, 4, 5)), y)
    bad = np.zeros((2, 2, 3, 4, 4))
    bad[0, 0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        student_teacher_scores(bad, y)
    with pytest.raises(ValueError, match="NaN"):
        student_teacher_scores(np.zeros((2, 2, 3, 4, 4)), np.full_like(y, np.inf))


# --------------------------------------------------------------------------- the network
def test_student_net_output_grid():
    for n_down, size in ((0, 9), (2, 33), (3, 64)):
        net = StudentNet(1, 7, n_down)
        out = net(torch.zeros(2, 1, size, size))
        side = -(-size // 2**n_down)
        assert out.shape == (2, 7, side, side)


@pytest.mark.parametrize("n_down, n_context", [(0, 0), (0, 1), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0)])
def test_student_receptive_field_is_the_support_of_the_gradient(n_down, n_context):
    # the input pixels that can change the central output location span receptive_field
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = StudentNet(1, 5, n_down, n_context=n_context).double()
    x = torch.rand(1, 1, 256, 256, dtype=torch.float64, requires_grad=True)
    y = net(x)
    y[0, :, y.shape[-2] // 2, y.shape[-1] // 2].sum().backward()
    rows = np.flatnonzero((x.grad[0, 0] != 0).any(dim=1).numpy())
    assert rows[-1] - rows[0] + 1 == net.receptive_field == StudentNet.receptive_field_of(n_down, n_context)


def test_students_match_the_teachers_receptive_field():
    # the course backbone: layer1 + layer2 (layer2's 39 px, plus one layer2 cell of bilinear
    # upsampling) and layer2 alone (39 px; stride 8)
    train, _ = _textures(4, size=64, seed=0)
    stack = StudentTeacher(FeatureExtractor("course", layers=("layer1", "layer2"), device="cpu"),
                           **{**FAST, "n_students": 1, "n_epochs": 1}).fit(train)
    assert stack.teacher_receptive_field_ == 48 and stack.n_down_ == 2
    assert stack.students_[0].receptive_field == 51  # one context stage (19 px without, 107 with two)
    deep = StudentTeacher(FeatureExtractor("course", layers=("layer2",), device="cpu"),
                          **{**FAST, "n_students": 1, "n_epochs": 1}).fit(train)
    assert deep.teacher_receptive_field_ == 40 and deep.n_down_ == 3
    assert deep.students_[0].receptive_field == 43  # no context stage needed
    # the toy teacher sees its own 4 x 4 block only
    toy = StudentTeacher(BlockTeacher(), **{**FAST, "n_students": 1, "n_epochs": 1}).fit(train)
    assert toy.teacher_receptive_field_ == 4 and toy.students_[0].receptive_field == 19


def test_students_train_on_random_crops(teacher):
    from adcourse.protocol import random_crops

    train, _ = _textures(6, seed=0)
    det = StudentTeacher(teacher, **{**FAST, "crop_size": 16, "n_crops": 10, "n_epochs": 2}).fit(train)
    assert det.feature_shape_ == (32, 4, 4)  # the teacher's map of a 16 x 16 crop
    assert det.histories_[0].n_steps == 2 * 3  # ceil(10 crops / 4 per batch) steps per epoch
    # the crops: drawn from S (after the split) with the generator of the split
    rng = np.random.default_rng(0)
    val = np.sort(rng.permutation(6)[:2])
    crops = random_crops(np.delete(train, val, axis=0), 10, 16, random_state=rng)
    assert det.val_index_.tolist() == val.tolist()
    raw = teacher.embed(crops).astype(np.float64)
    np.testing.assert_allclose(det.teacher_mean_, raw.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-6)
    # whole images are scored, and e, v are normalised on the whole validation images
    e, v = det.normalized_scores(train[det.val_index_])
    assert e.shape == (2, 8, 8) and e.mean() == pytest.approx(0, abs=1e-6)
    # a crop larger than the images: the whole images
    whole = StudentTeacher(teacher, **{**FAST, "crop_size": 64, "n_crops": 4, "n_epochs": 1}).fit(train)
    assert whole.feature_shape_ == (32, 8, 8) and whole.histories_[0].n_steps == 1
    with pytest.raises(ValueError, match="crop_size"):
        StudentTeacher(teacher, **{**FAST, "crop_size": 1}).fit(train)


# --------------------------------------------------------------------------- the detector
def test_detector_finds_an_easy_defect(fitted):
    det, _ = fitted
    test, masks = _textures(6, seed=1, defect=True)
    maps = det.anomaly_map(test)
    assert maps.shape == test.shape and maps.dtype == np.float64
    assert maps[masks].mean() > maps[~masks].mean()
    assert pixel_roc_auc(maps, masks) > 0.9
    normal, _ = _textures(6, seed=2)
    scores = det.anomaly_score(np.concatenate([normal, test]))
    assert roc_auc(scores, np.r_[np.zeros(6), np.ones(6)]) > 0.9
    # both statistics are larger on the defect than elsewhere
    from skimage.transform import resize

    small = resize(masks.astype(float), (6, 8, 8), order=1) > 0.5
    for stat in (det.regression_error(test), det.uncertainty(test)):
        assert stat.shape == (6, 8, 8) and stat[small].mean() > stat[~small].mean()


def test_fitted_attributes(fitted):
    det, train = fitted
    c, h, w = det.feature_shape_
    assert (c, h, w) == (32, 8, 8)
    assert det.teacher_mean_.shape == det.teacher_std_.shape == (c,)
    assert np.all(det.teacher_std_ > 0)
    assert len(det.students_) == len(det.histories_) == 2
    assert all(not s.training for s in det.students_)
    for hist in det.histories_:
        assert len(hist.loss) == len(hist.val_loss) == 10
        assert hist.loss[-1] < hist.loss[0]
    # the students differ (different seeds)
    w0, w1 = (torch.cat([p.flatten() for p in s.parameters()]) for s in det.students_)
    assert not torch.equal(w0, w1)
    # validation and training images are disjoint; 25% of 8 images = 2
    assert det.val_index_.tolist() == sorted(set(det.val_index_.tolist())) and len(det.val_index_) == 2
    preds = det.predict_features(train[:3])
    assert preds.shape == (2, 3, c, h, w) and preds.dtype == np.float32
    # the teacher's features are standardised with the statistics of the training part S
    train_part = np.delete(train, det.val_index_, axis=0)
    y = det.teacher_features(train_part)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    live = det.teacher_std_ > 1e-3 * det.teacher_std_.mean() + 1e-12
    np.testing.assert_allclose(y.std(axis=(0, 2, 3))[live], 1, atol=1e-3)


def test_validation_normalisation(fitted):
    det, train = fitted
    val = train[det.val_index_]
    e, v = det.normalized_scores(val)
    for z in (e, v):
        assert z.mean() == pytest.approx(0, abs=1e-6)
        assert z.std() == pytest.approx(1, abs=1e-6)
    e_raw, v_raw = det.regression_error(val), det.uncertainty(val)
    assert e_raw.mean() == pytest.approx(det.e_mean_) and v_raw.std() == pytest.approx(det.v_std_)
    # the map is the upsampled sum of the two normalised statistics (no smoothing)
    plain = clone(det).set_params(sigma=0.0)
    plain.__dict__.update({k: v for k, v in det.__dict__.items() if k.endswith("_")})
    m = plain.anomaly_map(val)
    assert m.mean() == pytest.approx((e + v).mean(), abs=1e-6)


def test_determinism(teacher):
    train, _ = _textures(6, seed=0)
    test, _ = _textures(2, seed=1, defect=True)
    a = StudentTeacher(teacher, **FAST).fit(train).anomaly_map(test)
    b = StudentTeacher(teacher, **FAST).fit(train).anomaly_map(test)
    c = StudentTeacher(teacher, **FAST, random_state=1).fit(train).anomaly_map(test)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_teacher_is_frozen_and_global_rng_untouched(teacher):
    train, _ = _textures(4, seed=0)
    teacher.embed(train[:1])  # build the backbone before taking a snapshot
    before = {k: v.clone() for k, v in teacher.model_.state_dict().items()}
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    StudentTeacher(teacher, **FAST).fit(train)
    assert torch.equal(torch.random.get_rng_state(), state)
    after = teacher.model_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not teacher.model_.training


def test_default_teacher_and_clone():
    train, _ = _textures(4, seed=0)
    det = StudentTeacher(**FAST)
    assert det.fit(train).teacher is None  # hyper-parameters untouched (sklearn style)
    assert isinstance(det.teacher_, FeatureExtractor)
    assert det.teacher_.layers == ("layer1", "layer2")
    assert det.feature_shape_ == (32 + 64, 8, 8)
    assert clone(det).get_params() == det.get_params()


def test_toy_teacher_rgb_images_and_a_single_student():
    rgb = np.repeat(_textures(5, seed=0)[0][:, None], 3, axis=1)
    det = StudentTeacher(BlockTeacher(), **{**FAST, "n_students": 1}).fit(rgb)
    assert det.feature_shape_ == (2, 8, 8)
    assert det.students_[0].stages[0][0].in_channels == 3
    e, v = det.normalized_scores(rgb[:2])
    assert np.all(v == 0) and det.v_std_ == 0  # one student: no uncertainty term
    assert det.anomaly_map(rgb[:2]).shape == (2, 32, 32)


def test_errors(teacher):
    train, _ = _textures(4, seed=0)
    with pytest.raises(ValueError, match="at least 2 training images"):
        StudentTeacher(teacher, **FAST).fit(train[:1])
    det = StudentTeacher(BlockTeacher(), **FAST)
    with pytest.raises(NotFittedError):
        det.anomaly_map(train)
    det.fit(train)
    big, _ = _textures(2, size=48)  # another size is fine (location-free), other channels are not
    assert det.anomaly_map(big).shape == (2, 48, 48)
    assert det.predict_features(big).shape == (2, 2, 2, 12, 12)
    rgb = np.repeat(train[:, None], 3, axis=1)  # RGB after grayscale training
    with pytest.raises(ValueError, match="shaped like the training images"):
        det.anomaly_map(rgb)
    with pytest.raises(ValueError, match="channels of the training images"):
        det.predict_features(rgb)

    class ShiftedTeacher(BlockTeacher):  # another rounding of the grid than the students'
        def embed(self, images):
            feats = super().embed(images)
            return feats if images.shape[-1] == 32 else feats[..., :-1]

    shifted = StudentTeacher(ShiftedTeacher(), **FAST).fit(train)
    with pytest.raises(ValueError, match="the students give 12x12"):
        shifted.anomaly_map(big)
    for bad in ({"n_students": 0}, {"n_epochs": 0}, {"batch_size": 1.5}, {"lr": -1.0},
                {"validation_fraction": 1.0}, {"validation_fraction": 0}, {"sigma": -1.0},
                {"random_state": None}):
        with pytest.raises(ValueError):
            StudentTeacher(BlockTeacher(), **{**FAST, **bad}).fit(train)
    with pytest.raises(TypeError, match="embed"):
        StudentTeacher(teacher=object(), **FAST).fit(train)

    class OddTeacher:  # a 32-pixel image cannot give a 5x5 grid by halvings
        def embed(self, images):
            return np.zeros((len(images), 2, 5, 5))

    with pytest.raises(ValueError, match="power of 2"):
        StudentTeacher(OddTeacher(), **FAST).fit(train)
