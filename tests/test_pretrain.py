"""The course backbone (adcourse.deep.pretrain): shipped weights, checksum, features, training."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adcourse.deep.backbones import FeatureExtractor  # noqa: E402
from adcourse.deep.pretrain import (  # noqa: E402
    DEFAULT_FOLDER, SETTINGS_FILE, TARGET_NAMES, WEIGHTS_FILE, ZOO_CLASSES, CourseNet,
    dense_targets, evaluate_zoo_accuracy, load_course_backbone, make_texture_zoo, make_zoo_mosaic,
    save_backbone, train_course_backbone,
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def shipped():
    return load_course_backbone()


def test_shipped_files_small_and_settings_recorded():
    pt, js = DEFAULT_FOLDER / WEIGHTS_FILE, DEFAULT_FOLDER / SETTINGS_FILE
    assert pt.is_file() and js.is_file()
    assert pt.stat().st_size < 2 * 2**20  # float16 storage
    assert json.loads(js.read_text())["weights_dtype"] == "float16"
    info = json.loads(js.read_text())
    for key in ("n_steps", "batch_size", "lr", "seed", "classes", "final_train_accuracy",
                "heldout_accuracy", "heldout_statistics_r2", "task", "torch_version", "sha256"):
        assert key in info
    assert info["classes"] == list(ZOO_CLASSES)


def test_shipped_weights_load(shipped):
    assert isinstance(shipped, CourseNet)
    assert not shipped.training
    assert sum(p.numel() for p in shipped.parameters()) < 1_000_000


def test_tampered_or_missing_file_gives_clear_error(tmp_path):
    folder = tmp_path / "bb"
    shutil.copytree(DEFAULT_FOLDER, folder)
    load_course_backbone(folder)  # intact copy loads
    with open(folder / WEIGHTS_FILE, "r+b") as f:
        f.seek(-10, 2)
        last = f.read(1)
        f.seek(-10, 2)
        f.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(RuntimeError, match="checksum mismatch.*python -m adcourse.deep.pretrain"):
        load_course_backbone(folder)
    (folder / WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="python -m adcourse.deep.pretrain"):
        load_course_backbone(folder)


def test_feature_extractor_shapes(shipped):
    images = np.random.default_rng(0).random((2, 64, 64))
    fx = FeatureExtractor(backbone=shipped, layers=("layer1", "layer2", "layer3"), device="cpu")
    emb = fx.embed(images)
    assert emb.shape == (2, 32 + 64 + 128, 16, 16)
    assert np.isfinite(emb).all()
    feats = fx.extract(images)
    assert feats["layer1"].shape == (2, 32, 16, 16)
    assert feats["layer2"].shape == (2, 64, 8, 8)
    assert feats["layer3"].shape == (2, 128, 4, 4)
    # an untrained CourseNet works the same way
    emb0 = FeatureExtractor(backbone=CourseNet(), layers=("layer1", "layer2", "layer3"),
                            device="cpu").embed(images)
    assert emb0.shape == emb.shape


def test_zoo_deterministic_and_balanced():
    X1, y1 = make_texture_zoo(3, 64, random_state=5)
    X2, y2 = make_texture_zoo(3, 64, random_state=5)
    X3, _ = make_texture_zoo(3, 64, random_state=6)
    assert X1.shape == (3 * len(ZOO_CLASSES), 64, 64) and X1.dtype == np.float32
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert np.bincount(y1, minlength=len(ZOO_CLASSES)).tolist() == [3] * len(ZOO_CLASSES)
    assert X1.min() >= 0 and X1.max() <= 1


def test_short_training_lowers_loss_and_is_deterministic(tmp_path):
    model, hist = train_course_backbone(n_steps=30, batch_size=16, lr=3e-3, random_state=0,
                                        progress=False)
    loss = hist["loss"]
    assert len(loss) == 30
    assert np.mean(loss[-5:]) < np.mean(loss[:5])
    _, hist2 = train_course_backbone(n_steps=3, batch_size=8, random_state=1, progress=False)
    _, hist3 = train_course_backbone(n_steps=3, batch_size=8, random_state=1, progress=False)
    assert hist2["loss"] == hist3["loss"]
    js = save_backbone(model, tmp_path, {"n_steps": 30})
    assert json.loads(js.read_text())["n_steps"] == 30
    reloaded = load_course_backbone(tmp_path)
    assert reloaded.stem[0].weight.dtype == torch.float32
    # stored in float16: the reloaded weights are exactly the float16-rounded ones
    for (name, a), b in zip(model.state_dict().items(), reloaded.state_dict().values()):
        expected = a.half().float() if a.is_floating_point() else a
        assert torch.equal(b, expected), name
    assert (tmp_path / WEIGHTS_FILE).stat().st_size < 0.6 * 4 * sum(p.numel() for p in model.parameters())


def test_shipped_model_well_above_chance(shipped):
    # per-location family accuracy: chance is 1/12 ~ 0.083 (the JSON records ~0.75 on 200
    # mosaics); R^2 of the five local statistics: 0 for a constant guess (JSON: ~0.85)
    acc, r2 = evaluate_zoo_accuracy(shipped, n_images=40, random_state=123)
    assert acc > 0.5
    assert r2 > 0.6
    untrained_acc, untrained_r2 = evaluate_zoo_accuracy(CourseNet().eval(), n_images=20,
                                                        random_state=123)
    assert untrained_acc < 0.3 and untrained_r2 < 0.3


def test_mosaic_deterministic_with_valid_labels():
    a = make_zoo_mosaic(64, np.random.default_rng(4))
    b = make_zoo_mosaic(64, np.random.default_rng(4))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (64, 64) and a[0].dtype == np.float32
    assert a[0].min() >= 0 and a[0].max() <= 1
    assert a[1].shape == (64, 64) and set(np.unique(a[1])) <= set(range(len(ZOO_CLASSES)))
    # over many draws, some mosaics hold several families
    counts = [len(np.unique(make_zoo_mosaic(32, np.random.default_rng(s))[1])) for s in range(12)]
    assert max(counts) >= 2 and min(counts) == 1


def test_dense_targets_on_known_images():
    n, size = 3, 32
    yy, xx = np.mgrid[:size, :size]
    flat = np.full((size, size), 0.7)
    stripes = 0.5 + 0.4 * np.sin(2 * np.pi * xx / 6.0)  # vertical stripes: perfectly oriented
    noise = np.random.default_rng(0).random((size, size))
    images = np.stack([flat, stripes, noise])
    labels = np.stack([np.full((size, size), k) for k in range(n)])
    classes, stats = dense_targets(images, labels)
    assert classes.shape == (n, 8, 8) and stats.shape == (n, len(TARGET_NAMES), 8, 8)
    np.testing.assert_array_equal(classes[:, 0, 0], [0, 1, 2])
    i_mean, i_std, i_fine, i_grad, i_coh = range(5)
    np.testing.assert_allclose(stats[0, i_mean], (0.7 - 0.5) / 0.25, atol=1e-6)
    # the flat image has the lowest contrast, grain and gradient energy
    for k in (i_std, i_fine, i_grad):
        assert stats[0, k].mean() < stats[1, k].mean() - 1
        assert stats[0, k].mean() < stats[2, k].mean() - 1
    # coherence (rescaled from [0, 1]): ~1 for stripes, lower for noise
    coh = stats[:, i_coh] * 0.25 + 0.5
    assert coh[1, 1:-1, 1:-1].min() > 0.95
    assert coh[2].mean() < 0.6
    # fine grain: white noise has far more energy above the blur scale than smooth stripes
    assert stats[2, i_fine].mean() > stats[1, i_fine].mean() + 0.5  # rms ratio > e^0.5
