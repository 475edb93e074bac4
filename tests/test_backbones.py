"""Tests of adcourse.deep.backbones: random-init networks on tiny inputs, never the network."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from adcourse.deep.backbones import FeatureExtractor, build_backbone, weights_cache_path  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((2, 3, 64, 64))


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor("resnet18", device="cpu")


def test_layer_shapes(fx, images):
    feats = fx.extract(images)
    assert list(feats) == ["layer1", "layer2", "layer3"]
    assert feats["layer1"].shape == (2, 64, 16, 16)
    assert feats["layer2"].shape == (2, 128, 8, 8)
    assert feats["layer3"].shape == (2, 256, 4, 4)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in feats.values())


def test_hooks_removed_and_second_extract_works(fx, images):
    a = fx.extract(images)
    b = fx.extract(images)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    for module in fx.model_.modules():
        assert len(module._forward_hooks) == 0
    assert not fx.model_.training


def test_matches_manual_forward(images):
    fx = FeatureExtractor("resnet18", layers=("layer4",), device="cpu")
    feats = fx.extract(images)
    m = fx.model_
    x = torch.as_tensor(images, dtype=torch.float32)
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        h = m.layer4(m.layer3(m.layer2(m.layer1(h))))
    np.testing.assert_allclose(feats["layer4"], h.numpy(), rtol=1e-5, atol=1e-5)


def test_embed_is_upsampled_concatenation(fx, images):
    feats = fx.extract(images)
    emb = fx.embed(images)
    assert emb.shape == (2, 64 + 128 + 256, 16, 16)
    np.testing.assert_array_equal(emb[:, :64], feats["layer1"])
    up2 = torch.nn.functional.interpolate(torch.from_numpy(feats["layer2"]), size=(16, 16),
                                          mode="bilinear", align_corners=False).numpy()
    up3 = torch.nn.functional.interpolate(torch.from_numpy(feats["layer3"]), size=(16, 16),
                                          mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(emb[:, 64:192], up2, atol=1e-6)
    np.testing.assert_allclose(emb[:, 192:], up3, atol=1e-6)


def test_batches_give_same_result(images):
    a = FeatureExtractor("resnet18", layers=("layer2",), device="cpu", batch_size=1).extract(images)
    b = FeatureExtractor("resnet18", layers=("layer2",), device="cpu", batch_size=16).extract(images)
    np.testing.assert_allclose(a["layer2"], b["layer2"], rtol=1e-4, atol=1e-5)


def test_grayscale_equals_replicated_rgb(fx):
    gray = np.random.default_rng(1).random((2, 64, 64))
    rgb = np.repeat(gray[:, None], 3, axis=1)
    a, b = fx.extract(gray), fx.extract(rgb)
    c = fx.extract(gray[:, None])
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_array_equal(a[name], c[name])


def test_seed_determinism_and_no_global_rng_side_effect(images):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = FeatureExtractor("resnet18", layers=("layer1",), random_state=3, device="cpu").extract(images)
    after = torch.rand(1)
    assert torch.equal(before, after)  # building the backbone leaves torch's global RNG alone
    b = FeatureExtractor("resnet18", layers=("layer1",), random_state=3, device="cpu").extract(images)
    c = FeatureExtractor("resnet18", layers=("layer1",), random_state=4, device="cpu").extract(images)
    np.testing.assert_array_equal(a["layer1"], b["layer1"])
    assert not np.allclose(a["layer1"], c["layer1"])


def test_channel_selection(images):
    fx = FeatureExtractor("resnet18", layers=("layer1", "layer2"), n_channels=50, random_state=0,
                          device="cpu")
    emb = fx.embed(images)
    assert emb.shape == (2, 50, 16, 16)
    idx = fx.channel_index_
    assert idx.shape == (50,) and len(np.unique(idx)) == 50 and idx.max() < 192
    full = FeatureExtractor("resnet18", layers=("layer1", "layer2"), device="cpu").embed(images)
    np.testing.assert_array_equal(emb, full[:, idx])
    fx2 = FeatureExtractor("resnet18", layers=("layer1", "layer2"), n_channels=50, random_state=0,
                           device="cpu")
    fx2.embed(images)
    np.testing.assert_array_equal(fx2.channel_index_, idx)
    # the same selection is reused on later calls
    np.testing.assert_array_equal(fx.embed(images), emb)
    with pytest.raises(ValueError, match="n_channels"):
        FeatureExtractor("resnet18", layers=("layer1",), n_channels=1000, device="cpu").embed(images)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((64, 64)), "shape"),
    (np.zeros((2, 2, 64, 64)), "shape"),
    (np.full((2, 64, 64), 2.0), r"\[0, 1\]"),
    (-np.ones((2, 3, 64, 64)), r"\[0, 1\]"),
])
def test_bad_images(fx, bad, match):
    with pytest.raises(ValueError, match=match):
        fx.extract(bad)


def test_unknown_layer_lists_valid_names(images):
    fx = FeatureExtractor("resnet18", layers=("layer1", "layer9"), device="cpu")
    with pytest.raises(ValueError) as err:
        fx.extract(images)
    msg = str(err.value)
    assert "layer9" in msg
    for name in ("conv1", "layer1", "layer2", "layer3", "layer4", "fc"):
        assert name in msg


def test_unknown_backbone_and_weights():
    with pytest.raises(ValueError, match="resnet18"):
        build_backbone("vgg")
    with pytest.raises(ValueError, match="imagenet"):
        build_backbone("resnet18", weights="coco")


def test_build_backbone_eval_mode():
    m = build_backbone("resnet18")
    assert isinstance(m, torchvision.models.ResNet) and not m.training


def test_offline_imagenet_weights_error(monkeypatch, tmp_path):
    """No cached weights, download fails: a clear RuntimeError, and no network is touched."""
    import torchvision.models._api as api

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(api, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(RuntimeError) as err:
        build_backbone("resnet18", weights="imagenet")
    msg = str(err.value)
    path = weights_cache_path("resnet18")
    assert path.startswith(str(tmp_path / "checkpoints"))
    assert path.endswith(".pth")
    assert "could not be loaded" in msg
    assert path in msg
    assert "torchvision.models.resnet18(weights='IMAGENET1K_V1')" in msg
    assert isinstance(err.value.__cause__, OSError)
    with pytest.raises(RuntimeError, match="could not be loaded"):
        FeatureExtractor("resnet18", weights="imagenet", device="cpu").extract(
            np.zeros((1, 64, 64)))
