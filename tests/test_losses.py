"""Image similarity losses equal well-kept references: torchmetrics, scikit-image, direct numpy."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity
from skimage.transform import resize
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure as tm_ms_ssim,
)
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from adcourse.deep.losses import (
    MS_SSIM_BETAS,
    cw_ssim,
    gaussian_window,
    gms,
    ms_ssim,
    msgms,
    n_scales_that_fit,
    reconstruction_loss,
    ssim,
    steerable_pyramid_masks,
)

torch.set_num_threads(1)


def _pair(size, n=3, seed=0, channels=1):
    """Images and a degraded copy (correlated, so SSIM is well inside (0, 1)), float64."""
    rng = np.random.default_rng(seed)
    x = ndimage.uniform_filter(rng.random((n, channels, size, size)), (0, 0, 3, 3))
    y = np.clip(0.7 * x + 0.3 * rng.random(x.shape) + 0.05, 0, 1)
    x[0, :, :6, :6] = 0.0  # a flat patch: zero variance and zero gradients in both
    y[0, :, :6, :6] = 0.0
    return torch.as_tensor(x), torch.as_tensor(y)


@pytest.mark.parametrize("size", [28, 32, 64, 128])
def test_ssim_equals_torchmetrics(size):
    x, y = _pair(size)
    ours = ssim(x, y)
    value, full = tm_ssim(y, x, data_range=1.0, return_full_image=True)
    assert abs(float(ours.value) - float(value)) < 1e-5
    np.testing.assert_allclose(ours.map.numpy(), full.numpy(), atol=1e-5)
    # float32, colour images and (n, H, W) batches give the same numbers
    x3, y3 = _pair(size, channels=3)
    assert abs(float(ssim(x3.float(), y3.float()).value) - float(tm_ssim(y3, x3, data_range=1.0))) < 1e-5
    np.testing.assert_allclose(ssim(x[:, 0], y[:, 0]).map.numpy(), ours.map[:, 0].numpy(), atol=1e-12)


def test_ssim_map_equals_scikit_image_and_a_direct_computation():
    x, y = _pair(40)
    ours = ssim(x, y).map.numpy()[:, 0]
    for k in range(len(x)):
        a, b = x[k, 0].numpy(), y[k, 0].numpy()
        _, S = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1.0, full=True)
        # scikit-image pads with 'reflect' (edge pixel repeated), we with torch's reflect (= scipy's
        # 'mirror'): the maps agree wherever the window stays inside the image
        np.testing.assert_allclose(ours[k, 5:-5, 5:-5], S[5:-5, 5:-5], atol=1e-5)

        # the whole map, borders included, from the formula with scipy's 'mirror' Gaussian filter
        def blur(z):
            return ndimage.gaussian_filter(z, 1.5, truncate=3.5, mode="mirror")

        mx, my = blur(a), blur(b)
        vx, vy = np.maximum(blur(a * a) - mx**2, 0), np.maximum(blur(b * b) - my**2, 0)
        cxy = blur(a * b) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        direct = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        np.testing.assert_allclose(ours[k], direct, atol=1e-5)


def test_ssim_properties_and_data_range():
    x, y = _pair(32)
    assert float(ssim(x, x).value) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(x, y).value) == pytest.approx(float(ssim(y, x).value), abs=1e-12)  # symmetric
    assert float(ssim(x, y).value) < 0.99
    # data_range enters the constants only: images scaled by 255 with data_range 255 give the same map
    np.testing.assert_allclose(ssim(255 * x, 255 * y, data_range=255.0).map.numpy(), ssim(x, y).map.numpy(),
                               atol=1e-10)
    assert abs(float(ssim(x, y, data_range=2.0).value) - float(tm_ssim(y, x, data_range=2.0))) < 1e-5
    w = gaussian_window()
    assert w.numel() == 11 and float(w.sum()) == pytest.approx(1.0) and torch.argmax(w) == 5


@pytest.mark.parametrize("size", [28, 32, 64, 128])
def test_ms_ssim_equals_torchmetrics(size):
    x, y = _pair(size)
    m = n_scales_that_fit(size, size)
    assert m == {28: 3, 32: 3, 64: 4, 128: 5}[size]
    betas = np.asarray(MS_SSIM_BETAS[:m])
    betas = tuple(float(b) for b in betas / betas.sum())
    # torchmetrics checks image sizes with its kernel_size argument, not with the Gaussian window it
    # builds from sigma (11 taps for sigma = 1.5): a small kernel_size lets it run on 28-64 px images
    ref = tm_ms_ssim(y, x, data_range=1.0, betas=betas, kernel_size=3)
    ours = ms_ssim(x, y)
    assert abs(float(ours.value) - float(ref)) < 1e-5
    assert ours.map.shape == x.shape
    # without clipping (torchmetrics' normalize=None) the numbers are the same on these images
    ref_none = tm_ms_ssim(y, x, data_range=1.0, betas=betas, kernel_size=3, normalize=None)
    assert abs(float(ours.value) - float(ref_none)) < 1e-5


def test_ms_ssim_scales():
    x, y = _pair(64)
    # one scale is SSIM (negative values clipped to 0 before the fractional powers)
    assert float(ms_ssim(x, y, n_scales=1).value) == pytest.approx(float(ssim(x, y).value), abs=1e-12)
    np.testing.assert_allclose(ms_ssim(x, y, n_scales=1).map.numpy(), ssim(x, y).map.clamp_min(0).numpy(),
                               atol=1e-12)
    assert float(ms_ssim(x, x).value) == pytest.approx(1.0, abs=1e-10)
    with pytest.raises(ValueError, match="do not fit"):
        ms_ssim(x, y, n_scales=5)
    with pytest.raises(ValueError, match="n_scales"):
        ms_ssim(x, y, n_scales=0)
    # 8x8 digits: one scale only
    assert n_scales_that_fit(8, 8) == 1
    assert ms_ssim(x[..., :8, :8], y[..., :8, :8]).map.shape == (3, 1, 8, 8)


def _np_gms(a, b, c=0.0026):
    hx = np.array([[1.0, 0.0, -1.0]] * 3) / 3

    def grad(z):
        return np.hypot(ndimage.correlate(z, hx, mode="mirror"), ndimage.correlate(z, hx.T, mode="mirror"))

    ga, gb = grad(a), grad(b)
    return (2 * ga * gb + c) / (ga**2 + gb**2 + c)


def _np_pool(z):
    h, w = z.shape[0] // 2 * 2, z.shape[1] // 2 * 2
    return z[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


@pytest.mark.parametrize("size", [28, 33, 64])
def test_gms_and_msgms_equal_a_direct_numpy_computation(size):
    x, y = _pair(size)
    ours = gms(x, y)
    ref = np.stack([_np_gms(a[0], b[0]) for a, b in zip(x.numpy(), y.numpy())])
    np.testing.assert_allclose(ours.map.numpy()[:, 0], ref, atol=1e-5)
    assert float(ours.value) == pytest.approx(ref.mean(), abs=1e-5)
    ms = msgms(x, y)
    refs = []
    for a, b in zip(x.numpy()[:, 0], y.numpy()[:, 0]):
        total = np.zeros_like(a)
        for j in range(4):  # RIAD: the image and 3 average-pooled versions, upsampled bilinearly
            g = _np_gms(a, b)
            total += g if j == 0 else resize(g, (size, size), order=1, mode="edge", anti_aliasing=False)
            a, b = _np_pool(a), _np_pool(b)
        refs.append(total / 4)
    np.testing.assert_allclose(ms.map.numpy()[:, 0], np.stack(refs), atol=1e-5)
    # the value is RIAD's: the mean over the scales of each scale's mean GMS
    scale_means = []
    a, b = x.numpy()[:, 0], y.numpy()[:, 0]
    for j in range(4):
        scale_means.append(np.mean([_np_gms(u, v) for u, v in zip(a, b)]))
        a, b = np.stack([_np_pool(u) for u in a]), np.stack([_np_pool(v) for v in b])
    assert float(ms.value) == pytest.approx(np.mean(scale_means), abs=1e-5)
    assert float(ms.value) == pytest.approx(float(ms.map.mean()), abs=0.02)
    assert msgms(x, y, full=False).map is None and float(msgms(x, y, full=False).value) == float(ms.value)
    assert float(msgms(x, y, n_scales=1).value) == pytest.approx(float(ours.value), abs=1e-12)


def test_gradients_are_finite_on_flat_and_zero_images():
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    for f in (ssim, ms_ssim, gms, msgms):
        for target in (torch.zeros(2, 1, 32, 32), 1 - x.detach()):  # flat; anti-correlated (cs < 0)
            x.grad = None
            (1 - f(x, target).value).backward()
            assert torch.isfinite(x.grad).all(), f.__name__
    # a loss that is minimised by the identity: its gradient is ~0 there
    x.grad = None
    reconstruction_loss(x, x.detach(), "ms_ssim").value.backward()
    assert float(x.grad.abs().max()) < 1e-6


def test_reconstruction_loss_map_and_value():
    x, y = _pair(32)
    for kind, f in (("ssim", ssim), ("ms_ssim", ms_ssim), ("gms", gms), ("msgms", msgms)):
        out = reconstruction_loss(x, y, kind, weight=0.5)
        sq = ((x - y) ** 2)[:, 0]
        np.testing.assert_allclose(out.map.numpy(), (sq + 0.5 * (1 - f(x, y).map[:, 0])).numpy(), atol=1e-12)
        assert float(out.value) == pytest.approx(float(sq.mean() + 0.5 * (1 - f(x, y).value)), abs=1e-12)
        light = reconstruction_loss(x, y, kind, weight=0.5, full=False)
        assert light.map is None and float(light.value) == pytest.approx(float(out.value), abs=1e-12)
    l2 = reconstruction_loss(x, y, "l2")
    assert l2.map.shape == (3, 32, 32) and float(l2.value) == pytest.approx(float(((x - y) ** 2).mean()))
    assert float(reconstruction_loss(x, x, "ssim").value) == pytest.approx(0.0, abs=1e-10)


def test_bad_input():
    x, y = _pair(32)
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, y[:, :, :30])
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        ssim(x[0, 0], y[0, 0])
    with pytest.raises(ValueError, match="larger than half the window"):
        ssim(x[..., :5, :5], y[..., :5, :5])
    with pytest.raises(ValueError, match="data_range"):
        ssim(x, y, data_range=0)
    with pytest.raises(ValueError, match="window_size"):
        ssim(x, y, window_size=10)
    with pytest.raises(TypeError, match="x must be"):
        gms([["a"]], y)
    with pytest.raises(ValueError, match="loss must be one of"):
        reconstruction_loss(x, y, "l1")
    with pytest.raises(ValueError, match="weight"):
        reconstruction_loss(x, y, "ssim", weight=-1)
    with pytest.raises(ValueError, match="do not fit"):
        msgms(x[..., :4, :4], y[..., :4, :4], n_scales=3)


# --------------------------------------------------------------------------- #
# CW-SSIM and its complex steerable pyramid
# --------------------------------------------------------------------------- #
def _negative_frequencies(m):
    """m(-omega) on the FFT grid: index k -> (-k) mod n on the last two axes."""
    return torch.roll(torch.flip(m, (-2, -1)), (1, 1), (-2, -1))


@pytest.mark.parametrize("shape, n_scales, n_orientations", [((32, 32), 2, 4), ((40, 36), 3, 4), ((48, 48), 3, 6)])
def test_steerable_pyramid_is_a_tight_frame(shape, n_scales, n_orientations):
    hp, bands, lp = steerable_pyramid_masks(*shape, n_scales, n_orientations, dtype=torch.float64)
    assert bands.shape == (n_scales * n_orientations, *shape)
    neg = _negative_frequencies(bands)
    assert float((bands * neg).abs().max()) < 1e-12  # one-sided: complex (analytic) coefficients
    total = hp**2 + 0.25 * (bands**2 + neg**2).sum(0) + lp**2
    np.testing.assert_allclose(total.numpy(), 1.0, atol=1e-12)
    # perfect reconstruction: high-pass + real parts of the bands + low-pass, each filtered again
    x = torch.as_tensor(np.random.default_rng(0).random((2, 1, *shape)))
    f = torch.fft.fft2(x)
    real_parts = torch.fft.ifft2(f[:, :, None] * bands).real
    again = torch.fft.ifft2(torch.fft.fft2(real_parts) * 0.5 * (bands + neg)).real.sum(2)
    rebuilt = torch.fft.ifft2(f * hp**2).real + again + torch.fft.ifft2(f * lp**2).real
    np.testing.assert_allclose(rebuilt.numpy(), x.numpy(), atol=1e-12)


def test_cw_ssim_known_cases():
    x, _ = _pair(48, seed=2)
    x = x[1:]  # no flat patch: the index without K is defined everywhere
    assert float(cw_ssim(x, x).value) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(cw_ssim(x, x + 0.2).map.numpy(), 1.0, atol=1e-12)  # brightness never reaches the bands
    for a in (0.3, 0.5, 0.8):  # contrast: 2a / (1 + a^2) at every pixel when K = 0
        np.testing.assert_allclose(cw_ssim(x, a * x, k=0.0).map.numpy(), 2 * a / (1 + a * a), atol=1e-10)
    # a translation by one pixel: a phase shift of the coefficients, which CW-SSIM tolerates and SSIM does not
    fibres = torch.zeros(1, 1, 48, 48, dtype=torch.float64)
    fibres[..., ::6, :] = 1.0
    fibres = torch.as_tensor(ndimage.gaussian_filter(fibres.numpy(), (0, 0, 1.0, 1.0)))
    shifted = torch.roll(fibres, 1, -2)
    assert float(cw_ssim(fibres, shifted).value) > 0.9 > float(ssim(fibres, shifted).value) + 0.2
    # unrelated noise is far from 1
    noise = torch.as_tensor(np.random.default_rng(3).random(x.shape))
    assert float(cw_ssim(x, noise).value) < 0.6


def test_cw_ssim_map_equals_a_direct_numpy_computation():
    x, y = _pair(32, n=2)
    ours = cw_ssim(x, y, n_scales=2, n_orientations=4, window_size=7, k=0.03, padding=8)
    pad = 8
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    yp = np.pad(y.numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    _, bands, _ = steerable_pyramid_masks(48, 48, 2, 4, dtype=torch.float64)
    expected = np.zeros(x.shape)
    for band in bands.numpy():
        cx = np.fft.ifft2(np.fft.fft2(xp) * band)[..., pad:-pad, pad:-pad]
        cy = np.fft.ifft2(np.fft.fft2(yp) * band)[..., pad:-pad, pad:-pad]

        def box(a):
            return ndimage.uniform_filter(a, (1, 1, 7, 7), mode="mirror")

        corr = box((cx * np.conj(cy)).real) + 1j * box((cx * np.conj(cy)).imag)
        energy = box(np.abs(cx) ** 2 + np.abs(cy) ** 2)
        expected += (2 * np.abs(corr) + 0.03**2) / (energy + 0.03**2) / len(bands)
    np.testing.assert_allclose(ours.map.numpy(), expected, atol=1e-10)
    assert float(ours.value) == pytest.approx(expected.mean(), abs=1e-10)
    assert cw_ssim(x[:, 0], y[:, 0]).map.shape == (2, 32, 32)  # (n, H, W) in, (n, H, W) out


def test_cw_ssim_as_a_loss():
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    for target in (torch.zeros(2, 1, 32, 32), 1 - x.detach()):
        x.grad = None
        reconstruction_loss(target, x, "cw_ssim").value.backward()
        assert torch.isfinite(x.grad).all()
    x, y = _pair(32)
    out = reconstruction_loss(x, y, "cw_ssim", weight=0.5)
    sq = ((x - y) ** 2)[:, 0]
    np.testing.assert_allclose(out.map.numpy(), (sq + 0.5 * (1 - cw_ssim(x, y).map[:, 0])).numpy(), atol=1e-12)
    assert reconstruction_loss(x, y, "cw_ssim", full=False).map is None
    with pytest.raises(ValueError, match="n_scales"):
        cw_ssim(x, y, n_scales=0)
    with pytest.raises(ValueError, match="window_size must be odd"):
        cw_ssim(x, y, window_size=6)
    with pytest.raises(ValueError, match="k must be"):
        cw_ssim(x, y, k=-1)
