"""Inpainting (RIAD): the tile masks partition the image, the identity cannot inpaint, the loss is
chapter 6's pieces, the detector finds a defect on a regular texture, any test size, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from adcourse.decision import smooth_maps
from adcourse.deep.inpainting import InpaintingDetector, _hidden_tiles, inpaint, inpainting_loss, tile_masks
from adcourse.deep.losses import msgms, ssim
from adcourse.metrics import pixel_roc_auc

torch.set_num_threads(1)
FAST = {"tile_sizes": (2, 4, 8), "widths": (8, 16), "crop_size": None, "n_epochs": 15, "batch_size": 8, "lr": 3e-3,
        "n_mask_sets": 1, "sigma": 1.0, "progress": False, "device": "cpu"}


def _gratings(n, size=32, seed=0, defect=False):
    """Vertical gratings with a random phase and a little noise; defects are bright 6x6 squares."""
    rng = np.random.default_rng(seed)
    xx = np.arange(size)[None, :]
    images, masks = [], []
    for _ in range(n):
        img = 0.5 + 0.3 * np.sin(2 * np.pi * xx / 6 + rng.uniform(0, 2 * np.pi)) + rng.normal(0, 0.02, (size, size))
        mask = np.zeros((size, size), bool)
        if defect:
            r, c = rng.integers(4, size - 10, 2)
            mask[r:r + 6, c:c + 6] = True
            img[mask] = 0.97
        images.append(np.clip(img, 0, 1))
        masks.append(mask)
    return np.array(images), np.array(masks)


@pytest.fixture(scope="module")
def fitted():
    train, _ = _gratings(16, seed=0)
    return InpaintingDetector(**FAST).fit(train)


# --------------------------------------------------------------------------- masks
@pytest.mark.parametrize("shape, k, n", [((8, 8), 2, 3), ((10, 7), 4, 2), ((32, 32), 8, 3), ((6, 9), 1, 4)])
def test_tile_masks_partition_the_image_into_balanced_sets_of_whole_tiles(shape, k, n):
    M = tile_masks(shape, k, n, random_state=1)
    assert M.shape == (n,) + shape and set(np.unique(M)) <= {0.0, 1.0}
    np.testing.assert_array_equal((1 - M).sum(axis=0), 1.0)           # every pixel hidden exactly once
    gh, gw = -(-shape[0] // k), -(-shape[1] // k)
    tiles = np.zeros((n, gh, gw))
    for i in range(n):
        for a in range(gh):
            for b in range(gw):
                block = M[i, a * k:(a + 1) * k, b * k:(b + 1) * k]
                assert block.min() == block.max()                     # a tile is hidden or visible as a whole
                tiles[i, a, b] = 1 - block[0, 0]
    counts = tiles.sum(axis=(1, 2))
    assert counts.max() - counts.min() <= 1 and counts.sum() == gh * gw


def test_tile_masks_are_random_and_seeded():
    a = tile_masks((16, 16), 2, 3, random_state=0)
    np.testing.assert_array_equal(a, tile_masks((16, 16), 2, 3, random_state=0))
    assert not np.array_equal(a, tile_masks((16, 16), 2, 3, random_state=1))
    hidden = _hidden_tiles(4, (16, 16), 2, 3, generator=torch.Generator().manual_seed(0))
    assert hidden.shape == (4, 3, 16, 16)
    assert not torch.equal(hidden[0], hidden[1])                          # each image its own masks


def test_tile_masks_errors():
    with pytest.raises(ValueError, match="cannot be shared"):
        tile_masks((8, 8), 8, 3)                                           # one tile, three masks
    with pytest.raises(ValueError, match="n_masks >= 2"):
        tile_masks((8, 8), 2, 1)
    with pytest.raises(ValueError, match="tile_size"):
        tile_masks((8, 8), 0, 3)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        tile_masks(8, 2, 3)


# --------------------------------------------------------------------------- reconstruction and loss
def test_inpaint_keeps_each_output_where_its_input_was_hidden():
    x = torch.rand(2, 1, 8, 8)
    masks = 1 - _hidden_tiles(2, (8, 8), 2, 3, generator=torch.Generator().manual_seed(0)).float()
    # the identity network returns its (masked) input: every pixel comes from the input that hid it -> 0
    assert torch.equal(inpaint(torch.nn.Identity(), x, masks), torch.zeros_like(x))

    class Plus(torch.nn.Module):          # a network that sees its input: f(s * M) = s * M + 1
        def forward(self, z):
            return z + 1.0

    np.testing.assert_allclose(inpaint(Plus(), x, masks).numpy(), 1.0)
    by_hand = sum((x * masks[:, i:i + 1] + 1.0) * (1 - masks[:, i:i + 1]) for i in range(3))
    torch.testing.assert_close(inpaint(Plus(), x, masks), by_hand)


def test_inpainting_loss_is_l2_plus_weighted_structural_terms():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 1, 24, 24, generator=g), torch.rand(3, 1, 24, 24, generator=g)
    expected = F.mse_loss(y, x) + 0.5 * (1 - ssim(x, y).value) + 2.0 * (1 - msgms(x, y).value)
    torch.testing.assert_close(inpainting_loss(x, y, 0.5, 2.0), expected)
    assert float(inpainting_loss(x, x)) == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------- the detector
def test_the_detector_finds_a_defect_the_texture_cannot_explain(fitted):
    test, masks = _gratings(6, seed=1, defect=True)
    maps = fitted.anomaly_map(test)
    assert maps.shape == test.shape and np.isfinite(maps).all()
    assert pixel_roc_auc(maps, masks) > 0.85
    np.testing.assert_allclose(fitted.anomaly_score(test), maps.max(axis=(1, 2)))


def test_the_inpainting_of_normal_images_is_close_and_of_the_defect_is_not(fitted):
    normal, _ = _gratings(3, seed=2)
    defect, masks = _gratings(3, seed=3, defect=True)
    err_normal = np.abs(fitted.inpainted(normal, tile_size=4) - normal).mean()
    err = np.abs(fitted.inpainted(defect, tile_size=4) - defect)
    assert err[masks].mean() > 3 * err_normal                 # the network paints grating over the square


def test_map_is_the_smoothed_mean_of_the_tile_maps(fitted):
    test, _ = _gratings(2, seed=4, defect=True)
    tm = fitted.tile_maps(test)
    assert tm.shape == (3, 2, 32, 32)
    np.testing.assert_allclose(fitted.anomaly_map(test), smooth_maps(tm.mean(axis=0), 1.0))
    np.testing.assert_array_equal(fitted.anomaly_map(test), fitted.anomaly_map(test))   # seeded masks


def test_any_test_size_and_channels():
    big, _ = _gratings(2, size=48, seed=5)
    train, _ = _gratings(8, seed=0)
    det = InpaintingDetector(**{**FAST, "n_epochs": 1}).fit(train)
    assert det.anomaly_map(big).shape == (2, 48, 48)
    rgb = np.repeat(train[:, None], 3, axis=1)
    det3 = InpaintingDetector(**{**FAST, "n_epochs": 1}).fit(rgb)
    assert det3.anomaly_map(rgb[:2]).shape == (2, 32, 32)
    with pytest.raises(ValueError, match="shaped like the training images"):
        det3.anomaly_map(train[:2])


def test_same_seed_same_model_and_clone():
    train, _ = _gratings(8, seed=0)
    a = InpaintingDetector(**{**FAST, "n_epochs": 2}).fit(train).anomaly_map(train[:2])
    b = InpaintingDetector(**{**FAST, "n_epochs": 2}).fit(train).anomaly_map(train[:2])
    np.testing.assert_array_equal(a, b)
    det = InpaintingDetector(tile_sizes=(4, 8), n_masks=4)
    assert clone(det).get_params() == det.get_params()


def test_the_learning_rate_schedule_reaches_the_training_loop():
    train, _ = _gratings(8, seed=0)
    maps = [InpaintingDetector(**{**FAST, "n_epochs": 2, "schedule": schedule}).fit(train).anomaly_map(train[:2])
            for schedule in ("constant", "cosine", "cosine")]
    np.testing.assert_array_equal(maps[1], maps[2])
    assert np.abs(maps[0] - maps[1]).max() > 1e-4
    with pytest.raises(ValueError, match="schedule"):
        InpaintingDetector(**{**FAST, "schedule": "step"}).fit(train)


def test_detector_errors():
    train, _ = _gratings(4, seed=0)
    with pytest.raises(NotFittedError):
        InpaintingDetector().anomaly_map(train)
    with pytest.raises(ValueError, match="cannot be shared"):
        InpaintingDetector(**{**FAST, "tile_sizes": (32,)}).fit(train)
    with pytest.raises(ValueError, match="n_masks"):
        InpaintingDetector(**{**FAST, "n_masks": 1}).fit(train)
    with pytest.raises(ValueError, match="at least 2"):
        InpaintingDetector(**FAST).fit(train[:1])
    with pytest.raises(ValueError, match="lambda_ssim"):
        InpaintingDetector(**{**FAST, "lambda_ssim": -1}).fit(train)
    det = InpaintingDetector(**{**FAST, "n_epochs": 1}).fit(train)
    with pytest.raises(ValueError, match="cannot be shared"):
        det.anomaly_map(np.zeros((1, 8, 8)))                                  # 8 px tiles on 8 px images


def test_the_three_pixel_scores(fitted):
    test, _ = _gratings(2, seed=6, defect=True)
    maps = {}
    try:
        for score in ("msgms", "ssim", "loss"):      # the score is used at test time only: no refit
            maps[score] = fitted.set_params(score=score).tile_maps(test)
    finally:
        fitted.set_params(score="msgms")
    x = torch.as_tensor(test[:, None], dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    hidden = _hidden_tiles(2, (32, 32), 2, 3, generator=gen)             # the first mask set of tile size 2
    x_hat = inpaint(fitted.model_, x, 1.0 - hidden.float())
    with torch.no_grad():
        np.testing.assert_allclose(maps["msgms"][0], (1 - msgms(x, x_hat).map[:, 0]).numpy(), atol=1e-5)
        np.testing.assert_allclose(maps["ssim"][0], (1 - ssim(x, x_hat).map[:, 0]).numpy(), atol=1e-5)
    l2 = maps["loss"] - maps["ssim"] - maps["msgms"]                      # lambda_S = lambda_G = 1
    assert l2.min() > -1e-5 and l2.max() < 1.0
    with pytest.raises(ValueError, match="score must be"):
        InpaintingDetector(**{**FAST, "score": "l1"}).fit(test)
